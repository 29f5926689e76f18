import { expect } from 'chai';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { PluginApi, PluginTimeoutError, type HostOptions, type PluginHost } from '../../lib/index.js';
import { hostFor, rejection, sandbox } from '../helpers/make-plugin.js';

const FIXTURES = new URL('../../../spec/fixtures/wasm/', import.meta.url).pathname;

/** A host service whose calls wait until the spec opens the gate; counts how many wait at once. */
class Gate {
  private readonly waiting: (() => void)[] = [];
  mostWaiting = 0;
  get size(): number {
    return this.waiting.length;
  }
  @PluginApi('spec.gate')
  pass(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(() => resolve('passed'));
      this.mostWaiting = Math.max(this.mostWaiting, this.waiting.length);
    });
  }
  open(): void {
    for (const pass of this.waiting.splice(0)) pass();
  }
}

/** Answers the first caller at once and never answers later ones (a replica whose onStart hangs). */
class FirstStart {
  @PluginApi('spec.firstStart')
  pass(): Promise<string> {
    return ++FirstStart.seen === 1 ? Promise.resolve('ok') : new Promise(() => undefined);
  }
  static seen = 0;
}

/** stateless.wat with an onStart that asks the host for spec.firstStart (which hangs after the first time). */
function hangingOnStart(wat: string): string {
  const request = '{"op":"services.call","operation":"spec.firstStart"}';
  return wat
    .replace('(data (i32.const 32) "stopped")', `(data (i32.const 32) "stopped")\n  (data (i32.const 64) ${JSON.stringify(request).replace(/\\"/g, '\\22')})`)
    .replace(
      /\(func \(export "lm_hook_onStart"\)[\s\S]*?\(i64.const 0\)\)/,
      `(func (export "lm_hook_onStart") (param i32 i32) (result i64)\n    (drop (call $request (i32.const 64) (i32.const ${request.length})))\n    (i64.const 0))`,
    );
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

// A stateless WebAssembly plugin with `threads` runs its calls on several worker threads at once.
describe('e2e: a stateless WebAssembly plugin on several threads', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  async function start(options: HostOptions = {}, extra: Record<string, unknown> = {}, transform = (wat: string) => wat): Promise<Gate> {
    const wabt = await wabtInit();
    const module = wabt.parseWat('stateless.wat', transform(await readFile(join(FIXTURES, 'stateless.wat'), 'utf8')), { multi_value: true });
    const { buffer } = module.toBinary({});
    module.destroy();
    const dir = join(root, 'pool');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'plugin.wasm'), buffer);
    const manifest = {
      id: 'pool',
      name: 'pool',
      version: '1.0.0',
      entryPoint: 'plugin.wasm',
      runtime: 'wasm',
      apiVersion: '^1.0.0',
      stateless: true,
      threads: { min: 1, max: 3 },
      permissions: [{ type: 'system', scope: ['spec.gate', 'spec.firstStart'] }],
      ...extra,
    };
    await writeFile(join(dir, 'plugin.json'), JSON.stringify(manifest));
    const gate = new Gate();
    host = await hostFor(root, options);
    host.services.register(gate);
    host.services.register(new FirstStart());
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
    return gate;
  }

  const pass = () => host.call('pool', 'ask', { op: 'services.call', operation: 'spec.gate' });

  it('answers concurrent calls on up to threads.max threads at once', async () => {
    const gate = await start();
    const calls = [1, 2, 3, 4].map(pass);
    // Three calls inside the plugin together: three threads.
    await until(() => gate.size === 3);
    let settled = false;
    void Promise.allSettled(calls).then(() => (settled = true));
    while (!settled) {
      gate.open();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await Promise.all(calls)).to.deep.equal(calls.map(() => ({ ok: true, value: 'passed' })));
    expect(gate.mostWaiting).to.equal(3);
    expect(host.status('pool').state).to.equal('started');
  });

  it('keeps one thread when the host turns scaleOnHighLoad off', async () => {
    const gate = await start({ policies: { scaleOnHighLoad: false } });
    const calls = [1, 2, 3].map(pass);
    for (let answered = 0; answered < 3; answered++) {
      await until(() => gate.size === 1);
      gate.open();
    }
    expect(await Promise.all(calls)).to.have.length(3);
    expect(gate.mostWaiting).to.equal(1);
  });

  it("caps the threads at the host's maxThreadsPerPlugin, whatever the manifest asks", async () => {
    const gate = await start({ maxThreadsPerPlugin: 2 });
    const calls = [1, 2, 3].map(pass);
    await until(() => gate.size === 2);
    let settled = false;
    void Promise.allSettled(calls).then(() => (settled = true));
    while (!settled) {
      gate.open();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await Promise.all(calls)).to.have.length(3);
    expect(gate.mostWaiting).to.equal(2);
  });

  it('drops a thread added under load whose onStart misses its deadline; the plugin keeps answering', async () => {
    FirstStart.seen = 0;
    const gate = await start({ recovery: { restartOnCrash: false } }, { resourceLimits: { executionTimeoutMs: 1000 } }, hangingOnStart);
    const crashed: string[] = [];
    const subscription = host.events$.subscribe((e) => e.type === 'plugin.crashed' && crashed.push(e.pluginId));
    const first = pass();
    await until(() => gate.size === 1);
    const second = pass(); // waits: a second thread is added, and its onStart hangs
    await until(() => FirstStart.seen === 2);
    gate.open();
    await first;
    await until(() => gate.size === 1); // the second call runs on the first thread
    gate.open();
    expect(await second).to.deep.equal({ ok: true, value: 'passed' });
    await new Promise((resolve) => setTimeout(resolve, 1200)); // past the hanging onStart's deadline
    subscription.unsubscribe();
    expect(crashed).to.deep.equal([]);
    expect(host.status('pool').state).to.equal('started');
    expect(await host.call('pool', 'ping')).to.equal('pong');
  });

  it('ends the plugin once when a thread misses its deadline, as a single-thread plugin', async () => {
    await start({ recovery: { restartOnCrash: false } }, { resourceLimits: { executionTimeoutMs: 300 } });
    const crashed: string[] = [];
    const subscription = host.events$.subscribe((e) => e.type === 'plugin.crashed' && e.pluginId === 'pool' && crashed.push(e.type));
    const errors = await Promise.all([host.call('pool', 'spin'), host.call('pool', 'spin')].map(rejection));
    for (const e of errors) expect(e).to.be.instanceOf(PluginTimeoutError);
    await until(() => host.status('pool').state === 'crashed');
    subscription.unsubscribe();
    expect(crashed).to.have.length(1);
  });
});
