import { join } from 'node:path';
import { SnapshotCache } from '../lib/runtimes/python/snapshot-cache.js';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { pythonPluginCopy } from './python-fixtures.js';
import { rawPythonSnapshot, rawPythonWorker } from './raw-python-worker.js';
import type { RawWorker } from './raw-wasm-worker.js';
import { summarize } from './stats.js';

const NS_TO_MS = 1e-6;
const ID = 'py-load';

export interface PythonLoadOptions {
  /** Rounds; each times `oursPerRound` host cycles and one cycle of each raw variant, rotating which goes first. */
  rounds: number;
  oursPerRound: number;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) * NS_TO_MS;

/**
 * `host.load(dir)` + `host.start(id)` + `host.unload(id)` of the python-upper fixture plugin
 * with the process-wide Pyodide snapshot warm (the first load, after `SnapshotCache.forget()`
 * and with an empty data folder, boots cold and makes it: reported as a breakdown row),
 * against a bare worker_threads Worker that runs plain `loadPyodide()` (no snapshot, no
 * sealing) and defines the same Python function, then is terminated. Also timed: the same bare Worker restoring a plain Pyodide snapshot
 * (`loadPyodide({ _loadSnapshot })`), the like-for-like start of an unsealed interpreter.
 * Raw Pyodide boots take 1.5–2 s, so each round times several host cycles and one of each raw.
 *
 * @example
 * const result = await pythonLoadTime(tmp); result.ours; // p50 ms, snapshot warm
 */
export async function pythonLoadTime(tmp: string, options: PythonLoadOptions = { rounds: 6, oursPerRound: 2 }): Promise<BenchmarkResult> {
  const host = await benchHost(tmp);
  try {
    const dir = await pythonPluginCopy(join(tmp, 'plugins'), ID);
    const cycle = { ours: [] as number[], raw: [] as number[], 'raw snapshot': [] as number[] };
    const loadOnly = { ours: [] as number[], raw: [] as number[], 'raw snapshot': [] as number[] };
    const oursCycle = async () => {
      const t0 = process.hrtime.bigint();
      await host.load(dir);
      await host.start(ID);
      const loaded = ms(t0);
      await host.unload(ID);
      return [loaded, ms(t0)];
    };
    const rawCycle = async (start: () => Promise<RawWorker>) => {
      const t0 = process.hrtime.bigint();
      const raw = await start();
      const loaded = ms(t0);
      if ((await raw.call('["ok"]')) !== '"OK"') throw new Error('python-load-time: the raw Pyodide worker answered wrongly');
      const t1 = process.hrtime.bigint();
      await raw.terminate();
      return [loaded, loaded + ms(t1)];
    };

    // The in-memory snapshot is process-wide (an earlier benchmark may have made it) and the
    // host's data folder is new (no snapshot on disk): after forget() this load boots cold.
    SnapshotCache.forget();
    const [coldLoad, coldCycle] = await oursCycle(); // makes the snapshot
    const snapshotStarted = process.hrtime.bigint();
    const snapshot = await rawPythonSnapshot();
    const rawSnapshotMadeMs = ms(snapshotStarted);
    const variants: [keyof typeof cycle, () => Promise<number[]>][] = [
      ['ours', oursCycle],
      ['raw', () => rawCycle(() => rawPythonWorker())],
      ['raw snapshot', () => rawCycle(() => rawPythonWorker({ snapshot }))],
    ];
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const [name, run] = variants[(round + k) % variants.length];
        for (let i = 0; i < (name === 'ours' ? options.oursPerRound : 1); i++) {
          const [loaded, total] = await run();
          loadOnly[name].push(loaded);
          cycle[name].push(total);
        }
      }
    }
    const ours = summarize(cycle.ours);
    const raw = summarize(cycle.raw);
    return judge({
      id: 'python-load-time',
      title: 'Python plugin load + start + unload, snapshot warm; Raw = bare worker + loadPyodide() + terminate',
      unit: 'ms',
      metric: 'p50',
      ours: ours.p50,
      raw: raw.p50,
      target: { on: 'ours', max: 500, text: '≤ 500 ms (p50)' },
      details: {
        method:
          `one cold load + start + unload first (boots Pyodide cold and makes the process-wide snapshot), then ${options.rounds} rounds, each ` +
          `${options.oursPerRound} host cycles and one cycle of each raw variant, rotating which goes first; ` +
          `raw = new Worker (the same thread limits as a Python plugin's worker, no env) + loadPyodide() + define the Python function, then terminate`,
        ours,
        raw,
        coldFirstLoadMs: coldCycle,
        rawSnapshotMadeMs,
        note:
          `cold first load (boots Pyodide in the realm and makes the snapshot): ${coldLoad.toFixed(0)} ms to started, ${coldCycle.toFixed(0)} ms with unload. ` +
          `Plain Pyodide restoring its own snapshot in a bare Worker takes ${summarize(loadOnly['raw snapshot']).p50.toFixed(0)} ms p50 to ready ` +
          `(ours: ${summarize(loadOnly.ours).p50.toFixed(0)} ms to started).`,
        breakdown: {
          note:
            'load alone (to started / to ready, without unload / terminate); the cold first load (n = 1); a bare Worker restoring a plain Pyodide snapshot (loadPyodide({ _loadSnapshot }), unsealed, no SDK), whole cycle and load alone',
          'ours, load + start alone': summarize(loadOnly.ours),
          'ours, cold first load + start + unload': summarize([coldCycle]),
          'raw snapshot restore + terminate': summarize(cycle['raw snapshot']),
          'raw snapshot restore alone': summarize(loadOnly['raw snapshot']),
          'raw loadPyodide() alone': summarize(loadOnly.raw),
        },
      },
    });
  } finally {
    await host.close();
  }
}
