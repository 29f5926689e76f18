import { setTimeout as sleep } from 'node:timers/promises';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import type { Fleet } from './fleet.js';
import { median } from './stats.js';

/** One idle window: the whole process's CPU time (all threads) over `wallMs`. */
export interface CpuSample {
  kind: Fleet['kind'];
  /** 0 for the first window after loading, then 1, 2, … */
  index: number;
  /** When the window began, seconds after the last sandbox was loaded. */
  startS: number;
  sandboxes: number;
  wallMs: number;
  userMs: number;
  systemMs: number;
  /** CPU time / wall time × 100: percent of one core. */
  percentOfOneCore: number;
}

/**
 * Sleeps through `count` back-to-back windows of `windowMs` and reports the process CPU
 * time spent in each. Runs inside the idle child, whose fleet is loaded and settled;
 * `loadedAt` is when its last sandbox finished loading (Date.now()).
 *
 * @example
 * const series = await measureIdleCpu(fleet, loadedAt, 6, 5000); series.at(-1)!.percentOfOneCore;
 */
export async function measureIdleCpu(fleet: Fleet, loadedAt: number, count: number, windowMs: number): Promise<CpuSample[]> {
  const series: CpuSample[] = [];
  for (let index = 0; index < count; index++) {
    const startS = (Date.now() - loadedAt) / 1000;
    const wall0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    await sleep(windowMs);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
    const userMs = cpu.user / 1000;
    const systemMs = cpu.system / 1000;
    series.push({
      kind: fleet.kind,
      index,
      startS,
      sandboxes: fleet.size,
      wallMs,
      userMs,
      systemMs,
      percentOfOneCore: ((userMs + systemMs) / wallMs) * 100,
    });
  }
  return series;
}

const POST_LOAD_NOTE =
  'This window starts 2 s after loading, so it also catches work loading leaves behind. JsRuntime enforces deadlines with ' +
  'host timers, not isolated-vm\'s `timeout` option: each use of that option queues a wake-up on isolated-vm\'s timer ' +
  'thread (src/lib/timer.cc) until the original deadline, which once made this window cost ~10× raw.';

const STEADY_NOTE =
  'The windows in between also catch one V8 memory-reducer GC pass per isolate, ours and raw alike, some 8–16 s after ' +
  'loading (see `series` in results.json); the steady window comes after it.';

/**
 * Idle CPU of a host with started plugins against a process holding as many bare isolates,
 * in the first window after loading (`which = 'first'`) or the last one (`'last'`, the
 * steady state), median over the rounds. Both kinds idle over the same wall-clock windows.
 *
 * @example
 * idleCpuResult(samples, 'last').ours; // % of one core
 */
export function idleCpuResult(all: CpuSample[], which: 'first' | 'last'): BenchmarkResult {
  const last = Math.max(...all.map((s) => s.index));
  const index = which === 'first' ? 0 : last;
  const samples = all.filter((s) => s.index === index);
  const of = (kind: Fleet['kind']) => samples.filter((s) => s.kind === kind);
  const sandboxes = samples[0]?.sandboxes ?? 0;
  const from = Math.round(median(samples.map((s) => s.startS)));
  const to = Math.round(median(samples.map((s) => s.startS + s.wallMs / 1000)));
  const seriesOf = (kind: Fleet['kind']) =>
    Array.from({ length: last + 1 }, (_, i) => {
      const at = all.filter((s) => s.kind === kind && s.index === i);
      return { startS: median(at.map((s) => s.startS)), percentOfOneCore: median(at.map((s) => s.percentOfOneCore)) };
    });
  return judge({
    id: which === 'first' ? 'idle-cpu-post-load' : 'idle-cpu',
    title: `Idle CPU, ${sandboxes} plugins loaded and started (${which === 'first' ? 'first' : 'steady'} window, ${from}–${to} s after loading)`,
    unit: '% of one core',
    metric: 'median over rounds',
    ours: median(of('ours').map((s) => s.percentOfOneCore)),
    raw: median(of('raw').map((s) => s.percentOfOneCore)),
    target: { on: 'ours', max: 0.1, text: '≤ 0.1% of one core' },
    details: {
      method:
        'process.cpuUsage() delta (all threads) in child processes; the ours and raw children idle over the same wall-clock ' +
        'windows, back to back, the first starting after gc() and a 1 s pause once the last sandbox loaded',
      note: which === 'first' ? POST_LOAD_NOTE : STEADY_NOTE,
      ours: of('ours'),
      raw: of('raw'),
      series: { note: 'every window, median over rounds', ours: seriesOf('ours'), raw: seriesOf('raw') },
    },
  });
}
