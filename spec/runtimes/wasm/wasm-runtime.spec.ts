import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import {
  CallCycleError,
  InvalidArgumentError,
  MethodNotExposedError,
  PermissionDeniedError,
  PluginCrashedError,
  PluginError,
  PluginHostError,
  PluginLoadError,
  PluginTimeoutError,
  ResourceLimitError,
} from '../../../lib/errors.js';
import type { ResourceLimits } from '../../../lib/registry/manifest-schema.js';
import type { RuntimeInit } from '../../../lib/runtimes/runtime.js';
import type { GatewayPort } from '../../../lib/runtimes/protocol.js';
import { WasmRuntime, type WasmRuntimeOptions } from '../../../lib/runtimes/wasm/wasm-runtime.js';
import { findRepoRoot } from '../../../scripts/write-schema.js';
import { rejection, runtimeInit } from '../../helpers/make-plugin.js';

const FIXTURES = join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), 'spec/fixtures/wasm');
const MB = 1024 * 1024;

/** Records every request, JSON round-tripped as the real wire would carry it; answers with `answer`. */
class RecordingGateway implements GatewayPort {
  readonly requests: unknown[] = [];
  constructor(private readonly answer: (request: any) => unknown = () => undefined) {}
  async request(request: unknown): Promise<unknown> {
    this.requests.push(JSON.parse(JSON.stringify(request)));
    return this.answer(request);
  }
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

  function runtime(fixture: string, limits: Partial<ResourceLimits> = {}, options: WasmRuntimeOptions = {}, gateway = new RecordingGateway()) {
    const { init, crashes } = runtimeInit({ id: fixture, runtime: 'wasm', entryPoint: `${fixture}.wasm` }, dir, { limits: { executionTimeoutMs: 500, ...limits }, gateway });
    const rt = new WasmRuntime(init, options);
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

  describe('host requests that wait for an answer (logomesh.request)', () => {
    /** A promise settled from outside, to hold a gateway answer back. */
    function deferred<T = unknown>() {
      let resolve!: (value: T) => void;
      const promise = new Promise<T>((r) => (resolve = r));
      return { promise, resolve };
    }

    it("answers with the gateway's value as {ok, value} JSON in plugin memory", async () => {
      const gateway = new RecordingGateway((r) => (r.op === 'fs.readFile' ? `contents of ${r.path}` : undefined));
      const { rt } = runtime('ask', {}, {}, gateway);
      await rt.load();
      expect(await rt.call('ask', [{ op: 'fs.readFile', path: 'a.txt' }])).to.deep.equal({ ok: true, value: 'contents of a.txt' });
      expect(await rt.call('ask', [{ op: 'fs.mkdir', path: 'd' }])).to.deep.equal({ ok: true });
      expect(gateway.requests).to.deep.equal([
        { op: 'fs.readFile', path: 'a.txt' },
        { op: 'fs.mkdir', path: 'd' },
      ]);
    });

    it('answers a gateway error as {ok: false, error: {name, message, code}} and the plugin keeps running', async () => {
      const gateway = new RecordingGateway((r) => {
        throw new PermissionDeniedError('ask', 'fs.readFile', r.path, `filesystem:${r.path}:read`);
      });
      const { rt, crashes } = runtime('ask', {}, {}, gateway);
      await rt.load();
      const answer = (await rt.call('ask', [{ op: 'fs.readFile', path: 'secret.txt' }])) as { ok: boolean; error: Record<string, unknown> };
      expect(answer.ok).to.equal(false);
      expect(answer.error).to.include({ name: 'PermissionDeniedError', code: PermissionDeniedError.code });
      expect(answer.error.message).to.be.a('string').and.include('secret.txt');
      expect(crashes).to.have.length(0);
    });

    it('answers request text that is not JSON with an InvalidArgumentError, without asking the gateway', async () => {
      const { rt, gateway } = runtime('ask');
      await rt.load();
      const answer = (await rt.call('raw', ['not json'])) as { ok: boolean; error: Record<string, unknown> };
      expect(answer).to.deep.include({ ok: false });
      expect(answer.error).to.include({ name: 'InvalidArgumentError', code: InvalidArgumentError.code });
      expect(gateway.requests).to.deep.equal([]);
    });

    it('sends fire-and-forget requests made before a blocking one to the gateway first', async () => {
      const { rt, gateway } = runtime('ask');
      await rt.load();
      await rt.call('logAsk', [{ op: 'fs.stat', path: 'x' }]);
      expect(gateway.requests).to.deep.equal([
        { op: 'log', level: 'info', message: '{"op":"fs.stat","path":"x"}' },
        { op: 'fs.stat', path: 'x' },
      ]);
    });

    it('fails a call that waits longer than executionTimeoutMs for its turn, without running it or ending the plugin', async () => {
      const held: ((value: unknown) => void)[] = [];
      const gateway = new RecordingGateway(() => new Promise((resolve) => held.push(resolve)));
      const { rt, crashes } = runtime('stateless', { executionTimeoutMs: 300 }, {}, gateway);
      await rt.load();
      const began = Date.now();
      const first = rt.call('ask', [{ op: 'fs.stat', path: 'a' }]);
      const second = rt.call('ask', [{ op: 'fs.stat', path: 'b' }]);
      const third = rejection(rt.call('ping', []));
      // The first call holds the worker 200 ms, then the second holds it: the third, queued
      // behind both, gives up 300 ms after it was made; each running call stays within its own.
      await new Promise((r) => setTimeout(r, 200));
      held.shift()!('a');
      const error = await third;
      expect(error).to.be.instanceOf(PluginTimeoutError);
      expect(error).to.include({ queued: true, timeoutMs: 300 });
      expect(error.message).to.match(/waited 300 ms for its turn and did not run; the plugin keeps running/);
      expect(Date.now() - began).to.be.at.least(290);
      held.shift()!('b');
      expect(await first).to.deep.equal({ ok: true, value: 'a' });
      expect(await second).to.deep.equal({ ok: true, value: 'b' });
      expect(gateway.requests).to.have.length(2);
      expect(crashes).to.have.length(0);
      expect(await rt.call('ping', [])).to.equal('pong');
    });

    it('fails the call with ResourceLimitError(payload) when the answer is over maxPayloadBytes, and keeps the plugin', async () => {
      const gateway = new RecordingGateway((r) => (r.path === 'big' ? 'x'.repeat(4096) : 'small'));
      const { rt, crashes } = runtime('ask', {}, { maxPayloadBytes: 1024 }, gateway);
      await rt.load();
      const error = await rejection(rt.call('ask', [{ op: 'fs.readFile', path: 'big' }]));
      expect(error).to.be.instanceOf(ResourceLimitError);
      expect((error as ResourceLimitError).resource).to.equal('payload');
      expect(await rt.call('ask', [{ op: 'fs.readFile', path: 'b' }])).to.deep.equal({ ok: true, value: 'small' });
      expect(crashes).to.have.length(0);
    });

    it('counts blocking requests against maxRequestsPerInvocation', async () => {
      const { rt, gateway, crashes } = runtime('ask', {}, { maxRequestsPerInvocation: 1 });
      await rt.load();
      const error = await rejection(rt.call('twice', [{ op: 'fs.stat', path: 'x' }]));
      expect(error).to.be.instanceOf(ResourceLimitError);
      expect((error as ResourceLimitError).resource).to.equal('requests');
      expect(gateway.requests).to.have.length(1);
      expect(await rt.call('ask', [{ op: 'fs.stat', path: 'x' }])).to.deep.equal({ ok: true });
      expect(crashes).to.have.length(0);
    });

    it('refuses a call to the plugin itself at once instead of deadlocking', async () => {
      const { rt, gateway, crashes } = runtime('ask', { executionTimeoutMs: 60_000 });
      await rt.load();
      const answer = (await rt.call('ask', [{ op: 'call', pluginId: 'ask', method: 'ask', args: [] }])) as { ok: boolean; error: Record<string, unknown> };
      expect(answer.ok).to.equal(false);
      expect(answer.error).to.include({ name: 'CallCycleError', code: CallCycleError.code });
      expect(answer.error.message).to.include('ask → ask refused');
      expect(gateway.requests).to.deep.equal([]);
      expect(crashes).to.have.length(0);
    });

    it('ends a plugin blocked past its deadline with PluginTimeoutError; the late answer does nothing', async () => {
      const held = deferred();
      const { rt, crashes } = runtime('ask', { executionTimeoutMs: 300 }, {}, new RecordingGateway(() => held.promise));
      await rt.load();
      const error = await rejection(rt.call('ask', [{ op: 'net.fetch', url: 'http://example.test/' }]));
      expect(error).to.be.instanceOf(PluginTimeoutError);
      expect(crashes).to.deep.equal([error]);
      held.resolve('too late');
      await new Promise((r) => setImmediate(r));
      expect(await rejection(rt.call('ask', [{ op: 'fs.stat', path: 'x' }]))).to.equal(error);
      expect(crashes).to.have.length(1);
    });

    it('dispose ends a worker blocked waiting for an answer, without a crash report', async () => {
      const held = deferred();
      const gateway = new RecordingGateway(() => held.promise);
      const { rt, crashes } = runtime('ask', { executionTimeoutMs: 60_000 }, {}, gateway);
      await rt.load();
      const blocked = rejection(rt.call('ask', [{ op: 'fs.stat', path: 'x' }]));
      while (gateway.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      await rt.dispose();
      expect(await blocked).to.be.instanceOf(PluginCrashedError);
      held.resolve('after dispose');
      await new Promise((r) => setImmediate(r));
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
