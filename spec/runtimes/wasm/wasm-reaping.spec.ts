import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wabtInit from 'wabt';
import type { PluginManifest } from '../../../lib/registry/manifest-schema.js';
import { WasmRuntime } from '../../../lib/runtimes/wasm/wasm-runtime.js';
import { runtimeInit } from '../../helpers/make-plugin.js';

const TEXT_METRICS = new URL('../../../../plugins/text-metrics/', import.meta.url).pathname;
const FIXTURES = new URL('../../../../spec/fixtures/wasm/', import.meta.url).pathname;

/** Resolves once `condition()` holds, checking every 10 ms (fails the spec after 10 s). */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 10_000) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// An idle worker gives its memory back when the plugin can lose it safely (stateless, or its
// state kept by serializeState/deserializeState); the next invocation wakes a new one.
describe('WasmRuntime idle reaping', function () {
  this.timeout(20_000);
  const runtimes: WasmRuntime[] = [];
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'logomesh-reap-'))));
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => Promise.all(runtimes.splice(0).map((r) => r.dispose())));

  function runtime(pluginDir: string, manifest: Partial<PluginManifest>, idleWorkerMs: number) {
    const { init, crashes } = runtimeInit({ runtime: 'wasm', ...manifest } as PluginManifest, pluginDir, { limits: { executionTimeoutMs: 2000 } });
    const rt = new WasmRuntime(init, { idleWorkerMs });
    runtimes.push(rt);
    return { rt, crashes };
  }

  it('reaps the worker of a plugin that keeps its state, and wakes it with the state on the next call', async () => {
    const { rt, crashes } = runtime(TEXT_METRICS, { id: 'text-metrics', entryPoint: 'build/text-metrics.wasm' }, 50);
    const description = await rt.load();
    const handler = description.handlers[0].method;
    await rt.deliverEvent('document.saved', { id: 1, text: 'a b' }, 'host', [handler]);
    await rt.deliverEvent('document.saved', { id: 2, text: 'c' }, 'host', [handler]);
    expect(await rt.call('count', [])).to.equal(2);
    await until(() => rt.asleep);
    expect(rt.metrics().memoryBytes, 'a reaped plugin holds no linear memory').to.equal(0);
    expect(await rt.call('count', []), 'the count came back through deserializeState').to.equal(2);
    expect(rt.asleep).to.equal(false);
    expect(rt.metrics().memoryBytes).to.be.greaterThan(0);
    await until(() => rt.asleep);
    await rt.deliverEvent('document.saved', { id: 3, text: 'd' }, 'host', [handler]);
    expect(await rt.call('count', [])).to.equal(3);
    expect(crashes).to.deep.equal([]);
  });

  it('never reaps a plugin that would lose in-memory state (not stateless, no state hooks)', async () => {
    const wabt = await wabtInit();
    const module = wabt.parseWat('echo.wat', await readFile(join(FIXTURES, 'echo.wat'), 'utf8'), { multi_value: true, reference_types: true });
    await writeFile(join(dir, 'echo.wasm'), module.toBinary({}).buffer);
    module.destroy();
    const stateful = runtime(dir, { id: 'echo', entryPoint: 'echo.wasm' }, 20);
    const stateless = runtime(dir, { id: 'echo2', entryPoint: 'echo.wasm', stateless: true }, 20);
    await stateful.rt.load();
    await stateless.rt.load();
    expect(await stateless.rt.call('upper', ['hi'])).to.equal('HI');
    await until(() => stateless.rt.asleep);
    expect(stateful.rt.asleep).to.equal(false);
    expect(await stateless.rt.call('upper', ['again'])).to.equal('AGAIN');
  });
});
