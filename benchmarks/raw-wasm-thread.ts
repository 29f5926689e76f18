// Entry of the raw baselines' worker thread (raw-wasm-worker.ts): a bare worker_threads
// Worker, no piscina, no host. `echo` posts every message straight back; `wasm` instantiates
// the module it was given and answers each JSON text with the named export's JSON result,
// marshalled as the WasmRuntime worker does (alloc, copy in, call, decode the packed result).
import { parentPort, workerData } from 'node:worker_threads';
import { rawWasmCall } from './raw-wasm-call.js';

export interface RawThreadData {
  mode: 'echo' | 'wasm';
  bytes?: Uint8Array;
  export?: string;
}

const port = parentPort!;
const data = workerData as RawThreadData;

if (data.mode === 'echo') {
  port.on('message', (message: unknown) => port.postMessage(message));
  port.postMessage('ready');
} else {
  const call = rawWasmCall(data.bytes!, data.export ?? 'lm_upper');
  port.on('message', (json: string) => port.postMessage(call(json)));
  port.postMessage('ready');
}
