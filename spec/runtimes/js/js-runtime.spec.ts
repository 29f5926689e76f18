import { expect } from 'chai';
import { firstValueFrom, take, toArray } from 'rxjs';
import {
  MethodNotExposedError,
  PluginError,
  PluginStateError,
  PluginTimeoutError,
  ResourceLimitError,
  type HostEvent,
  type PluginHost,
} from '../../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, sandbox } from '../../helpers/make-plugin.js';

describe('JS runtime (isolated-vm)', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  async function loadPlugins(...specs: Parameters<typeof writePlugin>[1][]) {
    for (const s of specs) await writePlugin(root, s);
    host = await hostFor(root);
    return host.loadAll();
  }

  const healthy = { id: 'healthy', code: jsPlugin(`ping(x) { return { pong: x }; }`, ['ping']) };

  it('calls an exposed method and copies arguments and results', async () => {
    await loadPlugins({ id: 'echo', code: jsPlugin(`echo(a, b) { a.touched = true; return [a, b]; }`, ['echo']) });
    const arg = { n: 1, nested: { s: 'x' } };
    const result = await host.call<[Record<string, unknown>, number]>('echo', 'echo', arg, 2);
    expect(result).to.deep.equal([{ n: 1, nested: { s: 'x' }, touched: true }, 2]);
    expect(arg).to.not.have.property('touched');
  });

  it('refuses methods that are not @Expose()d', async () => {
    await loadPlugins({ id: 'echo', code: jsPlugin(`echo(a) { return a; } secret() { return 42; }`, ['echo']) });
    const error = await rejection(host.call('echo', 'secret'));
    expect(error).to.be.instanceOf(MethodNotExposedError);
    expect(error.pluginId).to.equal('echo');
  });

  it('compiles a TypeScript plugin with decorators and relative imports', async () => {
    await loadPlugins({
      id: 'typed',
      entry: 'main.ts',
      code: `import { Plugin, Expose, type PluginContext } from '@logomesh/plugin-host/sdk';
        import { twice } from './util.js';
        @Plugin()
        export default class Typed {
          constructor(private readonly ctx: PluginContext) {}
          @Expose() double(n: number): number { return twice(n); }
        }`,
      files: { 'util.ts': 'export const twice = (n: number): number => n * 2;' },
    });
    expect(await host.call('typed', 'double', 21)).to.equal(42);
  });

  it('reports a plugin error with the plugin id, its message and the plugin-side stack', async () => {
    await loadPlugins({ id: 'thrower', code: jsPlugin(`boom() { throw new RangeError('bad input'); }`, ['boom']) });
    const error = await rejection(host.call('thrower', 'boom'));
    expect(error).to.be.instanceOf(PluginError);
    expect(error.code).to.equal('LOGOMESH_ERR_PLUGIN_THREW');
    expect(error.pluginId).to.equal('thrower');
    expect(error.remote).to.include({ name: 'RangeError', message: 'bad input' });
    expect(error.pluginStack).to.match(/boom/);
    expect(host.status('thrower').state).to.equal('started');
  });

  describe('a hostile plugin ends only itself', () => {
    async function expectCrash(code: string, method: string, errorClass: Function, limits: Record<string, number> = {}) {
      const report = await loadPlugins(
        { id: 'hostile', code, resourceLimits: { executionTimeoutMs: 300, ...limits } },
        healthy,
      );
      expect(report.failed).to.deep.equal([]);
      const crashed = firstValueFrom(host.events$.pipe(take(1)));
      const error = await rejection(host.call('hostile', method));
      expect(error).to.be.instanceOf(errorClass);
      expect(error.pluginId).to.equal('hostile');
      expect(((await crashed) as HostEvent).type).to.equal('plugin.crashed');
      expect(host.status('hostile').state).to.equal('crashed');
      expect(await host.call('healthy', 'ping', 1)).to.deep.equal({ pong: 1 });
      const after = await rejection(host.call('hostile', method));
      expect(after).to.be.instanceOf(PluginStateError);
      return error;
    }

    it('a synchronous infinite loop times out', async () => {
      const error = await expectCrash(jsPlugin(`spin() { for (;;) {} }`, ['spin']), 'spin', PluginTimeoutError);
      expect(error.timeoutMs).to.equal(300);
    });

    it('a loop after an await of a host call times out', async () => {
      await expectCrash(
        jsPlugin(`async spin() { await this.ctx.emit('tick', {}); for (;;) {} }`, ['spin']),
        'spin',
        PluginTimeoutError,
      );
    });

    it('a detached loop resumed by a host reply after the call returned is stopped too', async () => {
      await loadPlugins(
        { id: 'hostile', code: jsPlugin(`kick() { this.ctx.emit('tick', {}).then(() => { for (;;) {} }); return 'ok'; }`, ['kick']), resourceLimits: { executionTimeoutMs: 300 } },
        healthy,
      );
      const crashed = firstValueFrom(host.events$);
      expect(await host.call('hostile', 'kick')).to.equal('ok');
      const event = (await crashed) as HostEvent & { error?: Error };
      expect(event.type).to.equal('plugin.crashed');
      expect(event.error).to.be.instanceOf(PluginTimeoutError);
      expect(await host.call('healthy', 'ping', 3)).to.deep.equal({ pong: 3 });
    });

    it('a promise that never settles times out', async () => {
      await expectCrash(jsPlugin(`hang() { return new Promise(() => {}); }`, ['hang']), 'hang', PluginTimeoutError);
    });

    it('a memory bomb is stopped at its memory limit', async () => {
      const error = await expectCrash(
        jsPlugin(`bomb() { const a = []; for (;;) a.push(new Array(1e5).fill(Math.random())); }`, ['bomb']),
        'bomb',
        ResourceLimitError,
        { maxMemoryMB: 16, executionTimeoutMs: 10000 },
      );
      expect(error.resource).to.equal('memory');
    });

    it('a bomb after an await of a host call is stopped too', async () => {
      await expectCrash(
        jsPlugin(`async bomb() { await this.ctx.emit('tick', {}); const a = []; for (;;) a.push('x'.repeat(1e5) + Math.random()); }`, ['bomb']),
        'bomb',
        ResourceLimitError,
        { maxMemoryMB: 16, executionTimeoutMs: 10000 },
      );
    });
  });

  it('a plugin that throws in its constructor fails to load; others still start', async () => {
    const report = await loadPlugins({ id: 'ctor', code: jsPlugin(``, []).replace('this.ctx = ctx;', `throw new Error('no config');`) }, healthy);
    const line = report.plugins.find((p) => p.id === 'ctor')!;
    expect(line.state).to.equal('failed');
    expect(line.error).to.be.instanceOf(PluginError);
    expect(line.error!.message).to.include('no config');
    expect(report.started).to.deep.equal(['healthy']);
  });

  for (const [label, code, errorClass] of [
    ['throws', `throw new Error('broken on purpose');`, PluginError],
    ['loops forever', `for (;;) {}`, PluginTimeoutError],
    ['allocates without end', `const a = []; for (;;) a.push(new Array(1e5).fill(Math.random()));`, ResourceLimitError],
  ] as const) {
    it(`a plugin whose top-level code ${label} fails to load with ${errorClass.name}; others still start`, async () => {
      const report = await loadPlugins(
        { id: 'toplevel', code: `${code}\nexport default 1;`, resourceLimits: { executionTimeoutMs: 300, maxMemoryMB: 16 } },
        healthy,
      );
      const line = report.plugins.find((p) => p.id === 'toplevel')!;
      expect(line.state).to.equal('failed');
      expect(line.error).to.be.instanceOf(errorClass);
      if (errorClass === PluginError) expect(line.error!.message).to.include('broken on purpose');
      expect(await host.call('healthy', 'ping', 2)).to.deep.equal({ pong: 2 });
    });
  }

  it('a default export without @Plugin() fails to load with a clear error', async () => {
    const report = await loadPlugins({ id: 'plain', code: `export default class X {}` });
    expect(report.plugins[0].error!.message).to.match(/@Plugin\(\)/);
  });

  it('runs @OnEvent handlers for matching topics and streams what the plugin emits', async () => {
    await loadPlugins({
      id: 'indexer',
      capabilities: ['text'],
      code: jsPlugin(`async saved(doc, event) { await this.ctx.emit('indexed', { id: doc.id, topic: event.topic, source: event.source }); }`, [], {
        saved: 'document.*',
      }),
    });
    const emitted = firstValueFrom(host.plugin('indexer').events$('indexed'));
    const report = await host.publish('document.saved', { id: 7 });
    expect(report.delivered).to.deep.equal(['indexer']);
    const event = await emitted;
    expect(event).to.include({ topic: 'indexed', source: 'indexer' });
    expect(event.data).to.deep.equal({ id: 7, topic: 'document.saved', source: 'host' });
    expect((await host.publish('other.saved', {})).delivered).to.deep.equal([]);
  });

  it('filters published events by capability and exclusion (PluginFilter)', async () => {
    const handler = (id: string) => ({
      id,
      capabilities: id === 'b' ? ['text'] : ['image'],
      code: jsPlugin(`on() {}`, [], { on: 'config.changed' }),
    });
    await loadPlugins(handler('a'), handler('b'), handler('c'));
    expect((await host.publish('config.changed', {})).delivered.sort()).to.deep.equal(['a', 'b', 'c']);
    expect((await host.publish('config.changed', {}, { capabilities: ['text'] })).delivered).to.deep.equal(['b']);
    expect((await host.publish('config.changed', {}, { excludePlugins: ['a'] })).delivered.sort()).to.deep.equal(['b', 'c']);
  });

  it('stamps emissions with the emitting plugin, whatever the plugin puts in the data', async () => {
    await loadPlugins({ id: 'liar', code: jsPlugin(`async lie() { await this.ctx.emit('alert', { source: 'host' }); }`, ['lie']) });
    const seen = firstValueFrom(host.plugin('liar').events$());
    await host.call('liar', 'lie');
    expect((await seen).source).to.equal('liar');
  });

  it('a slow subscriber has a bounded queue and its drops are counted', async () => {
    for (const s of [{ id: 'slow', code: jsPlugin(`on() { const end = Date.now() + 20; while (Date.now() < end) {} }`, [], { on: 'tick' }) }]) {
      await writePlugin(root, s);
    }
    host = await hostFor(root, { eventQueueLimit: 3 });
    await host.loadAll();
    const drops = firstValueFrom(host.events$.pipe(take(1), toArray()));
    const reports = await Promise.all(Array.from({ length: 10 }, (_, i) => host.publish('tick', { i })));
    const delivered = reports.filter((r) => r.delivered.includes('slow')).length;
    const dropped = reports.filter((r) => r.dropped.includes('slow')).length;
    expect(delivered).to.equal(3);
    expect(dropped).to.equal(7);
    expect((await drops)[0]).to.include({ type: 'event.dropped', pluginId: 'slow' });
  });

  it('restart builds a fresh isolate and carries serializeState() across', async () => {
    await loadPlugins({
      id: 'counter',
      code: jsPlugin(`inc() { this.n = (this.n ?? 0) + 1; return this.n; } serializeState() { return { n: this.n }; } deserializeState(s) { this.n = s.n; }`, ['inc']),
    });
    await host.call('counter', 'inc');
    await host.call('counter', 'inc');
    await host.restart('counter');
    expect(await host.call('counter', 'inc')).to.equal(3);
  });

  it('a crashed plugin can be restarted', async () => {
    await loadPlugins({ id: 'fragile', code: jsPlugin(`spin() { for (;;) {} } ok() { return 'ok'; }`, ['spin', 'ok']), resourceLimits: { executionTimeoutMs: 200 } });
    await rejection(host.call('fragile', 'spin'));
    expect(host.status('fragile').state).to.equal('crashed');
    await host.restart('fragile');
    expect(await host.call('fragile', 'ok')).to.equal('ok');
  });

  it('refuses payloads over the size cap', async () => {
    await writePlugin(root, { id: 'big', code: jsPlugin(`make(n) { return 'x'.repeat(n); } take(s) { return s.length; }`, ['make', 'take']) });
    host = await hostFor(root, { maxPayloadBytes: 1000 });
    await host.loadAll();
    expect(await host.call('big', 'take', 'x'.repeat(100))).to.equal(100);
    expect(await rejection(host.call('big', 'take', 'x'.repeat(5000)))).to.be.instanceOf(ResourceLimitError);
    expect(await rejection(host.call('big', 'make', 5000))).to.be.instanceOf(ResourceLimitError);
  });

  it('reports memory use measured by the host', async () => {
    await loadPlugins({ id: 'mem', code: jsPlugin(`fill() { this.keep = new Array(2e5).fill(1.5); return this.keep.length; }`, ['fill']) });
    const before = host.status('mem').memory.current;
    expect(before).to.be.greaterThan(0);
    // Memory is sampled asynchronously after calls, at most every 20 ms.
    for (let i = 0; i < 50 && host.status('mem').memory.current < before + 1e6; i++) {
      await host.call('mem', 'fill');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(host.status('mem').memory.current).to.be.greaterThan(before + 1e6);
    expect(host.status('mem').memory.limit).to.equal(64 * 1024 * 1024);
  });
});
