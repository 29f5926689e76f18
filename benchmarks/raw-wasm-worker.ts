import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DEFAULT_RESOURCE_LIMITS } from '../lib/registry/manifest-schema.js';
import type { RawThreadData } from './raw-wasm-thread.js';

const THREAD = fileURLToPath(new URL('./raw-wasm-thread.js', import.meta.url));
const MEMORY_MB = DEFAULT_RESOURCE_LIMITS.maxMemoryMB;

/** A bare worker thread, one request in flight at a time. */
export interface RawWorker {
  /** Posts `message` and resolves with the thread's answer. */
  call(message: unknown): Promise<unknown>;
  terminate(): Promise<void>;
}

/**
 * Starts the raw baseline thread and resolves once it is ready (for `wasm`: the module is
 * compiled and instantiated). Started like the WasmRuntime's piscina worker: no environment,
 * no exec arguments, the same resource limits as a plugin that sets none.
 *
 * @example
 * const raw = await rawWorker({ mode: 'wasm', bytes, export: 'lm_upper' });
 * await raw.call('["hi"]'); // '"HI"'
 * await raw.terminate();
 */
export function rawWorker(data: RawThreadData): Promise<RawWorker> {
  return rawThread(THREAD, data, MEMORY_MB);
}

/**
 * Starts `file` as a bare worker thread (no environment, no exec arguments, a `heapMB` old
 * generation, 8 MiB young generation and 4 MiB stack, as the runtimes' piscina workers get)
 * and resolves once it posts `'ready'`; the raw baselines of every runtime use it.
 *
 * @example
 * const raw = await rawThread(fileURLToPath(new URL('./raw-python-thread.js', import.meta.url)), { mode: 'echo' }, 256);
 */
export function rawThread(file: string, data: unknown, heapMB: number): Promise<RawWorker> {
  const worker = new Worker(file, {
    workerData: data,
    env: {},
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb: heapMB, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 },
  });
  let pending: { resolve(v: unknown): void; reject(e: Error): void } | undefined;
  const handle: RawWorker = {
    call(message) {
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        worker.postMessage(message);
      });
    },
    async terminate() {
      await worker.terminate();
    },
  };
  return new Promise((resolve, reject) => {
    worker.on('error', (e) => (pending ? pending.reject(e) : reject(e)));
    worker.on('message', (m: unknown) => {
      if (!pending) {
        if (m === 'ready') resolve(handle);
        return;
      }
      const p = pending;
      pending = undefined;
      p.resolve(m);
    });
  });
}
