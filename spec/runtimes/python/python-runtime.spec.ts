import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PluginManifest } from '../../../lib/registry/manifest-schema.js';
import { PythonRuntime } from '../../../lib/runtimes/python/python-runtime.js';
import type { RuntimeInit } from '../../../lib/runtimes/runtime.js';

/** Resolves once `condition()` holds, checking every 10 ms (fails the spec after 20 s). */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 20_000) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const COUNTER = `
from logomesh import plugin, expose, hook

@plugin
class Counter:
    def __init__(self, ctx):
        self.count = 0

    @expose
    def bump(self):
        self.count += 1
        return self.count

    @hook("serializeState")
    def save(self):
        return {"count": self.count}

    @hook("deserializeState")
    def restore(self, state):
        self.count = state["count"]
`;

// An idle Python worker (~100 MB) gives its memory back when the plugin can lose it safely;
// the next call wakes a new one from the snapshot and hands the state back.
describe('PythonRuntime idle reaping', function () {
  this.timeout(60_000);
  let dir: string;
  const runtimes: PythonRuntime[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'logomesh-pyreap-'));
    await mkdir(join(dir, 'counter'));
    await writeFile(join(dir, 'counter', 'main.py'), COUNTER);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => Promise.all(runtimes.splice(0).map((r) => r.dispose())));

  function runtime(idleWorkerMs: number) {
    const crashes: Error[] = [];
    const init: RuntimeInit = {
      pluginId: 'counter',
      dir: join(dir, 'counter'),
      manifest: { id: 'counter', name: 'counter', version: '1.0.0', entryPoint: 'main.py', runtime: 'python', apiVersion: '^1.0.0' } as PluginManifest,
      limits: { maxMemoryMB: 64, maxCpuPercent: 50, maxNetworkKbps: 1024, maxFileHandles: 16, executionTimeoutMs: 5000 },
      gateway: { request: async () => undefined },
      onCrash: (e) => crashes.push(e),
    };
    const rt = new PythonRuntime(init, { idleWorkerMs });
    runtimes.push(rt);
    return { rt, crashes };
  }

  it('ends the idle worker of a plugin that keeps its state, and wakes it with that state', async () => {
    const { rt, crashes } = runtime(100);
    await rt.load();
    expect(await rt.call('bump', [])).to.equal(1);
    expect(await rt.call('bump', [])).to.equal(2);
    await until(() => rt.asleep);
    expect(rt.metrics().memoryBytes).to.equal(0);
    expect(await rt.call('bump', []), 'the count came back through deserializeState').to.equal(3);
    expect(rt.asleep).to.equal(false);
    expect(crashes).to.deep.equal([]);
  });
});
