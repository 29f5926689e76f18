import { join } from 'node:path';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, STEADY_WARMUP, type InterleaveOptions } from './interleave.js';
import { pythonPluginCopy } from './python-fixtures.js';
import { rawPythonWorker } from './raw-python-worker.js';
import { rawWorker } from './raw-wasm-worker.js';
import { scale, summarize, type Summary } from './stats.js';

const NS_TO_US = 1e-3;
const ID = 'py-bench';
const TEXT = 'hello world';

/**
 * `host.call('py-bench', 'upper', 'hello world')` into a started Python plugin (the
 * python-upper fixture: `return text.upper()`), interleaved with:
 * - raw Pyodide (the judged baseline, as the Wasm benchmark's raw worker runs the same
 *   export): a bare worker_threads Worker with plain Pyodide loaded once (no vm realm, no
 *   sealing, no SDK, no piscina, no host) running the same Python function on the same JSON
 *   text (json.loads, upper, json.dumps), one postMessage each way;
 * - raw echo: a bare Worker posting the JSON text of the arguments straight back (the
 *   transport alone, no Python).
 *
 * @example
 * const result = await pythonCallLatency(tmp); result.ratio; // ours / raw Pyodide, p50
 */
export async function pythonCallLatency(
  tmp: string,
  options: InterleaveOptions = { warmup: STEADY_WARMUP, rounds: 20, batch: 100 },
): Promise<BenchmarkResult> {
  const host = await benchHost(tmp);
  const echo = await rawWorker({ mode: 'echo' });
  // One after the other: the pinned child has one CPU for both boots.
  const pyodide = await rawPythonWorker();
  try {
    await host.load(await pythonPluginCopy(join(tmp, 'plugins'), ID));
    await host.start(ID);

    const ours = (text: string) => host.call(ID, 'upper', text);
    const echoCall = async (text: string) => JSON.parse((await echo.call(JSON.stringify([text]))) as string)[0];
    const pyodideCall = async (text: string) => JSON.parse((await pyodide.call(JSON.stringify([text]))) as string);
    for (const [name, f] of [['ours', ours], ['raw echo', echoCall], ['raw Pyodide', pyodideCall]] as const) {
      const answer = await f(TEXT);
      if (answer !== (name === 'raw echo' ? TEXT : TEXT.toUpperCase())) {
        throw new Error(`python-call-latency: ${name} answered ${JSON.stringify(answer).slice(0, 80)}`);
      }
    }

    const samples = await interleave(
      [
        { name: 'ours', run: () => ours(TEXT) },
        { name: 'raw echo', run: () => echoCall(TEXT) },
        { name: 'raw Pyodide', run: () => pyodideCall(TEXT) },
      ],
      options,
    );
    const s: Record<string, Summary> = Object.fromEntries([...samples].map(([name, ns]) => [name, scale(summarize(ns), NS_TO_US)]));
    return judge({
      id: 'python-call-latency',
      title: "Python call latency: host.call('py-bench', 'upper', 'hello world'); Raw = bare worker running plain Pyodide, postMessage each way",
      unit: 'µs',
      metric: 'p50',
      ours: s.ours.p50,
      raw: s['raw Pyodide'].p50,
      target: { on: 'ratio', max: 1.5, text: '≤ 1.5× raw (p50)' },
      details: {
        method: `interleaved batches: ${options.warmup} warm-up calls per variant, then ${options.rounds} rounds × ${options.batch} calls per variant, rotating which variant goes first; argument '${TEXT}'`,
        ours: s.ours,
        raw: s['raw Pyodide'],
        rawLabel: 'raw Pyodide',
        note:
          `raw is plain Pyodide (unsealed, loaded once) in a bare worker_threads Worker running the same Python function on the same JSON text, one postMessage each way: ` +
          `the work any Pyodide runtime has to do, as the Wasm benchmark's raw worker runs the same export. ` +
          `Ours adds ${(s.ours.p50 - s['raw Pyodide'].p50).toFixed(1)} µs (sealed realm, SDK dispatch, piscina worker, host + gateway). ` +
          `The transport alone (a bare worker echoing the JSON text, no Python) takes ${s['raw echo'].p50.toFixed(1)} µs p50; ` +
          `plain Pyodide alone is ${(s['raw Pyodide'].p50 / s['raw echo'].p50).toFixed(2)}× that, and ours ${(s.ours.p50 / s['raw echo'].p50).toFixed(2)}×.`,
        breakdown: {
          note: 'a bare worker_threads Worker posting the JSON text of the arguments straight back (no Python), one postMessage each way',
          'raw echo': s['raw echo'],
        },
      },
    });
  } finally {
    await echo.terminate();
    await pyodide.terminate();
    await host.close();
  }
}
