import { fileURLToPath } from 'node:url';
import { DEFAULT_RESOURCE_LIMITS } from '../lib/registry/manifest-schema.js';
import type { RawPythonThreadData } from './raw-python-thread.js';
import { rawThread, type RawWorker } from './raw-wasm-worker.js';

const THREAD = fileURLToPath(new URL('./raw-python-thread.js', import.meta.url));
/** The heap a Python plugin's worker gets with default limits: maxMemoryMB + PythonRuntime's default runtimeHeapMB (192). */
const HEAP_MB = DEFAULT_RESOURCE_LIMITS.maxMemoryMB + 192;

/**
 * A bare worker thread with plain Pyodide loaded (see raw-python-thread.ts), resolved once it
 * can answer `call('["text"]')` with `'"TEXT"'`. Same thread limits as a Python plugin's worker.
 *
 * @example
 * const raw = await rawPythonWorker();
 * await raw.call('["hi"]'); // '"HI"'
 * await raw.terminate();
 */
export function rawPythonWorker(data: RawPythonThreadData = {}): Promise<RawWorker> {
  return rawThread(THREAD, data, HEAP_MB);
}

/** A plain Pyodide memory snapshot (no sealing, no SDK), made in a bare worker. */
export async function rawPythonSnapshot(): Promise<Uint8Array> {
  const raw = await rawPythonWorker({ makeSnapshot: true });
  try {
    return (await raw.call('snapshot')) as Uint8Array;
  } finally {
    await raw.terminate();
  }
}
