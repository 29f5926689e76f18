import { setTimeout as sleep } from 'node:timers/promises';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import type { Fleet } from './fleet.js';
import { median } from './stats.js';

/** One idle window: the whole process's CPU time (all threads) over `wallMs`. */
export interface CpuSample {
  kind: Fleet['kind'];
  /** Which round of children took it (set by the runner). */
  round?: number;
  /** 0 for the first window after loading, then 1, 2, … */
  index: number;
  /** When the window began, seconds after the last sandbox was loaded. */
  startS: number;
  /** When the window began, seconds after the host was created (ours and unmonitored only). */
  sinceHostS?: number;
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
    const sinceHostS = fleet.hostCreatedAt === undefined ? undefined : (Date.now() - fleet.hostCreatedAt) / 1000;
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
      sinceHostS,
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
  const { last, samples, of, sandboxes, from, to } = windowOf(all, which);
  const seriesOf = (kind: Fleet['kind']) =>
    Array.from({ length: last + 1 }, (_, i) => {
      const at = all.filter((s) => s.kind === kind && s.index === i);
      return { startS: median(at.map((s) => s.startS)), percentOfOneCore: median(at.map((s) => s.percentOfOneCore)) };
    });
  const unmonitored = all.some((s) => s.kind === 'unmonitored') ? { unmonitored: seriesOf('unmonitored') } : {};
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
        'process.cpuUsage() delta (all threads) in child processes; the ours and raw children (and the unmonitored one, ours ' +
        'with monitoring off) idle over the same wall-clock windows, back to back, the first starting after gc() and a 1 s ' +
        'pause once the last sandbox loaded',
      note: which === 'first' ? POST_LOAD_NOTE : STEADY_NOTE,
      ours: of('ours'),
      raw: of('raw'),
      series: { note: 'every window, median over rounds', ours: seriesOf('ours'), raw: seriesOf('raw'), ...unmonitored },
    },
  });
}

/** Default `HealthOptions.intervalMs`: the heartbeat of a host with monitoring on, counted from its creation. */
const HEARTBEAT_S = 30;

/**
 * Idle CPU of the same host with monitoring on (the default: metrics sampled every 1 s,
 * health heartbeat every 30 s) against monitoring off (`monitoring: { enabled: false }`), in
 * the first or the last (steady) window, median over the rounds. `ours` is the same figure
 * as in {@link idleCpuResult}; `raw` is the unmonitored child, which idled over the same
 * windows. Also reports the whole run of windows (one heartbeat period long with the default
 * 6 × 5 s), which is the fair average: a heartbeat lands in any one 5 s window only now and then.
 *
 * @example
 * idleCpuMonitoringResult(samples, 'last').ours; // % of one core, monitoring on
 */
export function idleCpuMonitoringResult(all: CpuSample[], which: 'first' | 'last'): BenchmarkResult {
  const { of, sandboxes, from, to } = windowOf(all, which);
  const on = of('ours');
  const off = of('unmonitored');
  const differences = on.map((s) => s.percentOfOneCore - (off.find((o) => o.round === s.round)?.percentOfOneCore ?? NaN));
  const heartbeats = on.map((s) =>
    s.sinceHostS === undefined ? 0 : Math.floor((s.sinceHostS + s.wallMs / 1000) / HEARTBEAT_S) - Math.floor(s.sinceHostS / HEARTBEAT_S),
  );
  const whole = wholeRun(all);
  const windows = Math.max(...all.map((s) => s.index)) + 1;
  const wallS = median(all.filter((s) => s.kind === 'ours').map((s) => s.wallMs)) / 1000;
  return judge({
    id: which === 'first' ? 'monitoring-idle-cpu-post-load' : 'monitoring-idle-cpu',
    title: `Idle CPU with monitoring on vs off, ${sandboxes} plugins loaded and started (${which === 'first' ? 'first' : 'steady'} window, ${from}–${to} s after loading)`,
    unit: '% of one core',
    metric: 'median over rounds',
    ours: median(on.map((s) => s.percentOfOneCore)),
    raw: median(off.map((s) => s.percentOfOneCore)),
    target: { on: 'ours', max: 0.1, text: '≤ 0.1% of one core (monitoring on)' },
    details: {
      method:
        'process.cpuUsage() delta (all threads) in child processes: a default host (metrics every 1 s, heartbeat every 30 s) and ' +
        'a host created with monitoring: { enabled: false }, each with the same plugins, idling side by side over the same ' +
        'wall-clock windows as the idle CPU rows (the raw child idles alongside them)',
      note:
        `Monitoring on − off in this window: ${signed(median(differences))} points (median over rounds; per round ${differences.map(signed).join(', ')}). ` +
        `The health heartbeat (every ${HEARTBEAT_S} s from host creation) fell in this window in ${heartbeats.filter((n) => n > 0).length} of ${heartbeats.length} rounds. ` +
        `Over all ${windows} windows (${(windows * wallS).toFixed(0)} s, about one heartbeat period, GC passes included): on ${whole.on.toFixed(3)}%, ` +
        `off ${whole.off.toFixed(3)}%, difference ${signed(whole.on - whole.off)} points.`,
      showDifference: true,
      ours: on,
      raw: off,
      differencePerRound: differences,
      heartbeatsPerRound: heartbeats,
      allWindows: { note: 'CPU time over every window / wall time over every window, median over rounds', ...whole },
    },
  });
}

/** The windows `which` picks out of every round, and what the titles say about them. */
function windowOf(all: CpuSample[], which: 'first' | 'last') {
  const last = Math.max(...all.map((s) => s.index));
  const index = which === 'first' ? 0 : last;
  const samples = all.filter((s) => s.index === index);
  const of = (kind: Fleet['kind']) => samples.filter((s) => s.kind === kind);
  const sandboxes = samples[0]?.sandboxes ?? 0;
  const from = Math.round(median(samples.map((s) => s.startS)));
  const to = Math.round(median(samples.map((s) => s.startS + s.wallMs / 1000)));
  return { last, samples, of, sandboxes, from, to };
}

/** Percent of one core over every window of a round, median over rounds, with monitoring on and off. */
function wholeRun(all: CpuSample[]): { on: number; off: number } {
  const rounds = [...new Set(all.map((s) => s.round))];
  const percent = (kind: Fleet['kind']) =>
    median(
      rounds.map((r) => {
        const at = all.filter((s) => s.kind === kind && s.round === r);
        const cpu = at.reduce((sum, s) => sum + s.userMs + s.systemMs, 0);
        const wall = at.reduce((sum, s) => sum + s.wallMs, 0);
        return (cpu / wall) * 100;
      }),
    );
  return { on: percent('ours'), off: percent('unmonitored') };
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(3)}`;
}
