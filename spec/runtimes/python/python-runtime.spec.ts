import { expect } from 'chai';
import { PluginCrashedError, PluginTimeoutError } from '../../../lib/errors.js';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PythonRuntime } from '../../../lib/runtimes/python/python-runtime.js';
import { SnapshotCache } from '../../../lib/runtimes/python/snapshot-cache.js';
import { runtimeInit } from '../../helpers/make-plugin.js';

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

/** Its deserializeState fails: a woken worker cannot get its state back. */
const FORGETFUL = COUNTER.replace('self.count = state["count"]', 'raise ValueError("cannot restore")');

/** Its health check takes a while (sleeping) or forever (spinning). */
const PROBED = `
import asyncio
from logomesh import plugin, expose, hook

@plugin
class Probed:
    def __init__(self, ctx):
        self.checking = False
        self.spin = False

    @expose
    def ping(self):
        return "checking" if self.checking else "idle"

    @expose
    def spin_next(self):
        self.spin = True

    @hook("checkHealth")
    async def check(self):
        self.checking = True
        try:
            while self.spin:
                pass
            await asyncio.sleep(0.6)
        finally:
            self.checking = False
        return {"status": "healthy"}
`;

const PLUGINS = { counter: COUNTER, forgetful: FORGETFUL, probed: PROBED };

/** Plugin `id` (its main.py in `<root>/<id>`) with 64 MB and `executionTimeoutMs`. */
const pythonInit = (root: string, id: string, executionTimeoutMs: number) =>
  runtimeInit({ id, runtime: 'python', entryPoint: 'main.py' }, join(root, id), { limits: { maxMemoryMB: 64, executionTimeoutMs } });

// An idle Python worker (~100 MB) gives its memory back when the plugin can lose it safely;
// the next call wakes a new one from the snapshot and hands the state back.
describe('PythonRuntime idle reaping', function () {
  this.timeout(60_000);
  let dir: string;
  const runtimes: PythonRuntime[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'logomesh-pyreap-'));
    for (const [name, code] of Object.entries(PLUGINS)) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'main.py'), code);
    }
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => Promise.all(runtimes.splice(0).map((r) => r.dispose())));

  function runtime(idleWorkerMs: number, id: keyof typeof PLUGINS = 'counter', executionTimeoutMs = 5000) {
    const { init, crashes } = pythonInit(dir, id, executionTimeoutMs);
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

  it('ends the plugin (crash) when a woken worker cannot get its state back, instead of running without it', async () => {
    const { rt, crashes } = runtime(100, 'forgetful');
    await rt.load();
    expect(await rt.call('bump', [])).to.equal(1);
    await until(() => rt.asleep);
    const error = await rt.call('bump', []).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(PluginCrashedError);
    expect((error as Error).message).to.include('could not wake its worker');
    expect(crashes).to.have.length(1);
    expect(await rt.call('bump', []).then(() => 'answered', (e: unknown) => e)).to.be.instanceOf(PluginCrashedError);
  });

  it('refuses a call after dispose() instead of waking a worker nobody will end', async () => {
    const { rt } = runtime(100);
    await rt.load();
    await until(() => rt.asleep);
    await rt.dispose();
    expect(await rt.call('bump', []).then(() => 'answered', (e: unknown) => e)).to.be.instanceOf(PluginCrashedError);
  });
});

describe('PythonRuntime health probes', function () {
  this.timeout(60_000);
  let dir: string;
  const runtimes: PythonRuntime[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'logomesh-pyprobe-'));
    await mkdir(join(dir, 'probed'));
    await writeFile(join(dir, 'probed', 'main.py'), PROBED);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => Promise.all(runtimes.splice(0).map((r) => r.dispose())));

  function probed(executionTimeoutMs: number) {
    const { init, crashes } = pythonInit(dir, 'probed', executionTimeoutMs);
    const rt = new PythonRuntime(init);
    runtimes.push(rt);
    return { rt, crashes };
  }

  it('a probe that gives up early does not let the next call run while the check still runs', async () => {
    const { rt } = probed(5000);
    await rt.load();
    const probe = rt.hook('checkHealth', undefined, { deadlineMs: 100, crashOnTimeout: false });
    expect(await probe.then(() => 'answered', (e: unknown) => e)).to.be.instanceOf(PluginTimeoutError);
    // The check is still sleeping in the worker: the call waits for it instead of running beside it.
    expect(await rt.call('ping', [])).to.equal('idle');
  });

  it('a probe that gives up early still leaves the plugin its interrupt: a looping check ends without a crash', async () => {
    const { rt, crashes } = probed(400);
    await rt.load();
    await rt.call('spin_next', []);
    const probe = rt.hook('checkHealth', undefined, { deadlineMs: 50, crashOnTimeout: false });
    expect(await probe.then(() => 'answered', (e: unknown) => e)).to.be.instanceOf(PluginTimeoutError);
    // Interrupted at executionTimeoutMs (its `finally` may itself be interrupted: either answer is fine).
    expect(await rt.call('ping', [])).to.be.oneOf(['idle', 'checking']);
    expect(crashes).to.deep.equal([]);
  });
});

// The process-wide Pyodide caches (snapshot, files, compiled module, code cache) are worth
// ~60 MB: they go once no Python plugin is loaded for releaseCachesAfterMs.
describe('PythonRuntime process-wide caches', function () {
  this.timeout(60_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'logomesh-pycache-'));
    await mkdir(join(dir, 'counter'));
    await writeFile(join(dir, 'counter', 'main.py'), COUNTER);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  function runtime(releaseCachesAfterMs: number, snapshots: SnapshotCache): PythonRuntime {
    return new PythonRuntime(pythonInit(dir, 'counter', 5000).init, { releaseCachesAfterMs, snapshots });
  }

  it('drops them once the last Python plugin is gone, and the next load restores the snapshot from disk', async () => {
    const cacheDir = join(dir, 'cache');
    const snapshots = new SnapshotCache(cacheDir);
    // Made by this spec's first load (not restored from an earlier spec's memory), so it is on disk.
    SnapshotCache.forget();
    const first = runtime(50, snapshots);
    await first.load();
    expect(await first.call('bump', [])).to.equal(1);
    expect(SnapshotCache.held).to.equal(true);
    const file = join(cacheDir, `${await snapshots.keyOf()}.snapshot`);
    await until(() => existsSync(file));
    const written = statSync(file).mtimeMs;
    await first.dispose();
    await until(() => !SnapshotCache.held);

    const second = runtime(50, snapshots);
    try {
      await second.load();
      expect(SnapshotCache.held).to.equal(true);
      expect(statSync(file).mtimeMs, 'the snapshot was read, not made again').to.equal(written);
      expect(await second.call('bump', [])).to.equal(1);
    } finally {
      await second.dispose();
    }
  });

  it('keeps them while a Python plugin is loaded, and through a gap shorter than releaseCachesAfterMs', async () => {
    const snapshots = new SnapshotCache(join(dir, 'cache'));
    const first = runtime(60_000, snapshots);
    await first.load();
    const second = runtime(60_000, snapshots);
    await second.load();
    await first.dispose();
    await second.dispose();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(SnapshotCache.held).to.equal(true);
  });
});
