import { expect } from 'chai';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { filter, firstValueFrom } from 'rxjs';
import wabtInit from 'wabt';
import { main } from '../../lib/cli/main.js';
import { pluginDataDir } from '../../lib/gateway/api-gateway.js';
import { PluginApi, PluginError, PluginTimeoutError, type PluginHost } from '../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, sandbox } from '../helpers/make-plugin.js';
import { loopbackOnly } from '../helpers/loopback-only.js';
import { startNetFixture, type NetFixture } from '../helpers/net-fixture.js';

const FIXTURES = new URL('../../../spec/fixtures/wasm/', import.meta.url).pathname;

// A WebAssembly plugin looks to the host like any other: same lifecycle, calls, events, errors.
describe('e2e: a WebAssembly plugin in the host', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  async function wasmPlugin(id: string, fixture: string, extra: Record<string, unknown> = {}) {
    const wabt = await wabtInit();
    const module = wabt.parseWat(fixture, await readFile(join(FIXTURES, fixture), 'utf8'), { multi_value: true });
    const { buffer } = module.toBinary({});
    module.destroy();
    const dir = join(root, id);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'plugin.wasm'), buffer);
    const manifest = { id, name: id, version: '1.0.0', entryPoint: 'plugin.wasm', runtime: 'wasm', apiVersion: '^1.0.0', ...extra };
    await writeFile(join(dir, 'plugin.json'), JSON.stringify(manifest));
  }

  it('loads, answers calls, reports a trap as a PluginError, and ends a spinning call alone', async () => {
    await wasmPlugin('echo', 'echo.wat');
    await wasmPlugin('spin', 'spin.wat', { resourceLimits: { executionTimeoutMs: 300 } });
    await writePlugin(root, { id: 'js', code: jsPlugin(`ping() { return 'pong'; }`, ['ping']) });
    host = await hostFor(root, { recovery: { restartOnCrash: false } });
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
    expect(host.status('echo').runtime).to.equal('wasm');
    expect(await host.call('echo', 'upper', 'hi')).to.equal('HI');
    expect(await rejection(host.call('echo', 'trap'))).to.be.instanceOf(PluginError);
    const spinMethod = host.status('spin').exposed[0];
    const crashed = firstValueFrom(host.events$.pipe(filter((e) => e.type === 'plugin.crashed' && e.pluginId === 'spin')));
    expect(await rejection(host.call('spin', spinMethod))).to.be.instanceOf(PluginTimeoutError);
    await crashed;
    expect(await host.call('echo', 'upper', 'still here')).to.equal('STILL HERE');
    expect(await host.call('js', 'ping')).to.equal('pong');
  });

  it('logomesh validate checks the module as the runtime would, before anything runs', async () => {
    await wasmPlugin('nomax', 'no-max-memory.wat');
    await wasmPlugin('echo', 'echo.wat');
    let out = '';
    const run = (dir: string) => main(['validate', join(root, dir)], { stdout: (s) => (out += s), stderr: (s) => (out += s) });
    expect(await run('nomax')).to.equal(1);
    expect(out).to.include('declares no maximum');
    expect(await run('echo')).to.equal(0);
  });

  it('refuses a module importing outside the logomesh namespace', async () => {
    await wasmPlugin('bad', 'bad-import.wat');
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.plugins[0].error?.code).to.equal('LOGOMESH_ERR_PLUGIN_LOAD');
  });

  describe('host requests that wait for an answer (logomesh.request)', () => {
    type Answer = { ok: boolean; value?: any; error?: { name: string; message: string; code?: string } };
    const ask = (id: string, request: unknown) => host.call(id, 'ask', request) as Promise<Answer>;

    it('reads, writes, lists, stats and removes files in its data folder through its filesystem permission', async () => {
      await wasmPlugin('files', 'ask.wat', { permissions: [{ type: 'filesystem', scope: ['.'], level: 'readwrite' }] });
      host = await hostFor(root);
      const report = await host.loadAll();
      expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
      const data = pluginDataDir({ dataDir: join(root, '.data') }, 'files');
      await mkdir(data, { recursive: true });
      await writeFile(join(data, 'hello.txt'), 'hello from disk');

      expect(await ask('files', { op: 'fs.readFile', path: 'hello.txt' })).to.deep.equal({ ok: true, value: 'hello from disk' });
      expect(await ask('files', { op: 'fs.mkdir', path: 'sub' })).to.deep.equal({ ok: true });
      expect(await ask('files', { op: 'fs.writeFile', path: 'sub/a.txt', data: 'written by wasm' })).to.deep.equal({ ok: true });
      expect(await readFile(join(data, 'sub/a.txt'), 'utf8')).to.equal('written by wasm');
      expect(await ask('files', { op: 'fs.readdir', path: 'sub' })).to.deep.equal({ ok: true, value: [{ name: 'a.txt', type: 'file' }] });
      expect((await ask('files', { op: 'fs.stat', path: 'sub/a.txt' })).value).to.include({ size: 15, type: 'file' });
      expect(await ask('files', { op: 'fs.rm', path: 'sub', recursive: true })).to.deep.equal({ ok: true });
      expect(await rejection(stat(join(data, 'sub')))).to.have.property('code', 'ENOENT');
    });

    it('answers a read without a filesystem permission with PermissionDeniedError, and the host reports the denial', async () => {
      await wasmPlugin('nofs', 'ask.wat', { permissions: [] });
      host = await hostFor(root);
      await host.loadAll();
      const denied = firstValueFrom(host.events$.pipe(filter((e) => e.type === 'permission.denied')));
      const answer = await ask('nofs', { op: 'fs.readFile', path: 'hello.txt' });
      expect(answer.ok).to.equal(false);
      expect(answer.error).to.include({ name: 'PermissionDeniedError', code: 'LOGOMESH_ERR_PERMISSION_DENIED' });
      expect(await denied).to.include({ pluginId: 'nofs', operation: 'fs.readFile' });
    });

    it("calls a JS plugin and gets its value; the gateway's schema check answers a malformed request", async () => {
      await wasmPlugin('caller', 'ask.wat', { permissions: [{ type: 'plugins', scope: ['js#greet'] }] });
      await writePlugin(root, { id: 'js', code: jsPlugin(`greet(name) { return 'hello ' + name; }`, ['greet']) });
      host = await hostFor(root);
      const report = await host.loadAll();
      expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
      expect(await ask('caller', { op: 'call', pluginId: 'js', method: 'greet', args: ['wasm'] })).to.deep.equal({ ok: true, value: 'hello wasm' });
      const malformed = await ask('caller', { op: 'call', pluginId: 'js' });
      expect(malformed.error).to.include({ name: 'InvalidArgumentError', code: 'LOGOMESH_ERR_INVALID_ARGUMENT' });
      const unknown = await ask('caller', { op: 'fs.format', path: '/' });
      expect(unknown.error?.message).to.include(`unknown host operation 'fs.format'`);
      const notJson = (await host.call('caller', 'raw', '{op: call}')) as Answer;
      expect(notJson.error).to.include({ code: 'LOGOMESH_ERR_INVALID_ARGUMENT' });
    });

    it('refuses a call back into a wasm plugin waiting for it (itself, or through another wasm plugin) with an error, not a hang', async () => {
      const perms = { permissions: [{ type: 'plugins', scope: ['a', 'b'] }], resourceLimits: { executionTimeoutMs: 60_000 } };
      await wasmPlugin('a', 'ask.wat', perms);
      await wasmPlugin('b', 'ask.wat', perms);
      host = await hostFor(root);
      await host.loadAll();
      const self = await ask('a', { op: 'call', pluginId: 'a', method: 'ask', args: [{ op: 'fs.stat', path: 'x' }] });
      expect(self.error).to.include({ name: 'CallCycleError', code: 'LOGOMESH_ERR_CALL_CYCLE' });
      expect(self.error?.message).to.include('a → a refused');
      // a → b → a: b's answer to a's call is the refusal b got.
      const back = { op: 'call', pluginId: 'a', method: 'ask', args: [{ op: 'fs.stat', path: 'x' }] };
      const cycle = await ask('a', { op: 'call', pluginId: 'b', method: 'ask', args: [back] });
      expect(cycle.ok).to.equal(true);
      expect(cycle.value.ok).to.equal(false);
      expect(cycle.value.error).to.include({ code: 'LOGOMESH_ERR_CALL_CYCLE' });
      expect(cycle.value.error.message).to.include('a → b → a refused');
      // Not a cycle: a → b → (b asks the filesystem, denied) is answered normally.
      const chain = await ask('a', { op: 'call', pluginId: 'b', method: 'ask', args: [{ op: 'fs.stat', path: 'x' }] });
      expect(chain.value.error).to.include({ code: 'LOGOMESH_ERR_PERMISSION_DENIED' });
      expect(host.status('a').state).to.equal('started');
      expect(host.status('b').state).to.equal('started');
    });

    it('refuses a call back into a wasm plugin through a JS plugin (a → js → a) with CallCycleError', async () => {
      const slow = { resourceLimits: { executionTimeoutMs: 200_000 } };
      await wasmPlugin('a', 'ask.wat', { permissions: [{ type: 'plugins', scope: ['js'] }], ...slow });
      await writePlugin(root, {
        id: 'js',
        code: jsPlugin(`async back() { return this.ctx.call('a', 'ask', { op: 'fs.stat', path: 'x' }).then(() => 'answered', (e) => e.code); }`, ['back']),
        permissions: [{ type: 'plugins', scope: ['a'] }],
        ...slow,
      });
      host = await hostFor(root);
      const report = await host.loadAll();
      expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
      expect(await ask('a', { op: 'call', pluginId: 'js', method: 'back', args: [] })).to.deep.equal({ ok: true, value: 'LOGOMESH_ERR_CALL_CYCLE' });
      // Called by the host instead, js reaches a.
      expect(await host.call('js', 'back')).to.equal('answered');
      expect(host.status('a').state).to.equal('started');
    });

    it('fetches from a loopback server the host allows', async () => {
      const net: NetFixture = await startNetFixture();
      const wire = loopbackOnly();
      try {
        await wasmPlugin('fetcher', 'ask.wat', { permissions: [{ type: 'network', scope: [`api.example.test:${net.port}`] }] });
        host = await hostFor(root, { network: { allowAddress: ['::1'], resolve: (h) => net.resolve(h) } });
        await host.loadAll();
        const answer = await ask('fetcher', { op: 'net.fetch', url: net.url('api.example.test', '/hi') });
        expect(answer.ok, JSON.stringify(answer.error)).to.equal(true);
        expect(answer.value).to.include({ status: 200, body: `hello from api.example.test:${net.port}` });
        expect(net.app.requests.map((r) => r.url)).to.deep.equal(['/hi']);
        const outside = await ask('fetcher', { op: 'net.fetch', url: net.url('other.example.test') });
        expect(outside.error).to.include({ code: 'LOGOMESH_ERR_PERMISSION_DENIED' });
        expect(net.canary.requests).to.equal(0);
      } finally {
        wire.restore();
        await host?.close();
        await net.close();
      }
      expect(wire.violations).to.deep.equal([]);
    });

    it('ends a plugin blocked past its deadline with PluginTimeoutError while other plugins keep answering', async () => {
      class Slow {
        @PluginApi('spec.never')
        never(): Promise<unknown> {
          return new Promise(() => undefined);
        }
      }
      await wasmPlugin('blocked', 'ask.wat', { permissions: [{ type: 'system', scope: ['spec.never'] }], resourceLimits: { executionTimeoutMs: 300 } });
      await wasmPlugin('other', 'ask.wat', { permissions: [] });
      await writePlugin(root, { id: 'js', code: jsPlugin(`ping() { return 'pong'; }`, ['ping']) });
      host = await hostFor(root, { recovery: { restartOnCrash: false } });
      host.services.register(new Slow());
      const report = await host.loadAll();
      expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
      const crashed = firstValueFrom(host.events$.pipe(filter((e) => e.type === 'plugin.crashed' && e.pluginId === 'blocked')));
      expect(await rejection(ask('blocked', { op: 'services.call', operation: 'spec.never' }))).to.be.instanceOf(PluginTimeoutError);
      await crashed;
      expect(host.status('blocked').state).to.equal('crashed');
      expect((await ask('other', { op: 'fs.stat', path: 'x' })).error).to.include({ code: 'LOGOMESH_ERR_PERMISSION_DENIED' });
      expect(await host.call('js', 'ping')).to.equal('pong');
    });
  });
});
