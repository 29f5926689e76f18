// The piscina task module of the raw-piscina attribution variant (wasm-call-latency.ts): the
// same module and marshalling as raw-wasm-thread.ts, but run as a piscina task, so the cost
// of piscina's task hand-off is measured apart from what WasmRuntime and the host add.
import { workerData } from 'node:worker_threads';

interface Instance {
  exports: Record<string, unknown> & { memory: { buffer: ArrayBuffer }; alloc(len: number): number };
}
const WebAssemblyApi = (globalThis as unknown as {
  WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => Instance };
}).WebAssembly;

const noop = () => undefined;
const { exports } = new WebAssemblyApi.Instance(new WebAssemblyApi.Module((workerData as { bytes: Uint8Array }).bytes), { logomesh: { log: noop, emit: noop } });
const fn = exports.lm_upper as (ptr: number, len: number) => bigint;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export default function upper(json: string): string | null {
  const bytes = encoder.encode(json);
  const ptr = exports.alloc(bytes.length) >>> 0;
  new Uint8Array(exports.memory.buffer, ptr, bytes.length).set(bytes);
  const packed = fn(ptr, bytes.length);
  const at = Number(BigInt.asUintN(32, packed >> 32n));
  const len = Number(BigInt.asUintN(32, packed));
  return len === 0 ? null : decoder.decode(new Uint8Array(exports.memory.buffer, at, len));
}
