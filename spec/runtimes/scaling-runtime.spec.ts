import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import { PluginLoadError, PluginTimeoutError } from '../../lib/errors.js';
import type { GatewayPort } from '../../lib/runtimes/protocol.js';
import { ScalingRuntime, type ScalingOptions } from '../../lib/runtimes/scaling-runtime.js';
import { WasmRuntime } from '../../lib/runtimes/wasm/wasm-runtime.js';
import { findRepoRoot } from '../../scripts/write-schema.js';
import { rejection, runtimeInit } from '../helpers/make-plugin.js';

const FIXTURES = join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), 'spec/fixtures/wasm');
const MB = 1024 * 1024;

/**
 * Holds every blocking request (`logomesh.request`) until the spec releases it, so a spec
 * decides when each call ends; records logs. Requests are JSON round-tripped as the wire would.
 */
class GatedGateway implements GatewayPort {
  readonly held: { request: any; release(value: unknown): void }[] = [];
  readonly logs: string[] = [];
  /** Most requests held at once: how many threads were inside a call together. */
  mostHeld = 0;
  async request(raw: unknown): Promise<unknown> {
    const request = JSON.parse(JSON.stringify(raw));
    if (request.op === 'log') {
      this.logs.push(request.message);
      return undefined;
    }
    return new Promise((release) => {
      this.held.push({ request, release });
      this.mostHeld = Math.max(this.mostHeld, this.held.length);
    });
  }
  releaseAll(): void {
    for (const h of this.held.splice(0)) h.release(h.request);
  }
  count(message: string): number {
    return this.logs.filter((m) => m === message).length;
  }
}

/** Resolves once `condition` holds, checking on each turn of the event loop (the spec timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** What ask() returns for a request the gateway answered with itself. */
const answer = (value: unknown) => ({ ok: true, value });

/** Answers held requests as they come until every call settled. */
async function releaseUntilSettled(gateway: GatedGateway, calls: Promise<unknown>[]): Promise<void> {
  let settled = false;
  void Promise.allSettled(calls).then(() => (settled = true));
  while (!settled) {
    gateway.releaseAll();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('ScalingRuntime (replicas of a stateless wasm plugin)', function () {
  this.timeout(30_000);
  let dir: string;
  const runtimes: ScalingRuntime[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'logomesh-scaling-'));
    const wabt = await wabtInit();
    for (const fixture of ['stateless', 'echo']) {
      const module = wabt.parseWat(`${fixture}.wat`, await readFile(join(FIXTURES, `${fixture}.wat`), 'utf8'), { multi_value: true });
      await writeFile(join(dir, `${fixture}.wasm`), module.toBinary({}).buffer);
      module.destroy();
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.dispose()));
  });

  function scaling(options: ScalingOptions, { timeoutMs = 5000, entries = ['stateless.wasm'] } = {}) {
    const gateway = new GatedGateway();
    const { init, crashes } = runtimeInit({ id: 'pool', runtime: 'wasm', entryPoint: entries[0], stateless: true }, dir, { limits: { executionTimeoutMs: timeoutMs }, gateway });
    const manifest = init.manifest;
    let built = 0;
    // Each replica is a complete single-thread runtime; `entries` lets a spec make them differ.
    const rt = new ScalingRuntime(init, (replica) => new WasmRuntime({ ...replica, manifest: { ...manifest, entryPoint: entries[built++ % entries.length] } }), options);
    runtimes.push(rt);
    return { rt, gateway, crashes };
  }

  it('adds a replica for each call that waits, up to max, and every call answers', async () => {
    const { rt, gateway } = scaling({ min: 1, max: 3 });
    await rt.load();
    expect(rt.size).to.equal(1);
    const calls = [1, 2, 3, 4, 5].map((n) => rt.call('ask', [{ n }]));
    expect(rt.size).to.equal(3);
    // Three threads each blocked inside a call at once: the replicas run in parallel.
    await until(() => gateway.held.length === 3);
    expect(rt.metrics().memoryLimitBytes).to.equal(3 * 16 * MB);
    await releaseUntilSettled(gateway, calls);
    expect(await Promise.all(calls)).to.deep.equal([1, 2, 3, 4, 5].map((n) => answer({ n })));
    expect(rt.size).to.equal(3);
    expect(gateway.mostHeld).to.equal(3);
    const metrics = rt.metrics();
    expect(metrics.cpuTimeMs).to.be.greaterThan(0);
    expect(metrics.boundaryBytes).to.be.greaterThan(0);
  });

  it('stays at one replica with scaling off, and answers the calls one after another', async () => {
    const { rt, gateway } = scaling({ min: 1, max: 3, scaleOnHighLoad: false });
    await rt.load();
    const calls = [1, 2, 3].map((n) => rt.call('ask', [n]));
    expect(rt.size).to.equal(1);
    for (let answered = 0; answered < 3; answered++) {
      await until(() => gateway.held.length === 1);
      gateway.releaseAll();
    }
    expect(await Promise.all(calls)).to.deep.equal([1, 2, 3].map(answer));
    expect(gateway.mostHeld).to.equal(1);
    expect(rt.size).to.equal(1);
  });

  it('fails a call that waits longer than executionTimeoutMs for a replica, without running it or ending the plugin', async () => {
    const { rt, gateway, crashes } = scaling({ min: 1, max: 3, scaleOnHighLoad: false }, { timeoutMs: 300 });
    await rt.load();
    const first = rt.call('ask', [1]);
    const second = rt.call('ask', [2]);
    const third = rejection(rt.call('ping', []));
    // One replica: the first call holds it 200 ms, then the second; the third gives up at 300 ms.
    await new Promise((r) => setTimeout(r, 200));
    gateway.releaseAll();
    const error = await third;
    expect(error).to.be.instanceOf(PluginTimeoutError);
    expect(error).to.include({ queued: true, timeoutMs: 300 });
    await until(() => gateway.held.length === 1);
    gateway.releaseAll();
    expect(await Promise.all([first, second])).to.deep.equal([answer(1), answer(2)]);
    expect(crashes).to.have.length(0);
    expect(await rt.call('ping', [])).to.equal('pong');
  });

  it('runs onStart on every replica, also those added later, and onStop on replicas it removes when idle', async () => {
    const { rt, gateway } = scaling({ min: 1, max: 3, idleMs: 50 });
    await rt.load();
    await rt.hook('onStart');
    expect(gateway.count('started')).to.equal(1);
    const calls = [1, 2, 3].map((n) => rt.call('ask', [n]));
    await until(() => gateway.held.length === 3);
    expect(gateway.count('started')).to.equal(3);
    gateway.releaseAll();
    expect(await Promise.all(calls)).to.deep.equal([1, 2, 3].map(answer));
    // Idle past idleMs: back to min, each removed replica stopped first.
    await until(() => rt.size === 1 && gateway.count('stopped') === 2);
    expect(await rt.call('ping', [])).to.equal('pong');
    await rt.hook('onStop');
    expect(gateway.count('stopped')).to.equal(3);
  });

  it('keeps min replicas when idle and routes to any of them', async () => {
    const { rt, gateway } = scaling({ min: 2, max: 2, idleMs: 10 });
    await rt.load();
    expect(rt.size).to.equal(2);
    const calls = [1, 2].map((n) => rt.call('ask', [n]));
    await until(() => gateway.held.length === 2);
    gateway.releaseAll();
    expect(await Promise.all(calls)).to.deep.equal([1, 2].map(answer));
    expect(await rt.hook('checkHealth')).to.equal(undefined);
    await rt.deliverEvent('x.y', {}, 'host', []);
    expect(rt.size).to.equal(2);
  });

  it('ends every replica when one misses its deadline: onCrash once, waiting calls fail with the same error', async () => {
    const { rt, crashes } = scaling({ min: 2, max: 2 }, { timeoutMs: 300 });
    await rt.load();
    const spinning = [rt.call('spin', []), rt.call('spin', [])];
    // Made after the spins began: it would give up waiting later than they miss their deadline.
    await new Promise((r) => setTimeout(r, 50));
    const waiting = rt.call('ping', []);
    const errors = await Promise.all([...spinning, waiting].map(rejection));
    for (const e of errors) expect(e).to.be.instanceOf(PluginTimeoutError);
    expect(crashes).to.have.length(1);
    expect(errors[2]).to.equal(crashes[0]);
    expect(rt.size).to.equal(0);
    expect(await rejection(rt.call('ping', []))).to.equal(crashes[0]);
  });

  it('refuses replicas that describe the plugin differently with PluginLoadError', async () => {
    const { rt, crashes } = scaling({ min: 2, max: 2 }, { entries: ['stateless.wasm', 'echo.wasm'] });
    expect(await rejection(rt.load())).to.be.instanceOf(PluginLoadError);
    expect(crashes).to.deep.equal([]);
    expect(rt.size).to.equal(0);
  });

  it('ends the plugin when a replica added later describes it differently', async () => {
    const { rt, gateway, crashes } = scaling({ min: 1, max: 2 }, { entries: ['stateless.wasm', 'echo.wasm'] });
    await rt.load();
    const [first, second] = [1, 2].map((n) => rejection(rt.call('ask', [n])));
    await until(() => crashes.length === 1);
    expect(crashes[0]).to.be.instanceOf(PluginLoadError);
    expect(await second).to.equal(crashes[0]);
    gateway.releaseAll();
    expect(await first).to.equal(crashes[0]);
  });
});
