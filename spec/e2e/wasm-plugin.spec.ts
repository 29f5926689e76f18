import { expect } from 'chai';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { filter, firstValueFrom } from 'rxjs';
import wabtInit from 'wabt';
import { main } from '../../lib/cli/main.js';
import { PluginError, PluginTimeoutError, type PluginHost } from '../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, sandbox } from '../helpers/make-plugin.js';

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
});
