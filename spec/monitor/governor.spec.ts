import { expect } from 'chai';
import { Governor, type GovernorEvidence, type GovernorOptions } from '../../lib/monitor/governor.js';
import { DEFAULT_THRESHOLDS, resolveThresholds } from '../../lib/monitor/thresholds.js';
import type { Alert, MethodStats, PluginController, PluginMetrics } from '../../lib/monitor/types.js';

type Call = [op: string, pluginId: string, arg?: string | number];

/** Records every lever pulled; `restart`/`kill` reject when `failWith` is set. */
function fakeController(failWith?: Error): PluginController & { calls: Call[] } {
  const calls: Call[] = [];
  const settle = () => (failWith ? Promise.reject(failWith) : Promise.resolve());
  return {
    calls,
    throttle: (id, ms) => void calls.push(['throttle', id, ms]),
    suspend: (id, why) => void calls.push(['suspend', id, why]),
    resume: (id) => void calls.push(['resume', id]),
    restart: (id, why) => (calls.push(['restart', id, why]), settle()),
    kill: (id, why) => (calls.push(['kill', id, why]), settle()),
  };
}

const MB = 1024 * 1024;
const stats = (p90: number): MethodStats => ({ count: 10, errors: 0, p50: p90 / 2, p90, p99: p90, max: p90 });

/** A sample of plugin 'hog' at `at` ms: memory in percent of a 100 MB limit, cpu in percent of a core. */
function sample(at: number, o: { mem?: number; cpu?: number; errors?: number; p90?: Record<string, number> } = {}): PluginMetrics {
  return {
    pluginId: 'hog',
    at,
    memory: { current: (o.mem ?? 10) * MB, peak: 100 * MB, limit: 100 * MB },
    cpu: { current: o.cpu ?? 1, average: o.cpu ?? 1, limit: 50 },
    network: { bytesIn: 0, bytesOut: 0, requestCount: 0 },
    filesystem: { filesOpen: 0, bytesRead: 0, bytesWritten: 0 },
    executionTime: 0,
    errorCount: o.errors ?? 0,
    lastActivity: at,
    calls: Object.fromEntries(Object.entries(o.p90 ?? {}).map(([k, v]) => [k, stats(v)])),
  };
}

describe('resolveThresholds', () => {
  it('lets manifest overrides win over host defaults over the seed defaults', () => {
    expect(resolveThresholds()).to.deep.equal(DEFAULT_THRESHOLDS);
    expect(resolveThresholds({ cpuPercent: 60, errorsPerMinute: 2 }, { cpuPercent: 90, responseTimeMs: undefined })).to.deep.equal({
      memoryPercent: 80,
      cpuPercent: 90,
      errorsPerMinute: 2,
      responseTimeMs: 1000,
    });
  });
});

describe('Governor', () => {
  let clock: number;
  let controller: ReturnType<typeof fakeController>;
  let alerts: Alert[];

  function governor(options: GovernorOptions = {}, maxCpuPercent = 50, ctl = fakeController()): Governor {
    controller = ctl;
    const g = new Governor(options, controller, () => clock);
    g.alerts$.subscribe((a) => alerts.push(a));
    g.watch('hog', DEFAULT_THRESHOLDS, maxCpuPercent);
    return g;
  }
  const feed = (g: Governor, ...samples: PluginMetrics[]) => samples.forEach((s) => ((clock = s.at + 7), g.observe(s)));
  const evidence = (a: Alert) => a.evidence as GovernorEvidence;

  beforeEach(() => {
    clock = 0;
    alerts = [];
  });

  it('alerts on a memory crossing once, and again only after 5 points under (hysteresis)', () => {
    const g = governor();
    feed(g, ...[50, 85, 90, 78, 76, 74, 82].map((mem, i) => sample(i * 1000, { mem })));
    expect(alerts.map((a) => [a.kind, a.action, a.value])).to.deep.equal([
      ['memory', 'log', 85],
      ['memory', 'log', 82],
    ]);
    expect(alerts[0]).to.include({ pluginId: 'hog', threshold: 80, at: 1007 });
    expect(evidence(alerts[0]!).samples.map((s) => s.memoryPercent)).to.deep.equal([50, 85]);
    expect(controller.calls).to.deep.equal([]);
  });

  it("applies a memory 'throttle' at the cap and lifts it when memory re-arms", () => {
    const g = governor({ actions: { memory: 'throttle' } });
    feed(g, sample(0, { mem: 85 }), sample(1000, { mem: 79 }));
    expect(g.state('hog')).to.deep.equal({ throttleMs: 2000, suspended: false });
    feed(g, sample(2000, { mem: 70 }));
    expect(controller.calls).to.deep.equal([['throttle', 'hog', 2000], ['throttle', 'hog', 0]]);
    expect(alerts.map((a) => a.action)).to.deep.equal(['throttle', 'throttle']);
    expect(alerts[1]!.message).to.match(/back under, throttle lifted/);
  });

  it("suspends on a memory 'suspend' and resumes once memory re-arms", () => {
    const g = governor({ actions: { memory: 'suspend' } });
    feed(g, sample(0, { mem: 85 }));
    expect(g.state('hog')).to.deep.equal({ throttleMs: 0, suspended: true });
    feed(g, sample(1000, { mem: 70 }));
    expect(controller.calls.map(([op]) => op)).to.deep.equal(['suspend', 'resume']);
    expect(controller.calls[0]![2]).to.equal("plugin 'hog': memory at 85 % of its limit (threshold 80)");
    expect(alerts.map((a) => [a.kind, a.action])).to.deep.equal([['memory', 'suspend'], ['memory', 'log']]);
    expect(g.state('hog').suspended).to.equal(false);
  });

  it('counts errors per minute over a sliding 60 s window of samples', () => {
    const g = governor();
    // One error every 10 s: 5 within a minute at t = 50 s.
    feed(g, ...[0, 1, 2, 3, 4, 5, 6, 7].map((errors, i) => sample(i * 10_000, { errors })));
    // Errors stop: 7 − 3 = 4 in the minute up to t = 90 s (re-arm), then a burst.
    feed(g, sample(80_000, { errors: 7 }), sample(90_000, { errors: 7 }), sample(100_000, { errors: 12 }));
    expect(alerts.map((a) => [a.kind, a.action, a.value])).to.deep.equal([
      ['errors', 'log', 5],
      ['errors', 'log', 8],
    ]);
    expect(evidence(alerts[0]!).samples.map((s) => s.errorCount)).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });

  it('does not extrapolate errors across sparse samples or a restart', () => {
    const g = governor();
    feed(g, sample(0, { errors: 0 }), sample(120_000, { errors: 8 })); // 4 a minute
    feed(g, sample(121_000, { errors: 0 }), sample(122_000, { errors: 4 })); // counters reset: 4
    expect(alerts).to.deep.equal([]);
  });

  it('alerts on the slowest p90 over all methods, once while it stays slow', () => {
    const g = governor();
    const p90 = { list: 200, search: 1500 };
    feed(g, sample(0, { p90: { list: 200 } }), sample(1000, { p90 }), sample(2000, { p90 }));
    expect(alerts).to.have.length(1);
    expect(alerts[0]).to.include({ kind: 'responseTime', action: 'log', value: 1500, threshold: 1000 });
    expect(alerts[0]!.message).to.contain("'search'");
  });

  it('throttles a CPU hog with a growing delay, suspends it at the cap, resumes it when back under', () => {
    const g = governor();
    for (let i = 0; i <= 10; i++) feed(g, sample(i * 1000, { cpu: 95 }));
    expect(g.state('hog')).to.deep.equal({ throttleMs: 2000, suspended: true });
    for (let i = 11; i <= 13; i++) feed(g, sample(i * 1000, { cpu: 0 }));

    expect(controller.calls.map(([op, , arg]) => (op === 'suspend' ? op : `${op} ${arg ?? ''}`.trim()))).to.deep.equal([
      ...[50, 100, 200, 400, 800, 1600, 2000].map((ms) => `throttle ${ms}`),
      'suspend',
      'throttle 0',
      'resume',
    ]);
    expect(controller.calls[7]![2]).to.match(/CPU at 95 % over 5000 ms, limit 50 %/);
    // The cpuPercent threshold (70) only alerts; the limit (50) is enforced.
    expect(alerts.map((a) => `${a.action}:${a.threshold}`)).to.deep.equal([
      'log:70',
      ...Array(7).fill('throttle:50'),
      'suspend:50',
      'throttle:50',
      'log:50',
    ]);
    const suspend = alerts[8]!;
    expect(suspend).to.include({ kind: 'cpu', value: 95, at: 9007 });
    expect(evidence(suspend)).to.deep.include({ throttleMs: 2000, suspended: true });
    expect(evidence(suspend).samples.map((s) => [s.at, s.cpu])).to.deep.equal([4, 5, 6, 7, 8, 9].map((s) => [s * 1000, 95]));
    expect(alerts[10]!.message).to.match(/resumed/);
    expect(alerts[10]!.value).to.be.closeTo(38, 0.01);
    expect(g.state('hog')).to.deep.equal({ throttleMs: 0, suspended: false });
  });

  it('weights the CPU rate by sample interval over the window', () => {
    const g = governor({}, 60);
    // 4 s at 10 % then 1 s at 90 %: (40 + 90) / 5 = 26 %, under the limit, no alert.
    feed(g, sample(0, { cpu: 10 }), sample(4000, { cpu: 10 }), sample(5000, { cpu: 90 }));
    expect(controller.calls).to.deep.equal([]);
    // At 7 s the 5 s window holds 2 s at 10 % + 3 s at 90 % → 58 %, still under;
    // at 8 s, 1 s at 10 % + 4 s at 90 % → 74 %: over the threshold (70) and the limit (60).
    feed(g, sample(7000, { cpu: 90 }));
    expect(alerts).to.deep.equal([]);
    feed(g, sample(8000, { cpu: 90 }));
    expect(alerts.map((a) => [a.action, Math.round(a.value)])).to.deep.equal([
      ['log', 74],
      ['throttle', 74],
    ]);
  });

  it('with throttleOnHighCPU false, a CPU hog is only logged', () => {
    const g = governor({ throttleOnHighCPU: false });
    for (let i = 0; i <= 12; i++) feed(g, sample(i * 1000, { cpu: 95 }));
    expect(controller.calls).to.deep.equal([]);
    expect(alerts.map((a) => [a.kind, a.action])).to.deep.equal([['cpu', 'log']]);
    expect(g.state('hog')).to.deep.equal({ throttleMs: 0, suspended: false });
  });

  it("awaits 'kill' and reports a failed 'restart' on the alert stream", async () => {
    const g = governor({ actions: { memory: 'kill', errors: 'restart' } }, 50, fakeController(new Error('sandbox gone')));
    feed(g, sample(0, { mem: 95 }), sample(1000, { mem: 95, errors: 9 }));
    await new Promise(setImmediate);
    expect(controller.calls.map(([op]) => op)).to.deep.equal(['kill', 'restart']);
    expect(alerts.map((a) => [a.kind, a.action])).to.deep.equal([
      ['memory', 'kill'],
      ['errors', 'restart'],
      ['memory', 'kill'],
      ['errors', 'restart'],
    ]);
    expect(alerts[3]!.message).to.match(/restart failed: sandbox gone$/);
  });

  it('ignores unwatched plugins and completes alerts$ on dispose', () => {
    const g = governor();
    let completed = false;
    g.alerts$.subscribe({ complete: () => (completed = true) });
    g.unwatch('hog');
    feed(g, sample(0, { mem: 99, cpu: 99 }));
    expect(alerts).to.deep.equal([]);
    expect(g.state('hog')).to.deep.equal({ throttleMs: 0, suspended: false });
    g.dispose();
    expect(completed).to.equal(true);
  });
});
