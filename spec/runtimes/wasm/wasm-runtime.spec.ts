import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import {
  MethodNotExposedError,
  PluginCrashedError,
  PluginError,
  PluginHostError,
  PluginLoadError,
  PluginTimeoutError,
  ResourceLimitError,
} from '../../../lib/errors.js';
import type { PluginManifest, ResourceLimits } from '../../../lib/registry/manifest-schema.js';
import type { GatewayPort } from '../../../lib/runtimes/protocol.js';
import type { RuntimeInit } from '../../../lib/runtimes/runtime.js';
import { WasmRuntime } from '../../../lib/runtimes/wasm/wasm-runtime.js';
import { findRepoRoot } from '../../../scripts/write-schema.js';

const FIXTURES = join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), 'spec/fixtures/wasm');
const MB = 1024 * 1024;

/** Records every request, JSON round-tripped as the real wire would carry it. */
class RecordingGateway implements GatewayPort {
  readonly requests: unknown[] = [];
  async request(request: unknown): Promise<unknown> {
    this.requests.push(JSON.parse(JSON.stringify(request)));
    return undefined;
  }
}

async function rejection(promise: Promise<unknown>): Promise<PluginHostError> {
  try {
    await promise;
  } catch (e) {
    return e as PluginHostError;
  }
  throw new Error('expected a rejection');
}

describe('WasmRuntime (piscina)', function () {
  this.timeout(20_000);
  let dir: string;
  const runtimes: WasmRuntime[] = [];

  before(async () => {
    // Fixtures are WAT sources, compiled here so the repository holds no binaries.
    dir = await mkdtemp(join(tmpdir(), 'logomesh-wasm-'));
    const wabt = await wabtInit();
    for (const file of (await readdir(FIXTURES)).filter((f) => f.endsWith('.wat'))) {
      const module = wabt.parseWat(file, await readFile(join(FIXTURES, file), 'utf8'), { multi_value: true, reference_types: true });
      await writeFile(join(dir, file.replace(/\.wat$/, '.wasm')), module.toBinary({}).buffer);
      module.destroy();
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.dispose()));
  });

  function runtime(fixture: string, limits: Partial<ResourceLimits> = {}) {
    const gateway = new RecordingGateway();
    const crashes: PluginHostError[] = [];
    const manifest = { id: fixture, name: fixture, version: '1.0.0', entryPoint: `${fixture}.wasm`, runtime: 'wasm', apiVersion: '^1.0.0' } as PluginManifest;
    const init: RuntimeInit = {
      pluginId: fixture,
      dir,
      manifest,
      limits: { maxMemoryMB: 16, maxCpuPercent: 50, maxNetworkKbps: 1024, maxFileHandles: 16, executionTimeoutMs: 500, ...limits },
      gateway,
      onCrash: (e) => crashes.push(e),
    };
    const rt = new WasmRuntime(init);
    runtimes.push(rt);
    return { rt, gateway, crashes };
  }

  describe('a well-behaved plugin', () => {
    it('describes exposed methods from lm_ exports, handlers from lm_describe and hooks from lm_hook_ exports', async () => {
      const { rt } = runtime('echo');
      const description = await rt.load();
      expect(description.exposed).to.have.members(['echo', 'pair', 'upper', 'shout', 'fail', 'trap']);
      expect(description.handlers).to.deep.equal([{ pattern: 'document.*', method: 'saved' }]);
      expect(description.hooks).to.deep.equal(['serializeState']);
    });

    it('calls methods with JSON arguments and results, as null-prototype copies', async () => {
      const { rt } = runtime('echo');
      await rt.load();
      expect(await rt.call('upper', ['hello wasm'])).to.equal('HELLO WASM');
      const echoed = (await rt.call('echo', [{ a: 1, nested: { s: 'x' } }, 2])) as [Record<string, unknown>, number];
      expect(echoed).to.deep.equal([{ a: 1, nested: { s: 'x' } }, 2]);
      expect(Object.getPrototypeOf(echoed[0])).to.equal(null);
      expect(await rt.call('pair', ['two i32 results'])).to.deep.equal(['two i32 results']);
    });

    it('sends log and emit to the gateway before the call resolves', async () => {
      const { rt, gateway } = runtime('echo');
      await rt.load();
      expect(await rt.call('shout', ['hi'])).to.equal(undefined);
      expect(gateway.requests).to.deep.equal([
        { op: 'log', level: 'info', message: '["hi"]' },
        { op: 'emit', topic: 'shouted', data: ['hi'] },
      ]);
    });

    it('delivers events to lm_on_ handlers and runs hooks', async () => {
      const { rt, gateway } = runtime('echo');
      await rt.load();
      await rt.deliverEvent('document.saved', { id: 7 }, 'host', ['saved']);
      expect(gateway.requests).to.deep.equal([{ op: 'emit', topic: 'indexed', data: { topic: 'document.saved', data: { id: 7 }, source: 'host' } }]);
      expect(await rt.hook('serializeState')).to.deep.equal({ n: 1 });
      expect(await rt.hook('onStart')).to.equal(undefined);
    });

    it('refuses a method that is not exported', async () => {
      const { rt } = runtime('echo');
      await rt.load();
      expect(await rejection(rt.call('describe', []))).to.be.instanceOf(MethodNotExposedError);
      expect(await rejection(rt.call('on_saved', []))).to.be.instanceOf(MethodNotExposedError);
    });
  });

  describe('plugin failures are PluginErrors and leave the plugin running', () => {
    it('turns {"error": …} into a PluginError', async () => {
      const { rt, crashes } = runtime('echo');
      await rt.load();
      const error = await rejection(rt.call('fail', []));
      expect(error).to.be.instanceOf(PluginError);
      expect((error as PluginError).remote).to.deep.equal({ name: 'BadInput', message: 'nope', code: 'E_BAD' });
      expect(await rt.call('upper', ['still here'])).to.equal('STILL HERE');
      expect(crashes).to.have.length(0);
    });

    it('turns a trap into a PluginError with the trap message', async () => {
      const { rt, crashes } = runtime('echo');
      await rt.load();
      const error = await rejection(rt.call('trap', []));
      expect(error).to.be.instanceOf(PluginError);
      expect(error.pluginId).to.equal('echo');
      expect((error as PluginError).remote.name).to.equal('RuntimeError');
      expect((error as PluginError).remote.message).to.match(/unreachable/);
      expect(await rt.call('upper', ['ok'])).to.equal('OK');
      expect(crashes).to.have.length(0);
    });
  });

  describe('validation before instantiation', () => {
    async function refusal(fixture: string): Promise<PluginHostError> {
      const { rt, crashes } = runtime(fixture);
      const error = await rejection(rt.load());
      expect(error).to.be.instanceOf(PluginLoadError);
      expect(error.pluginId).to.equal(fixture);
      expect(crashes).to.have.length(0);
      return error;
    }

    it('refuses imports from any module but logomesh, naming the import', async () => {
      const error = await refusal('bad-import');
      expect(error.message).to.include(`'env'.'abort'`);
      expect(error.message).to.not.include(`'logomesh'.'log'`);
    });

    it('refuses a memory without a maximum', async () => {
      expect((await refusal('no-max-memory')).message).to.match(/memory 0 declares no maximum/);
    });

    it('refuses a memory whose maximum is beyond maxMemoryMB', async () => {
      expect((await refusal('big-memory')).message).to.match(/512 pages .* more than maxMemoryMB 16/);
    });

    it('refuses a table without a maximum', async () => {
      expect((await refusal('no-max-table')).message).to.match(/table 0 declares no maximum/);
    });

    it('refuses a start function', async () => {
      expect((await refusal('start-function')).message).to.match(/start function/);
    });

    it('refuses an entry point that is not a .wasm file', async () => {
      const { rt } = runtime('echo');
      (rt as unknown as { init: RuntimeInit }).init.manifest.entryPoint = 'echo.wat';
      expect(await rejection(rt.load())).to.be.instanceOf(PluginLoadError);
    });
  });

  describe('a hostile plugin ends only itself', () => {
    it('caps a memory.grow and table.grow bomb at the declared maxima', async () => {
      const { rt, crashes } = runtime('grow-bomb');
      await rt.load();
      expect(await rt.call('growMemory', [])).to.equal(256);
      expect(rt.metrics().memoryBytes).to.equal(16 * MB);
      expect(await rt.call('growTable', [])).to.equal(100);
      expect(crashes).to.have.length(0);
    });

    it('stops a flood of host requests at maxRequestsPerInvocation without ending the plugin', async () => {
      const { rt, gateway, crashes } = runtime('flood');
      await rt.load();
      const error = await rejection(rt.call('flood', []));
      expect(error).to.be.instanceOf(ResourceLimitError);
      expect((error as ResourceLimitError).resource).to.equal('requests');
      expect(gateway.requests).to.have.length(1000);
      expect(crashes).to.have.length(0);
    });

    it('ends a plugin that exhausts its worker heap with ResourceLimitError(memory), once', async () => {
      const { rt, crashes } = runtime('flood', { executionTimeoutMs: 10_000 });
      await rt.load();
      const error = await rejection(rt.call('heap', []));
      expect(error).to.be.instanceOf(ResourceLimitError);
      expect((error as ResourceLimitError).resource).to.equal('memory');
      expect(crashes).to.deep.equal([error]);
      expect(await rejection(rt.call('flood', []))).to.equal(error);
    });

    it('ends an infinite loop at the deadline with PluginTimeoutError, crashes once, then fails fast', async () => {
      const { rt, crashes } = runtime('spin');
      await rt.load();
      expect(await rt.call('ping', [])).to.equal('pong');
      const started = Date.now();
      const error = await rejection(rt.call('spin', []));
      expect(error).to.be.instanceOf(PluginTimeoutError);
      expect(error.pluginId).to.equal('spin');
      expect(Date.now() - started).to.be.within(450, 2000);
      expect(crashes).to.deep.equal([error]);

      const later = Date.now();
      expect(await rejection(rt.call('ping', []))).to.equal(error);
      expect(Date.now() - later).to.be.below(50);
      expect(crashes).to.have.length(1);
    });

    it('fails a call queued behind a loop with the same error, without a second crash', async () => {
      const { rt, crashes } = runtime('spin');
      await rt.load();
      const [spin, ping] = await Promise.all([rejection(rt.call('spin', [])), rejection(rt.call('ping', []))]);
      expect(spin).to.be.instanceOf(PluginTimeoutError);
      expect(ping).to.equal(spin);
      expect(crashes).to.have.length(1);
    });
  });

  describe('dispose', () => {
    it('terminates the worker, even in the middle of a loop, without reporting a crash', async () => {
      const { rt, crashes } = runtime('spin', { executionTimeoutMs: 10_000 });
      await rt.load();
      const spinning = rejection(rt.call('spin', []));
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      await rt.dispose();
      const error = await spinning;
      expect(Date.now() - started).to.be.below(2000);
      expect(error).to.be.instanceOf(PluginCrashedError);
      expect(crashes).to.have.length(0);
      expect(await rejection(rt.call('ping', []))).to.be.instanceOf(PluginCrashedError);
      await rt.dispose();
    });
  });
});
