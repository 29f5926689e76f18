import { expect } from 'chai';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { filter, firstValueFrom } from 'rxjs';
import { main } from '../../lib/cli/main.js';
import { PluginError, PluginTimeoutError, ResourceLimitError, type PluginHost } from '../../lib/index.js';
import { PluginApi } from '../../lib/index.js';
import { loopbackOnly } from '../helpers/loopback-only.js';
import { hostFor, jsPlugin, rejection, sandbox, writePlugin } from '../helpers/make-plugin.js';
import { startNetFixture, type NetFixture } from '../helpers/net-fixture.js';

const EXAMPLES = new URL('../../../plugins/', import.meta.url).pathname;

/** A Python plugin folder: `main.py` holding `code`. */
function pythonPlugin(root: string, id: string, code: string, manifest: Record<string, unknown> = {}) {
  return writePlugin(root, { id, code, entry: 'main.py', manifest: { runtime: 'python', ...manifest } });
}

// A Python plugin looks to the host like any other: same lifecycle, calls, events, errors,
// and the same one door (gateway) for everything it asks of the host.
describe('e2e: a Python plugin in the host', function () {
  this.timeout(120_000);
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  it('runs the data-visualizer example: calls, events both ways, and a chart', async () => {
    await cp(join(EXAMPLES, 'data-visualizer'), join(root, 'data-visualizer'), { recursive: true });
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
    expect(host.status('data-visualizer').runtime).to.equal('python');
    const summary = (await host.call('data-visualizer', 'summary', [1, 2, 3, 4])) as Record<string, number>;
    expect(summary).to.include({ count: 4, min: 1, max: 4, mean: 2.5, median: 2.5 });
    expect(await host.call('data-visualizer', 'histogram', [1, 1, 2, 9], 2)).to.deep.equal({ edges: [1, 5, 9], counts: [3, 1] });
    const svg = (await host.call('data-visualizer', 'chart', [1, 2, 2, 3], 3, 'load')) as string;
    expect(svg).to.match(/^<svg /).and.to.include('<rect').and.to.include('load');
    const error = await rejection(host.call('data-visualizer', 'summary', [1, 'x']));
    expect(error).to.be.instanceOf(PluginError);
    expect(error.message).to.include('values[1] is not a finite number');
    const ready = firstValueFrom(host.plugin('data-visualizer').events$('chart.ready'));
    await host.publish('data.sales', { values: [3, 1, 4, 1, 5] });
    const event = await ready;
    expect(event.source).to.equal('data-visualizer');
    expect((event.data as { summary: { count: number }; svg: string }).summary.count).to.equal(5);
    expect((event.data as { svg: string }).svg).to.match(/^<svg /);
  });

  it('reaches other plugins and the file system through the gateway, with its permissions', async () => {
    await writePlugin(root, { id: 'js', code: jsPlugin(`twice(x) { return x * 2; }`, ['twice']) });
    await pythonPlugin(
      root,
      'py',
      [
        'from logomesh import plugin, expose, PermissionDenied',
        '@plugin',
        'class P:',
        '    def __init__(self, ctx): self.ctx = ctx',
        '    @expose',
        '    async def relay(self, x): return await self.ctx.call("js", "twice", x)',
        '    @expose',
        '    async def roundtrip(self, text):',
        '        await self.ctx.fs.mkdir("notes", recursive=True)',
        '        await self.ctx.fs.write_file("notes/a.txt", text)',
        '        return await self.ctx.fs.read_file("notes/a.txt")',
        '    @expose',
        '    async def peek(self):',
        '        try:',
        '            await self.ctx.fs.read_file("/etc/passwd")',
        '            return "read it"',
        '        except PermissionDenied as e:',
        '            return "denied"',
      ].join('\n'),
      { permissions: [{ type: 'plugins', scope: ['js'] }, { type: 'filesystem', scope: ['notes'], level: 'readwrite' }] },
    );
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
    expect(await host.call('py', 'relay', 21)).to.equal(42);
    expect(await host.call('py', 'roundtrip', 'hello')).to.equal('hello');
    const denied = firstValueFrom(host.events$.pipe(filter((e) => e.type === 'permission.denied')));
    expect(await host.call('py', 'peek')).to.equal('denied');
    expect((await denied).pluginId).to.equal('py');
  });

  it('refuses a call that would wait on itself (py → js → py, py → py) at once with CallCycleError; a js → js → js cycle runs', async () => {
    // A deadline far beyond the spec's timeout: a call left waiting for its turn would fail it.
    const slow = { resourceLimits: { executionTimeoutMs: 200_000 } };
    await writePlugin(root, {
      id: 'js',
      code: jsPlugin(
        `async back() { return this.ctx.call('py', 'ping').then(() => 'answered', (e) => e.code); }
         async outer() { return this.ctx.call('js2', 'middle'); }
         inner() { return 'inner ran'; }`,
        ['back', 'outer', 'inner'],
      ),
      permissions: [{ type: 'plugins', scope: ['py', 'js2'] }],
      ...slow,
    });
    await writePlugin(root, {
      id: 'js2',
      code: jsPlugin(`async middle() { return this.ctx.call('js', 'inner'); }`, ['middle']),
      permissions: [{ type: 'plugins', scope: ['js'] }],
      ...slow,
    });
    await pythonPlugin(
      root,
      'py',
      [
        'from logomesh import plugin, expose, HostError',
        '@plugin',
        'class P:',
        '    def __init__(self, ctx): self.ctx = ctx',
        '    @expose',
        '    def ping(self): return "pong"',
        '    @expose',
        '    async def through_js(self): return await self.ctx.call("js", "back")',
        '    @expose',
        '    async def itself(self):',
        '        try:',
        '            return await self.ctx.call("py", "ping")',
        '        except HostError as e:',
        '            return [e.name, e.code, e.message]',
      ].join('\n'),
      { permissions: [{ type: 'plugins', scope: ['js', 'py'] }], ...slow },
    );
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
    // js's call back into py (which waits for js) is refused; js answers py with the code.
    expect(await host.call('py', 'through_js')).to.equal('LOGOMESH_ERR_CALL_CYCLE');
    const [name, code, message] = (await host.call('py', 'itself')) as string[];
    expect([name, code]).to.deep.equal(['CallCycleError', 'LOGOMESH_ERR_CALL_CYCLE']);
    expect(message).to.include('py → py refused');
    // JS plugins run calls while one of theirs waits: not refused.
    expect(await host.call('js', 'outer')).to.equal('inner ran');
    // Outside a cycle the same calls go through, and everyone keeps running.
    expect(await host.call('js', 'back')).to.equal('answered');
    expect(['py', 'js', 'js2'].map((id) => host.status(id).state)).to.deep.equal(['started', 'started', 'started']);
  });

  it('fetches through the network guard and calls host services, with its permissions', async () => {
    class Clock {
      @PluginApi('clock.now')
      now(): { iso: string } {
        return { iso: '2026-11-28T00:00:00.000Z' };
      }
    }
    const net: NetFixture = await startNetFixture();
    const wire = loopbackOnly();
    try {
      await pythonPlugin(
        root,
        'netpy',
        [
          'from logomesh import plugin, expose, HostError',
          '@plugin',
          'class P:',
          '    def __init__(self, ctx): self.ctx = ctx',
          '    @expose',
          '    async def get(self, url):',
          '        try:',
          '            r = await self.ctx.net.fetch(url)',
          '            return {"status": r["status"], "body": r["body"]}',
          '        except HostError as e:',
          '            return {"denied": e.code}',
          '    @expose',
          '    async def now(self): return await self.ctx.services.call("clock.now")',
        ].join('\n'),
        { permissions: [{ type: 'network', scope: [`api.example.test:${net.port}`] }, { type: 'system', scope: ['clock.now'] }] },
      );
      host = await hostFor(root, { network: { allowAddress: ['::1'], resolve: (h) => net.resolve(h) }, services: [new Clock()] });
      const report = await host.loadAll();
      expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
      expect(await host.call('netpy', 'get', net.url('api.example.test', '/hi'))).to.deep.equal({ status: 200, body: `hello from api.example.test:${net.port}` });
      expect(await host.call('netpy', 'get', net.url('other.example.test'))).to.deep.equal({ denied: 'LOGOMESH_ERR_PERMISSION_DENIED' });
      expect(net.canary.requests).to.equal(0);
      expect(await host.call('netpy', 'now')).to.deep.equal({ iso: '2026-11-28T00:00:00.000Z' });
    } finally {
      wire.restore();
      await host?.close();
      await net.close();
    }
    expect(wire.violations).to.deep.equal([]);
  });

  it('interrupts a spinning call at its deadline; the plugin lives on', async () => {
    await pythonPlugin(root, 'spin', ['from logomesh import plugin, expose', '@plugin', 'class P:', '    def __init__(self, ctx): pass', '    @expose', '    def spin(self):', '        while True: pass', '    @expose', '    def ok(self): return "ok"'].join('\n'), {
      resourceLimits: { executionTimeoutMs: 300 },
    });
    host = await hostFor(root);
    await host.loadAll();
    expect(await rejection(host.call('spin', 'spin'))).to.be.instanceOf(PluginTimeoutError);
    expect(host.status('spin').state, JSON.stringify(host.crashes('spin'))).to.equal('started');
    expect(await host.call('spin', 'ok')).to.equal('ok');
  });

  it('ends a plugin that swallows the interrupt; another plugin keeps answering', async () => {
    const stubborn = [
      'from logomesh import plugin, expose',
      '@plugin',
      'class P:',
      '    def __init__(self, ctx): pass',
      '    @expose',
      '    def stubborn(self):',
      '        while True:',
      '            try:',
      '                while True: pass',
      '            except BaseException:',
      '                pass',
    ].join('\n');
    await pythonPlugin(root, 'stubborn', stubborn, { resourceLimits: { executionTimeoutMs: 300 } });
    await writePlugin(root, { id: 'js', code: jsPlugin(`ping() { return 'pong'; }`, ['ping']) });
    host = await hostFor(root, { recovery: { restartOnCrash: false } });
    await host.loadAll();
    const crashed = firstValueFrom(host.events$.pipe(filter((e) => e.type === 'plugin.crashed' && e.pluginId === 'stubborn')));
    expect(await rejection(host.call('stubborn', 'stubborn'))).to.be.instanceOf(PluginTimeoutError);
    await crashed;
    expect(await host.call('js', 'ping')).to.equal('pong');
  });

  it('refuses memory past maxMemoryMB inside Python; the plugin lives on', async () => {
    await pythonPlugin(
      root,
      'hog',
      ['from logomesh import plugin, expose', '@plugin', 'class P:', '    def __init__(self, ctx): pass', '    @expose', '    def hog(self):', '        return len(bytearray(400 * 1024 * 1024))', '    @expose', '    def small(self): return len(bytearray(1024))'].join('\n'),
      { resourceLimits: { maxMemoryMB: 96 } },
    );
    host = await hostFor(root);
    await host.loadAll();
    const error = await rejection(host.call('hog', 'hog'));
    expect(error.constructor.name, error.message).to.be.oneOf([ResourceLimitError.name, PluginError.name]);
    expect(error.message).to.match(/memory/i);
    expect(await host.call('hog', 'small')).to.equal(1024);
    expect(host.status('hog').memory.limit).to.equal(96 * 2 ** 20);
  });

  it('runs no plugin code between calls: work left behind waits for the next call', async () => {
    await pythonPlugin(
      root,
      'busy',
      [
        'import asyncio',
        'from logomesh import plugin, expose',
        '@plugin',
        'class P:',
        '    def __init__(self, ctx): self.ticks = 0',
        '    async def tick(self):',
        '        while True:',
        '            self.ticks += 1',
        '            await asyncio.sleep(0)',
        '    @expose',
        '    def start(self):',
        '        asyncio.ensure_future(self.tick())',
        '        return self.ticks',
        '    @expose',
        '    def count(self): return self.ticks',
      ].join('\n'),
    );
    host = await hostFor(root);
    await host.loadAll();
    const started = (await host.call('busy', 'start')) as number;
    // The plugin's worker is a thread of this process: a loop left running would burn a CPU.
    const before = process.cpuUsage();
    const wallStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const used = process.cpuUsage(before);
    const wallMs = performance.now() - wallStart;
    expect((used.user + used.system) / 1000).to.be.below(wallMs / 2);
    expect(((await host.call('busy', 'count')) as number) - started).to.be.at.most(2);
  });

  it('logomesh validate checks a Python plugin folder as the runtime would', async () => {
    await pythonPlugin(root, 'nopy', 'x = 1', { entryPoint: 'missing.py' });
    let out = '';
    const run = (dir: string) => main(['validate', dir], { stdout: (s) => (out += s), stderr: (s) => (out += s) });
    expect(await run(join(root, 'nopy'))).to.equal(1);
    expect(out).to.include("entry point 'missing.py' does not exist");
    expect(await run(join(EXAMPLES, 'data-visualizer')), out).to.equal(0);
  });
});
