// The piscina task module of the raw-piscina attribution variant (wasm-call-latency.ts): the
// same module and marshalling as raw-wasm-thread.ts, but run as a piscina task, so the cost
// of piscina's task hand-off is measured apart from what WasmRuntime and the host add.
import { workerData } from 'node:worker_threads';
import { rawWasmCall } from './raw-wasm-call.js';

export default rawWasmCall((workerData as { bytes: Uint8Array }).bytes, 'lm_upper');
