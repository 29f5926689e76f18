import { expect } from 'chai';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import {
  CircuitOpenError,
  InvalidArgumentError,
  PluginSuspendedError,
  PluginTimeoutError,
  type HostEvent,
  type HostOptions,
  type PluginHost,
} from '../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, type PluginSpec, sandbox } from '../helpers/make-plugin.js';

const fast: HostOptions = {
  recovery: { backoff: { initialMs: 20, jitter: 0 }, breaker: { failures: 3, windowMs: 60_000, cooldownMs: 300, stableMs: 100 } },
  stateSnapshotIntervalMs: 0,
};

describe('crash recovery', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  async function start(options: HostOptions, ...specs: PluginSpec[]) {
    for (const s of specs) await writePlugin(root, s);
    host = await hostFor(root, options);
    const report = await host.loadAll();
    expect(report.failed).to.deep.equal([]);
  }
  const next = (type: string, pluginId?: string) =>
    firstValueFrom(host.events$.pipe(filter((e: HostEvent) => e.type === type && (pluginId === undefined || e.pluginId === pluginId))));
  const counter = {
    id: 'counter',
    resourceLimits: { executionTimeoutMs: 200 },
    code: jsPlugin(
      `inc() { this.n = (this.n ?? 0) + 1; return this.n; } spin() { for (;;) {} }
       serializeState() { return { n: this.n ?? 0 }; } deserializeState(s) { this.n = s.n; }`,
      ['inc', 'spin'],
    ),
  };

  it('restarts a crashed plugin after a backoff and restores its last good state', async () => {
    await start(fast, counter);
    await host.call('counter', 'inc');
    await host.call('counter', 'inc');
    const recovering = next('plugin.recovering', 'counter');
    const restarted = next('plugin.started', 'counter');
    await rejection(host.call('counter', 'spin'));
    expect(await recovering).to.include({ attempt: 1, delayMs: 20 });
    await restarted;
    expect(await host.call('counter', 'inc')).to.equal(3);
  });

  it('keeps a crash report: the error, the recent calls and what it was doing', async () => {
    await start(fast, counter);
    await host.call('counter', 'inc');
    await rejection(host.call('counter', 'spin'));
    const [report] = host.crashes('counter');
    expect(report.error.code).to.equal('LOGOMESH_ERR_PLUGIN_TIMEOUT');
    expect(report.recentCalls.map((c) => [c.operation, c.ok])).to.deep.equal([['inc', true]]);
    expect(report.inFlight.map((f) => f.operation)).to.deep.equal(['spin']);
    expect(report.metrics?.memory.limit).to.be.greaterThan(0);
  });

  it('a crash loop opens the circuit breaker (calls fail fast), then a half-open trial closes it', async () => {
    await start(fast, counter);
    const circuit = firstValueFrom(host.events$.pipe(filter((e: HostEvent) => e.type === 'plugin.circuit'), take(3), toArray()));
    const alert = firstValueFrom(host.alerts$);
    for (let i = 0; i < 3; i++) {
      const back = next('plugin.started', 'counter');
      await rejection(host.call('counter', 'spin'));
      if (i < 2) await back;
    }
    expect(await rejection(host.call('counter', 'inc'))).to.be.instanceOf(CircuitOpenError);
    expect(await alert).to.include({ kind: 'crashLoop', pluginId: 'counter' });
    const states = (await circuit).map((e) => (e as { state: string }).state);
    expect(states).to.deep.equal(['open', 'half-open', 'closed']);
    expect(await host.call('counter', 'inc')).to.be.a('number');
  });

  it('does not restart when restartOnCrash is off', async () => {
    await start({ ...fast, recovery: { ...fast.recovery, restartOnCrash: false } }, counter);
    await rejection(host.call('counter', 'spin'));
    await new Promise((r) => setTimeout(r, 100));
    expect(host.status('counter').state).to.equal('crashed');
  });

  it('tells dependents their dependency went down and came back; they keep answering', async () => {
    const dependent = {
      id: 'dependent',
      dependencies: [{ id: 'counter', version: '*' }],
      code: jsPlugin(
        `onDependencyDown(id) { (this.log ??= []).push('down:' + id); } onDependencyUp(id) { (this.log ??= []).push('up:' + id); }
         history() { return this.log ?? []; }`,
        ['history'],
      ),
    };
    await start(fast, counter, dependent);
    const down = next('plugin.dependencyDown', 'dependent');
    const up = next('plugin.dependencyUp', 'dependent');
    await rejection(host.call('counter', 'spin'));
    expect(await down).to.include({ dependency: 'counter' });
    expect(await host.call('dependent', 'history')).to.deep.equal(['down:counter']);
    await up;
    await new Promise((r) => setTimeout(r, 20));
    expect(await host.call('dependent', 'history')).to.deep.equal(['down:counter', 'up:counter']);
  });

  it('suspended plugins fail fast until resumed', async () => {
    await start(fast, counter);
    host.suspend('counter', 'maintenance');
    expect(await rejection(host.call('counter', 'inc'))).to.be.instanceOf(PluginSuspendedError);
    host.resume('counter');
    expect(await host.call('counter', 'inc')).to.equal(1);
  });
});

describe('health', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  it('reports healthy, unhealthy and unresponsive plugins without ending them', async () => {
    await writePlugin(root, { id: 'fine', code: jsPlugin(`checkHealth() { return { healthy: true, queue: 0 }; }`, []) });
    await writePlugin(root, { id: 'sick', code: jsPlugin(`checkHealth() { return { healthy: false, reason: 'db down' }; }`, []) });
    await writePlugin(root, { id: 'stuck', code: jsPlugin(`checkHealth() { return new Promise(() => {}); } ok() { return 1; }`, ['ok']) });
    host = await hostFor(root, { health: { intervalMs: 0, timeoutMs: 100 } });
    await host.loadAll();
    expect((await host.health('fine')).status).to.equal('healthy');
    expect(await host.health('sick')).to.deep.include({ status: 'unhealthy', detail: { healthy: false, reason: 'db down' } });
    expect((await host.health('stuck')).status).to.equal('unresponsive');
    expect(await host.call('stuck', 'ok')).to.equal(1);
  });

  it('the heartbeat raises an alert naming what an unresponsive plugin is doing', async () => {
    await writePlugin(root, { id: 'slow', code: jsPlugin(`wait() { return new Promise(() => {}); }`, ['wait']), resourceLimits: { executionTimeoutMs: 5000 } });
    host = await hostFor(root, { health: { intervalMs: 50, timeoutMs: 100 } });
    await host.loadAll();
    const alert = firstValueFrom(host.alerts$);
    void host.call('slow', 'wait').catch(() => undefined);
    const seen = await alert;
    expect(seen).to.include({ kind: 'unresponsive', pluginId: 'slow' });
    expect(seen.message).to.include('wait');
  });
});

describe('live resource limits', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  it('applies a new executionTimeoutMs at once and says which limits need a restart', async () => {
    await writePlugin(root, {
      id: 'slowish',
      resourceLimits: { executionTimeoutMs: 2000 },
      code: jsPlugin(`work() { const end = Date.now() + 150; while (Date.now() < end) {} return 'done'; }`, ['work']),
    });
    host = await hostFor(root, { recovery: { restartOnCrash: false } });
    await host.loadAll();
    expect(await host.call('slowish', 'work')).to.equal('done');
    expect(host.setPluginResourceLimits('slowish', { executionTimeoutMs: 50, maxMemoryMB: 32 })).to.deep.equal({
      applied: ['executionTimeoutMs'],
      requiresRestart: ['maxMemoryMB'],
    });
    expect(await rejection(host.call('slowish', 'work'))).to.be.instanceOf(PluginTimeoutError);
    expect(() => host.setPluginResourceLimits('slowish', { maxMemoryMB: 1e9 })).to.throw(InvalidArgumentError);
  });
});

describe('policies', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  it('policies.restartOnCrash: false overrides the recovery default', async () => {
    await writePlugin(root, { id: 'p', resourceLimits: { executionTimeoutMs: 100 }, code: jsPlugin(`spin() { for (;;) {} }`, ['spin']) });
    host = await hostFor(root, { ...fast, policies: { restartOnCrash: false } });
    await host.loadAll();
    await rejection(host.call('p', 'spin'));
    await new Promise((r) => setTimeout(r, 100));
    expect(host.status('p').state).to.equal('crashed');
  });

  it('policies.isolateOnSecurityThreat: false only alerts on a burst of denials', async () => {
    await writePlugin(root, {
      id: 'prober',
      permissions: [],
      code: jsPlugin(`async probe() { for (let i = 0; i < 12; i++) await this.ctx.fs.readFile('x').catch(() => undefined); return 'done'; }`, ['probe']),
    });
    host = await hostFor(root, { policies: { isolateOnSecurityThreat: false } });
    await host.loadAll();
    const threat = firstValueFrom(host.alerts$.pipe(filter((a) => a.kind === 'security')));
    await host.call('prober', 'probe');
    expect((await threat).action).to.equal('log');
    expect(await host.call('prober', 'probe')).to.equal('done');
  });
});

describe('lifecycle under concurrency and review regressions', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  it('concurrent restarts run one after the other and leave one started sandbox', async () => {
    await writePlugin(root, { id: 'p', code: jsPlugin(`ok() { return 'ok'; }`, ['ok']) });
    host = await hostFor(root, fast);
    await host.loadAll();
    await Promise.all([host.restart('p'), host.restart('p'), host.restart('p')]);
    expect(host.status('p').state).to.equal('started');
    expect(await host.call('p', 'ok')).to.equal('ok');
  });

  it('a loaded (not started) plugin can be restarted', async () => {
    const dir = await writePlugin(root, { id: 'p', code: jsPlugin(`ok() { return 'ok'; }`, ['ok']) });
    host = await hostFor(root, fast);
    await host.load(dir);
    await host.restart('p');
    expect(await host.call('p', 'ok')).to.equal('ok');
  });

  it('a plugin stopped by hand whose onStop times out is not restarted', async () => {
    await writePlugin(root, { id: 'p', resourceLimits: { executionTimeoutMs: 100 }, code: jsPlugin(`onStop() { for (;;) {} }`, []) });
    host = await hostFor(root, fast);
    await host.loadAll();
    await host.stop('p');
    await new Promise((r) => setTimeout(r, 150));
    expect(host.status('p').state).to.equal('crashed');
  });

  it('a checkHealth() that never returns is reported unresponsive, then ended at its execution deadline', async () => {
    await writePlugin(root, { id: 'p', resourceLimits: { executionTimeoutMs: 300 }, code: jsPlugin(`checkHealth() { for (;;) {} }`, []) });
    host = await hostFor(root, { ...fast, recovery: { restartOnCrash: false }, health: { intervalMs: 0, timeoutMs: 50 } });
    await host.loadAll();
    expect((await host.health('p')).status).to.equal('unresponsive');
    expect(host.status('p').state).to.equal('started');
    await new Promise((r) => setTimeout(r, 400));
    expect(host.status('p').state).to.equal('crashed');
  });

  it('a suspended plugin gets no events and its own requests are refused', async () => {
    await writePlugin(root, {
      id: 'p',
      code: jsPlugin(`on() { this.n = (this.n ?? 0) + 1; } count() { return this.n ?? 0; }`, ['count'], { on: 'tick' }),
    });
    host = await hostFor(root, fast);
    await host.loadAll();
    host.suspend('p', 'test');
    const report = await host.publish('tick', {});
    expect(report.failed.map((f) => f.pluginId)).to.deep.equal(['p']);
    host.resume('p');
    expect(await host.call('p', 'count')).to.equal(0);
  });
});
