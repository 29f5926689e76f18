import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchmarkResult } from './benchmark-result.js';
import type { TimingChildMessage } from './child-protocol.js';

const CHILD = fileURLToPath(new URL('./timing-child.js', import.meta.url));

/** What the pinned timing child measured, or why there is nothing. */
export type PinnedTimings = { cpu: number; results: BenchmarkResult[] } | { cpu: number; error: string };

/**
 * Runs call latency, load time and call latency with monitoring on vs off (suite `js`), or the
 * Wasm call latencies (suite `wasm`), or the Python call latency (suite `python`), in a child process pinned to CPU `cpu` with `taskset` (util-linux). Never throws: a machine without taskset
 * gets `{ error }`, and the run goes on with the unpinned figures only.
 *
 * @example
 * const pinned = await runPinned(tmp);
 * if ('results' in pinned) console.log(pinned.results[0].ratio);
 */
export function runPinned(tmp: string, cpu = 0, suite: 'js' | 'wasm' | 'python' = 'js'): Promise<PinnedTimings> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (value: PinnedTimings) => {
      if (!settled) resolve(value);
      settled = true;
    };
    // taskset execs node in place, so the IPC channel (an inherited fd) reaches node itself.
    const child = spawn('taskset', ['-c', String(cpu), process.execPath, '--no-node-snapshot', CHILD, tmp, suite], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m: TimingChildMessage) =>
      finish(m.type === 'timing' ? { cpu, results: m.results } : { cpu, error: `timing child failed:\n${m.message}` }),
    );
    child.on('error', (e) => finish({ cpu, error: `cannot run taskset: ${e.message}` }));
    child.on('exit', (code, signal) => finish({ cpu, error: `timing child exited with ${signal ?? `code ${code}`} before reporting` }));
  });
}
