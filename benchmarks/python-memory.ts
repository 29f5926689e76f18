import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { measureRssIn, type RssSample } from './sandbox-rss.js';
import { median } from './stats.js';

const CHILD = fileURLToPath(new URL('./python-memory-child.js', import.meta.url));

const measureIn = (kind: RssSample['kind'], tmp: string, n: number) => measureRssIn(CHILD, 'python', kind, tmp, n);

/**
 * RSS growth per additional Python plugin (loaded, started and called once, in one host: a
 * piscina worker each, Pyodide restored from the process-wide snapshot in a sealed realm)
 * against per bare worker_threads Worker with plain Pyodide loaded (`loadPyodide()`, the same
 * Python function defined and called once). One child process per kind per round
 * (--expose-gc, gc() ×3 before each reading), one at a time; median over the rounds. Raw
 * Pyodide boots take 1.5–2 s each, hence a small N. Three rounds: once per process a V8
 * background thread may allocate ~50 MB while optimising a large Pyodide function, and a single
 * round that catches it reads 12–15 MB more per plugin (ours and raw alike).
 *
 * @example
 * const result = await pythonMemory(tmp); result.ours; // MB per plugin
 */
export async function pythonMemory(tmp: string, options = { rounds: 3, n: 4 }): Promise<BenchmarkResult> {
  const samples: RssSample[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const kind of ['ours', 'raw'] as const) samples.push(await measureIn(kind, join(tmp, `python-rss-${round}-${kind}`), options.n));
  }
  const of = (kind: RssSample['kind']) => samples.filter((s) => s.kind === kind);
  return judge({
    id: 'python-memory',
    title: `RSS per additional Python plugin (N=${options.n}, loaded and started); Raw = bare worker with plain Pyodide loaded`,
    unit: 'MB',
    metric: options.rounds > 1 ? 'median over rounds of RSS delta / N' : 'RSS delta / N',
    ours: median(of('ours').map((s) => s.perSandboxMB)),
    raw: median(of('raw').map((s) => s.perSandboxMB)),
    target: { on: 'ours', max: 50, text: '≤ 50 MB per plugin' },
    details: {
      method:
        `child processes (--no-node-snapshot --expose-gc), ${options.rounds} round(s), one child per kind per round, one at a time; one warm-up sandbox before the first reading ` +
        `(for ours the cold load that makes the process-wide Pyodide snapshot, held once per process, not per plugin); then N more, each called once; gc() ×3 before each reading ` +
        `(the main thread's heap: worker heaps are not collected on demand, alike for both); raw = a bare Worker with the same thread limits (but an 8 MiB young generation; PythonRuntime gives its workers 4 MiB) running loadPyodide() (no snapshot)`,
      ours: of('ours'),
      raw: of('raw'),
    },
  });
}
