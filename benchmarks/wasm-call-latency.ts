import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { workerPoolOptions } from '../lib/runtimes/worker-runtime.js';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, STEADY_WARMUP, type InterleaveOptions } from './interleave.js';
import { rawWorker } from './raw-wasm-worker.js';
import { scale, summarize, type Summary } from './stats.js';
import { extismUpperModule, upperModule, wasmPluginCopy } from './wasm-fixtures.js';

const NS_TO_US = 1e-3;
const PISCINA_TASK = fileURLToPath(new URL('./raw-wasm-piscina-task.js', import.meta.url));
const ID = 'wasm-bench';
/** The call's argument: short, and a 4 KiB text (letters and spaces: JSON writes them as they are). */
const SHORT = 'hello world';
const LONG = 'lorem ipsum dolor sit amet '.repeat(152).slice(0, 4096);

/** The parts of @extism/extism used here. */
interface ExtismPlugin {
  call(name: string, input: string): Promise<{ text(): string } | null>;
  reset(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Extism's JS SDK keeps what each call allocates until `reset()`: without it a call slows down
 * as calls accumulate (p50 81 µs after 1000 calls, 339 µs after 8000 here); with a reset every
 * 100 calls it settles near 30 µs. The benchmark resets that often, inside the timed call.
 */
const EXTISM_RESET_EVERY = 100;

/**
 * `host.call('wasm-bench', 'upper', text)` into a started Wasm plugin, interleaved with:
 * - raw: a bare worker_threads Worker holding the same module, marshalling as our worker does
 *   (JSON text in, alloc + copy + export call, JSON text out), one postMessage each way;
 * - raw echo: a bare Worker posting the JSON text straight back (the transport alone);
 * - raw piscina: the raw worker's work as a task in a piscina pool of one thread, configured
 *   as WasmRuntime configures its pool (attribution: what piscina's hand-off costs);
 * - Extism: the Extism JS SDK (`createPlugin(wasm, { runInWorker: true, useWasi: false })`)
 *   calling an Extism-ABI module that does the same work (benchmarks/fixtures/extism-upper),
 *   reset every {@link EXTISM_RESET_EVERY} calls.
 * Each with an 11-byte and a 4 KiB argument. Returns two results: ours vs raw, ours vs Extism.
 *
 * @example
 * const [vsRaw, vsExtism] = await wasmCallLatency(tmp);
 */
export async function wasmCallLatency(
  tmp: string,
  options: InterleaveOptions = { warmup: STEADY_WARMUP, rounds: 20, batch: 100 },
): Promise<BenchmarkResult[]> {
  const host = await benchHost(tmp);
  const raw = await rawWorker({ mode: 'wasm', bytes: await upperModule(), export: 'lm_upper' });
  const echo = await rawWorker({ mode: 'echo' });
  // Set up as WasmRuntime sets up its pool (the heap as for the bench plugin's 64 MB).
  const pool = new Piscina<string, string | null>({ ...workerPoolOptions({ filename: PISCINA_TASK, heapMB: 64 }), workerData: { bytes: await upperModule() } });
  // Loaded here, not at the top: it loads node:wasi, which prints an experimental warning.
  const { default: createPlugin } = await import('@extism/extism');
  const extism = (await createPlugin({ wasm: [{ data: await extismUpperModule() }] }, { runInWorker: true, useWasi: false })) as unknown as ExtismPlugin;
  try {
    await host.load(await wasmPluginCopy(join(tmp, 'plugins'), ID));
    await host.start(ID);

    const ours = (text: string) => host.call(ID, 'upper', text);
    const rawCall = async (text: string) => JSON.parse((await raw.call(JSON.stringify([text]))) as string);
    const echoCall = async (text: string) => JSON.parse((await echo.call(JSON.stringify([text]))) as string)[0];
    const piscinaCall = async (text: string) => JSON.parse((await pool.run(JSON.stringify([text])))!);
    let extismCalls = 0;
    const extismCall = async (text: string) => {
      const answer = (await extism.call('upper', text))!.text();
      if (++extismCalls % EXTISM_RESET_EVERY === 0) await extism.reset();
      return answer;
    };
    for (const [name, f] of [['ours', ours], ['raw', rawCall], ['raw piscina', piscinaCall], ['extism', extismCall]] as const) {
      for (const text of [SHORT, LONG]) {
        const answer = await f(text);
        if (answer !== text.toUpperCase()) throw new Error(`wasm-call-latency: ${name} answered ${JSON.stringify(answer).slice(0, 80)}`);
      }
    }

    const samples = await interleave(
      [
        { name: 'ours', run: () => ours(SHORT) },
        { name: 'raw', run: () => rawCall(SHORT) },
        { name: 'raw echo', run: () => echoCall(SHORT) },
        { name: 'raw piscina', run: () => piscinaCall(SHORT) },
        { name: 'extism', run: () => extismCall(SHORT) },
        { name: 'ours 4 KiB', run: () => ours(LONG) },
        { name: 'raw 4 KiB', run: () => rawCall(LONG) },
        { name: 'extism 4 KiB', run: () => extismCall(LONG) },
      ],
      options,
    );
    const s: Record<string, Summary> = Object.fromEntries([...samples].map(([name, ns]) => [name, scale(summarize(ns), NS_TO_US)]));
    const method = `interleaved batches: ${options.warmup} warm-up calls per variant, then ${options.rounds} rounds × ${options.batch} calls per variant, rotating which variant goes first; arguments '${SHORT}' (11 bytes) and a 4 KiB text`;
    const vsRaw = judge({
      id: 'wasm-call-latency',
      title: "Wasm call latency: host.call('wasm-bench', 'upper', 'hello world')",
      unit: 'µs',
      metric: 'p50',
      ours: s.ours.p50,
      raw: s.raw.p50,
      target: { on: 'ratio', max: 1.5, text: '≤ 1.5× raw (p50)' },
      details: {
        method,
        ours: s.ours,
        raw: s.raw,
        note:
          `raw is a bare worker_threads Worker calling the same export with the same marshalling; against the bare postMessage echo ` +
          `(${s['raw echo'].p50.toFixed(1)} µs p50) ours is ${(s.ours.p50 / s['raw echo'].p50).toFixed(2)}×; the same work as a piscina task ` +
          `(pool configured as WasmRuntime's) takes ${s['raw piscina'].p50.toFixed(1)} µs, so ours adds ${(s.ours.p50 - s['raw piscina'].p50).toFixed(1)} µs over piscina (WasmRuntime + host). ` +
          `With a 4 KiB argument: ours ${s['ours 4 KiB'].p50.toFixed(1)} µs, raw ${s['raw 4 KiB'].p50.toFixed(1)} µs (${(s['ours 4 KiB'].p50 / s['raw 4 KiB'].p50).toFixed(2)}×).`,
        breakdown: {
          note: 'the transport alone (postMessage echo of the same JSON text); the raw work as a task in a piscina pool of one thread set up as WasmRuntime sets up its pool; ours and raw with a 4 KiB argument',
          'raw echo': s['raw echo'],
          'raw piscina': s['raw piscina'],
          'ours 4 KiB': s['ours 4 KiB'],
          'raw 4 KiB': s['raw 4 KiB'],
        },
      },
    });
    const vsExtism = judge({
      id: 'wasm-vs-extism',
      title: "Wasm call vs Extism JS SDK 1.0.3 (runInWorker), same 'upper' work; Raw column = Extism",
      unit: 'µs',
      metric: 'p50',
      ours: s.ours.p50,
      raw: s.extism.p50,
      target: { on: 'ratio', max: 1, text: 'faster than Extism (p50)' },
      details: {
        method,
        ours: s.ours,
        raw: s.extism,
        rawLabel: 'extism',
        note:
          `Extism: createPlugin(wasm, { runInWorker: true, useWasi: false }) and plugin.call('upper', text).text(), with plugin.reset() every ${EXTISM_RESET_EVERY} calls ` +
          `(inside the timed call; without it Extism's calls slow down as they accumulate); its module reads input and writes output through ` +
          `Extism's kernel host calls (8 bytes per call). With a 4 KiB argument: ours ${s['ours 4 KiB'].p50.toFixed(1)} µs (p99 ${s['ours 4 KiB'].p99.toFixed(1)}), ` +
          `Extism ${s['extism 4 KiB'].p50.toFixed(1)} µs (p99 ${s['extism 4 KiB'].p99.toFixed(1)}), ${(s['ours 4 KiB'].p50 / s['extism 4 KiB'].p50).toFixed(2)}×.`,
        breakdown: {
          note: 'the same two with a 4 KiB argument',
          'ours 4 KiB': s['ours 4 KiB'],
          'extism 4 KiB': s['extism 4 KiB'],
        },
      },
    });
    return [vsRaw, vsExtism];
  } finally {
    await extism.close().catch(() => undefined);
    await raw.terminate();
    await echo.terminate();
    await pool.destroy();
    await host.close();
  }
}
