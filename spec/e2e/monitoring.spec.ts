import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { filter, firstValueFrom } from 'rxjs';
import { PluginSuspendedError, type Alert, type HostEvent, type HostOptions, type PluginHost } from '../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, type PluginSpec, sandbox } from '../helpers/make-plugin.js';

// Monitoring with real plugins: what an operator sees when plugins work, idle, hog, leak or probe.
describe('e2e: monitoring and governance', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  async function start(options: HostOptions, ...specs: PluginSpec[]) {
    for (const s of specs) await writePlugin(root, s);
    host = await hostFor(root, { metrics: { intervalMs: 50 }, health: { intervalMs: 0 }, ...options });
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const alert = (kind: Alert['kind'], action?: Alert['action']) =>
    firstValueFrom(host.alerts$.pipe(filter((a) => a.kind === kind && (action === undefined || a.action === action))));
  const worker = {
    id: 'worker',
    code: jsPlugin(`work(ms) { const end = Date.now() + ms; while (Date.now() < end) {} return ms; } fail() { throw new Error('no'); }`, ['work', 'fail']),
  };

  it('metrics move when work happens and stay still when it does not', async () => {
    await start({}, worker);
    await host.call('worker', 'work', 30);
    await rejection(host.call('worker', 'fail'));
    const m = host.metrics('worker')!;
    expect(m.calls.work).to.include({ count: 1, errors: 0 });
    expect(m.calls.fail).to.include({ count: 1, errors: 1 });
    expect(m.errorCount).to.equal(1);
    expect(m.executionTime).to.be.at.least(30);
    expect(m.memory.current).to.be.greaterThan(0);
    // Samples record the work, then the drop to idle (the isolate's own GC may add one more).
    let settled = -1;
    for (let i = 0; i < 20 && settled !== host.getMetricsHistory('worker').length; i++) {
      settled = host.getMetricsHistory('worker').length;
      await sleep(200);
    }
    await sleep(300);
    expect(host.getMetricsHistory('worker').length).to.equal(settled);
    await host.call('worker', 'work', 20);
    await sleep(150);
    expect(host.getMetricsHistory('worker').length).to.be.greaterThan(settled);
  });

  it('exports Prometheus text with a plugin label', async () => {
    await start({}, worker);
    await host.call('worker', 'work', 1);
    const text = host.metricsText();
    expect(text).to.match(/^# TYPE logomesh_plugin_memory_bytes gauge$/m);
    expect(text).to.match(/^logomesh_plugin_calls_total\{plugin="worker",method="work"\} 1$/m);
  });

  it('a CPU hog over maxCpuPercent is throttled: its calls are delayed', async () => {
    await start(
      { monitoring: { governor: { cpuWindowMs: 300 } } },
      { ...worker, resourceLimits: { maxCpuPercent: 20, executionTimeoutMs: 5000 } },
    );
    let throttleAtAlert = 0;
    const throttled = alert('cpu', 'throttle');
    host.alerts$.subscribe((a) => a.kind === 'cpu' && a.action === 'throttle' && (throttleAtAlert ||= host.status('worker').throttleMs));
    let alerted = false;
    void throttled.then(() => (alerted = true));
    for (let i = 0; i < 100 && !alerted; i++) await host.call('worker', 'work', 40);
    const seen = await throttled;
    expect(seen.pluginId).to.equal('worker');
    expect(seen.value).to.be.greaterThan(20);
    expect(throttleAtAlert).to.be.greaterThan(0);
  });

  it('a leaking plugin is alerted, then restarted', async () => {
    await start(
      { monitoring: { thresholds: { memoryPercent: 50 }, governor: { actions: { memory: 'restart' } } } },
      {
        id: 'leaky',
        resourceLimits: { maxMemoryMB: 32 },
        code: jsPlugin(`leak() { (this.kept ??= []).push(new Array(2 ** 17).fill(Math.random())); return this.kept.length; }`, ['leak']),
      },
    );
    const alerted = alert('memory', 'restart');
    let restarts = 0;
    host.events$.subscribe((e) => e.type === 'plugin.started' && e.pluginId === 'leaky' && restarts++);
    let done = false;
    void alerted.then(() => (done = true));
    let leaked = 0;
    for (let i = 0; i < 40 && !done; i++) {
      leaked = Math.max(leaked, (await host.call<number>('leaky', 'leak').catch(() => 0)) as number);
      await sleep(60);
    }
    expect((await alerted).pluginId).to.equal('leaky');
    for (let i = 0; i < 100 && restarts === 0; i++) await sleep(20);
    expect(restarts).to.equal(1);
    // A fresh sandbox: what it had leaked is gone.
    expect(await host.call('leaky', 'leak')).to.be.below(leaked);
  });

  it('a burst of permission denials quarantines the plugin, with the evidence', async () => {
    await start({}, {
      id: 'prober',
      permissions: [],
      code: jsPlugin(`async probe() { for (let i = 0; i < 12; i++) await this.ctx.fs.readFile('/etc/passwd').catch(() => undefined); return 'done'; }`, ['probe']),
    });
    const threat = alert('security', 'suspend');
    expect(await host.call('prober', 'probe')).to.equal('done');
    const seen = await threat;
    expect((seen.evidence as { denials: unknown[] }).denials.length).to.be.at.least(10);
    expect(await rejection(host.call('prober', 'probe'))).to.be.instanceOf(PluginSuspendedError);
  });

  it('profiles a plugin: per-method latency, CPU time and a .cpuprofile for DevTools', async () => {
    await start({}, worker);
    const began = performance.now();
    const session = host.profiler.start('worker');
    for (let i = 0; i < 3; i++) await host.call('worker', 'work', 40);
    const report = await host.profiler.stop(session);
    const wallMs = performance.now() - began;
    expect(report.methods.work.countInSession).to.equal(3);
    // The busy loops ran on the isolate's CPU, and it cannot have used more than the wall time
    // (how much of the 120 ms it got depends on the machine's load).
    expect(report.cpuTimeMs).to.be.greaterThan(0).and.at.most(wallMs);
    expect(report.memory.limit).to.equal(64 * 2 ** 20);
    const profile = JSON.parse(await readFile(report.cpuProfilePath!, 'utf8'));
    expect(profile.nodes.length).to.be.greaterThan(1);
    expect(host.profiler.identifyBottlenecks('worker')).to.be.an('array');
  });
});
