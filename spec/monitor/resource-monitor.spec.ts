import { expect } from 'chai';
import { container } from 'tsyringe';
import { IHostOptions } from '../../lib/di/tokens.js';
import { InvalidArgumentError } from '../../lib/errors.js';
import type { PluginUsage } from '../../lib/gateway/api-gateway.js';
import { IResourceMonitor, ResourceMonitor, type MetricsSource, type ResourceMonitorOptions } from '../../lib/monitor/resource-monitor.js';
import type { PluginMetrics } from '../../lib/monitor/types.js';
import type { RuntimeMetrics } from '../../lib/runtimes/runtime.js';

const MiB = 2 ** 20;

/** What the host would hand the monitor; fresh objects on every read, as the real runtime and gateway return. */
class FakeSource implements MetricsSource {
  sandbox: RuntimeMetrics | undefined = { memoryBytes: 10 * MiB, memoryLimitBytes: 64 * MiB, cpuTimeMs: 0 };
  used: PluginUsage = { filesystem: { filesOpen: 0, bytesRead: 0, bytesWritten: 0 }, network: { bytesIn: 0, bytesOut: 0, requestCount: 0 }, denied: 0 };
  reads = 0;
  runtime(): RuntimeMetrics | undefined {
    this.reads++;
    return this.sandbox && { ...this.sandbox };
  }
  usage(): PluginUsage | undefined {
    return structuredClone(this.used);
  }
  limits() {
    return { maxMemoryMB: 64, maxCpuPercent: 50 };
  }
  /** The plugin burns `ms` of CPU. */
  work(ms: number): void {
    this.sandbox!.cpuTimeMs += ms;
  }
}

describe('ResourceMonitor', () => {
  let clock: number;
  let monitor: ResourceMonitor;
  let source: FakeSource;
  let emitted: PluginMetrics[];

  // Most specs change the fake sandbox's numbers behind the monitor's back, which a real
  // sandbox cannot do while idle: they read every plugin on every sample (sweepMs 0).
  const make = (options: ResourceMonitorOptions = {}) => {
    const m = new ResourceMonitor({ metrics: { now: () => clock, sweepMs: 0, ...options } });
    m.metrics$.subscribe((x) => emitted.push(x));
    return m;
  };
  /** Let `ms` of wall time pass, then sample. */
  const tick = (ms = 1000) => {
    clock += ms;
    monitor.sample();
  };

  beforeEach(() => {
    clock = 1_700_000_000_000;
    emitted = [];
    source = new FakeSource();
    monitor = make();
    monitor.track('p', source);
  });

  afterEach(() => monitor.dispose());

  it('reports memory, limits and gateway usage as measured, on the first sample', () => {
    source.used.network = { bytesIn: 100, bytesOut: 20, requestCount: 2 };
    source.used.filesystem = { filesOpen: 1, bytesRead: 4096, bytesWritten: 512 };
    tick();
    expect(emitted).to.have.length(1);
    const m = emitted[0]!;
    expect(m).to.deep.include({ pluginId: 'p', at: clock, executionTime: 0, errorCount: 0, lastActivity: 0, calls: {} });
    expect(m.memory).to.deep.equal({ current: 10 * MiB, peak: 10 * MiB, limit: 64 * MiB });
    expect(m.cpu.limit).to.equal(50);
    expect(m.network).to.deep.equal({ bytesIn: 100, bytesOut: 20, requestCount: 2 });
    expect(m.filesystem).to.deep.equal({ filesOpen: 1, bytesRead: 4096, bytesWritten: 512 });
    expect(monitor.history('p')).to.deep.equal([m]);
  });

  it('computes CPU percent from CPU-time deltas between samples, and the average over the tracked life', () => {
    source.work(250);
    tick(1000);
    expect(emitted.at(-1)!.cpu).to.deep.include({ current: 25, average: 25 });
    source.work(750);
    tick(1000);
    expect(emitted.at(-1)!.cpu).to.deep.include({ current: 75, average: 50 });
    source.work(100);
    tick(500);
    expect(emitted.at(-1)!.cpu.current).to.be.closeTo(20, 1e-9);
    expect(emitted.at(-1)!.cpu.average).to.be.closeTo(44, 1e-9);
  });

  it('does not count CPU used before tracking', () => {
    const loaded = new FakeSource();
    loaded.work(5000);
    monitor.track('loaded', loaded);
    loaded.work(100);
    tick(1000);
    expect(emitted.find((m) => m.pluginId === 'loaded')!.cpu).to.deep.include({ current: 10, average: 10 });
  });

  it('stays still for an idle plugin: no history entry, no emission', () => {
    source.work(500);
    tick();
    expect(emitted.at(-1)!.cpu.current).to.equal(50);
    // Going idle is itself a change (the CPU rate falls to 0), recorded once.
    tick();
    expect(emitted.at(-1)!.cpu.current).to.equal(0);
    const seen = emitted.length;
    for (let i = 0; i < 20; i++) tick();
    expect(emitted).to.have.length(seen);
    expect(monitor.history('p')).to.have.length(seen);
    expect(monitor.prometheusText()).to.include('logomesh_plugin_cpu_percent{plugin="p"} 0\n');
  });

  for (const [what, act] of [
    ['a call is recorded', (m: ResourceMonitor) => m.recordCall('p', 'greet', 2, true)],
    ['the plugin is touched (gateway request)', (m: ResourceMonitor) => m.touch('p')],
    ['CPU time grows', () => source.work(1)],
    ['memory changes', () => (source.sandbox!.memoryBytes += 1)],
    ['bytes are received', () => (source.used.network.bytesIn += 1)],
    ['bytes are written', () => (source.used.filesystem.bytesWritten += 1)],
    ['a file is opened', () => (source.used.filesystem.filesOpen += 1)],
  ] as const) {
    it(`moves when ${what}, after standing still`, () => {
      tick();
      tick();
      const before = emitted.length;
      tick();
      expect(emitted).to.have.length(before);
      act(monitor);
      tick();
      expect(emitted).to.have.length(before + 1);
      expect(monitor.history('p')).to.have.length(before + 1);
    });
  }

  it('after a sample where many things changed at once, stands still again at the next', () => {
    tick();
    source.sandbox!.memoryBytes += 1;
    source.used.network.bytesIn += 1;
    source.used.network.requestCount += 1;
    source.used.filesystem.bytesRead += 1;
    monitor.recordCall('p', 'greet', 1, true);
    tick();
    const after = emitted.length;
    tick();
    expect(emitted).to.have.length(after);
  });

  it('keeps per-method percentiles, execution time, errors and last activity from recorded calls', () => {
    for (let ms = 1; ms <= 100; ms++) {
      clock += 10;
      monitor.recordCall('p', 'work', ms, ms % 10 !== 0);
    }
    monitor.recordCall('p', 'ping', 0.25, true);
    const last = clock;
    tick();
    const m = emitted.at(-1)!;
    expect(m.executionTime).to.equal(5050.25);
    expect(m.errorCount).to.equal(10);
    expect(m.lastActivity).to.equal(last);
    const work = m.calls.work!;
    expect(work).to.deep.include({ count: 100, errors: 10, max: 100 });
    expect(work.p50).to.be.closeTo(50, 0.5);
    expect(work.p90).to.be.closeTo(90, 0.9);
    expect(work.p99).to.be.closeTo(99, 1);
    expect(m.calls.ping).to.deep.equal({ count: 1, errors: 0, p50: 0.25, p90: 0.25, p99: 0.25, max: 0.25 });
  });

  it('keeps at most historySize samples and filters them by `at`, both ends inclusive', () => {
    monitor.dispose();
    monitor = make({ historySize: 5 });
    monitor.track('p', source);
    const start = clock;
    for (let i = 1; i <= 8; i++) {
      source.work(10 * i);
      tick(1000);
    }
    const all = monitor.history('p');
    expect(all.map((m) => m.at - start)).to.deep.equal([4000, 5000, 6000, 7000, 8000]);
    expect(monitor.history('p', { from: start + 5000, to: start + 7000 }).map((m) => m.at - start)).to.deep.equal([5000, 6000, 7000]);
    expect(monitor.history('p', { from: start + 7000 }).map((m) => m.at - start)).to.deep.equal([7000, 8000]);
    expect(monitor.history('p', { to: start + 4000 }).map((m) => m.at - start)).to.deep.equal([4000]);
    expect(monitor.history('p', { from: start + 8001 })).to.deep.equal([]);
  });

  it('keeps the peak memory; a plugin without a sandbox uses nothing, and the next sandbox counts CPU from 0', () => {
    source.sandbox!.memoryBytes = 40 * MiB;
    source.work(300);
    tick();
    source.sandbox = undefined;
    tick();
    expect(emitted.at(-1)!.memory).to.deep.include({ current: 0, peak: 40 * MiB });
    expect(emitted.at(-1)!.cpu.current).to.equal(0);
    source.sandbox = { memoryBytes: 12 * MiB, memoryLimitBytes: 64 * MiB, cpuTimeMs: 200 };
    tick();
    expect(emitted.at(-1)!.memory).to.deep.include({ current: 12 * MiB, peak: 40 * MiB });
    expect(emitted.at(-1)!.cpu).to.deep.include({ current: 20, average: (500 / 3000) * 100 });
  });

  it('metrics() is computed now and does not use up a sample', () => {
    tick();
    monitor.recordCall('p', 'greet', 3, false);
    source.work(100);
    clock += 500;
    const now = monitor.metrics('p')!;
    expect(now).to.deep.include({ at: clock, errorCount: 1, executionTime: 3 });
    expect(now.cpu.current).to.equal(20);
    clock += 500;
    monitor.sample();
    expect(emitted.at(-1)!.cpu.current).to.equal(10);
    expect(emitted.at(-1)!.errorCount).to.equal(1);
  });

  it('untrack forgets everything, and later calls for the plugin are ignored', () => {
    monitor.recordCall('p', 'greet', 3, true);
    tick();
    monitor.untrack('p');
    monitor.recordCall('p', 'greet', 3, true);
    monitor.touch('p');
    tick();
    expect(monitor.metrics('p')).to.equal(undefined);
    expect(monitor.history('p')).to.deep.equal([]);
    expect(monitor.prometheusText()).to.not.include('plugin="p"');
    monitor.track('p', new FakeSource());
    expect(monitor.metrics('p')).to.deep.include({ executionTime: 0, calls: {}, lastActivity: 0 });
    expect(monitor.history('p')).to.deep.equal([]);
  });

  it('prometheusText shows the latest metrics of every tracked plugin, sampled or not', () => {
    source.sandbox!.memoryBytes = 1234;
    monitor.recordCall('p', 'greet', 1500, true);
    tick();
    monitor.track('fresh', new FakeSource());
    const text = monitor.prometheusText();
    expect(text).to.include('logomesh_plugin_memory_bytes{plugin="p"} 1234\n');
    expect(text).to.include(`logomesh_plugin_memory_bytes{plugin="fresh"} ${10 * MiB}\n`);
    expect(text).to.include('logomesh_plugin_execution_seconds_total{plugin="p"} 1.5\n');
    expect(text).to.include('logomesh_plugin_calls_total{plugin="p",method="greet"} 1\n');
    expect(text).to.include('logomesh_plugin_call_duration_seconds{plugin="p",method="greet",quantile="0.99"} 1.5\n');
  });

  it('one throwing source does not stop the others from being sampled', () => {
    const broken = new FakeSource();
    monitor.track('broken', broken);
    broken.runtime = () => {
      throw new Error('isolate disposed');
    };
    expect(() => tick()).to.not.throw();
    expect(emitted.map((m) => m.pluginId)).to.deep.equal(['p']);
  });

  it('samples on its timer once started, and not after stop()', async () => {
    monitor.dispose();
    monitor = make({ intervalMs: 5 });
    monitor.track('p', source);
    monitor.start();
    monitor.start(); // idempotent: still one timer
    await new Promise((r) => setTimeout(r, 60));
    monitor.stop();
    const reads = source.reads;
    expect(reads).to.be.greaterThan(2);
    expect(emitted).to.have.length(1); // the plugin did nothing after the first sample
    await new Promise((r) => setTimeout(r, 30));
    expect(source.reads).to.equal(reads);
  });

  it('does not read an idle plugin between sweeps; activity or a sweep reads it again', () => {
    monitor = make({ sweepMs: 10_000 });
    monitor.track('p', source);
    tick();
    tick(); // the first idle sample records the drop to an idle rate
    const reads = source.reads;
    for (let i = 0; i < 5; i++) tick();
    expect(source.reads).to.equal(reads);
    monitor.touch('p');
    tick();
    expect(source.reads).to.be.greaterThan(reads);
    const afterTouch = source.reads;
    tick(10_000);
    expect(source.reads).to.be.greaterThan(afterTouch);
  });

  it('stops waking up once every plugin is idle, and samples again at the next activity', async () => {
    const real = new ResourceMonitor({ metrics: { intervalMs: 20, sweepMs: 60_000 } });
    let samples = 0;
    const sample = real.sample.bind(real);
    real.sample = () => {
      samples++;
      sample();
    };
    real.track('p', source);
    real.start();
    await new Promise((r) => setTimeout(r, 300));
    const idle = samples;
    expect(idle).to.be.at.most(4); // the first samples find it active, then the timer slows down
    real.touch('p');
    await new Promise((r) => setTimeout(r, 100));
    expect(samples).to.be.greaterThan(idle);
    real.dispose();
  });

  it('is resolved by tsyringe with the host options, and refuses bad ones', () => {
    const child = container.createChildContainer();
    child.register(IHostOptions, { useValue: { metrics: { intervalMs: 250 } } });
    child.registerSingleton(IResourceMonitor, ResourceMonitor);
    const resolved = child.resolve<IResourceMonitor>(IResourceMonitor);
    expect(resolved).to.be.instanceOf(ResourceMonitor);
    expect(child.resolve(IResourceMonitor)).to.equal(resolved);
    for (const metrics of [{ intervalMs: 0 }, { intervalMs: NaN }, { historySize: 0 }, { historySize: 2.5 }]) {
      expect(() => new ResourceMonitor({ metrics }), JSON.stringify(metrics)).to.throw(InvalidArgumentError);
    }
  });
});
