// Entry of the raw baselines' worker thread (raw-wasm-worker.ts): a bare worker_threads
// Worker, no piscina, no host. `echo` posts every message straight back; `wasm` instantiates
// the module it was given and answers each JSON text with the named export's JSON result,
// marshalled as the WasmRuntime worker does (alloc, copy in, call, decode the packed result).
import { parentPort, workerData } from 'node:worker_threads';

export interface RawThreadData {
  mode: 'echo' | 'wasm';
  bytes?: Uint8Array;
  export?: string;
}

interface Instance {
  exports: Record<string, unknown> & { memory: { buffer: ArrayBuffer }; alloc(len: number): number };
}
const WebAssemblyApi = (globalThis as unknown as {
  WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => Instance };
}).WebAssembly;

const port = parentPort!;
const data = workerData as RawThreadData;

if (data.mode === 'echo') {
  port.on('message', (message: unknown) => port.postMessage(message));
  port.postMessage('ready');
} else {
  const noop = () => undefined;
  const instance = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(data.bytes!), { logomesh: { log: noop, emit: noop } });
  const { exports } = instance;
  const fn = exports[data.export ?? 'lm_upper'] as (ptr: number, len: number) => bigint;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  port.on('message', (json: string) => {
    const bytes = encoder.encode(json);
    const ptr = exports.alloc(bytes.length) >>> 0;
    new Uint8Array(exports.memory.buffer, ptr, bytes.length).set(bytes);
    const packed = fn(ptr, bytes.length);
    const at = Number(BigInt.asUintN(32, packed >> 32n));
    const len = Number(BigInt.asUintN(32, packed));
    port.postMessage(len === 0 ? null : decoder.decode(new Uint8Array(exports.memory.buffer, at, len)));
  });
  port.postMessage('ready');
}
