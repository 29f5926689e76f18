import { expect } from 'chai';
import { rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { filter, firstValueFrom } from 'rxjs';
import { ImportRefusedError, ManifestError, ResourceLimitError, type HostEvent, type PluginHost } from '../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, sandbox } from '../helpers/make-plugin.js';

// Attack specs: a hostile plugin trying to take host memory, the host's event loop or
// another plugin down. Each must end (or throttle) only the attacker.
describe('security: host resources under attack', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  const healthy = { id: 'healthy', code: jsPlugin(`ping(x) { return { pong: x }; }`, ['ping']) };

  async function start(...specs: Parameters<typeof writePlugin>[1][]) {
    for (const s of specs) await writePlugin(root, s);
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
  }

  it('memory outside the isolate heap is not available: no resizable buffers, no Intl, no WebAssembly', async () => {
    await start({
      id: 'attacker',
      resourceLimits: { maxMemoryMB: 16 },
      code: jsPlugin(
        `probe() {
          const b = new ArrayBuffer(0, { maxByteLength: 2 ** 30 });
          const s = new SharedArrayBuffer(0, { maxByteLength: 2 ** 30 });
          return [typeof b.resize, b.resizable === true, typeof s.grow, typeof Intl, typeof WebAssembly];
        }`,
        ['probe'],
      ),
    });
    expect(await host.call('attacker', 'probe')).to.deep.equal(['undefined', false, 'undefined', 'undefined', 'undefined']);
  });

  it('a log flood is bounded: the host holds a fixed number of records and the plugin is told how many were dropped', async () => {
    const records: { msg: string; fields?: { droppedLogs?: number } }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });
    await writePlugin(root, {
      id: 'flooder',
      code: jsPlugin(
        `flood() { for (let i = 0; i < 100000; i++) this.ctx.log.info('x'); return 'done'; }
         async after() { await this.ctx.emit('settle'); this.ctx.log.info('after'); }`,
        ['flood', 'after'],
      ),
    });
    host = await hostFor(root, { logger });
    await host.loadAll();
    expect(await host.call('flooder', 'flood')).to.equal('done');
    const floods = records.filter((r) => r.msg === 'x').length;
    expect(floods).to.be.at.most(256);
    await host.call('flooder', 'after');
    await new Promise((r) => setTimeout(r, 50));
    const after = records.find((r) => r.msg === 'after');
    expect(after?.fields?.droppedLogs).to.equal(100000 - floods);
  });

  it('an emit flood is refused past the request budget with a typed error inside the plugin', async () => {
    await start({
      id: 'flooder',
      code: jsPlugin(
        `async flood() {
          let refused = 0;
          const all = [];
          for (let i = 0; i < 2000; i++) all.push(this.ctx.emit('spam', { i }).catch((e) => { if (e.code === 'LOGOMESH_ERR_RESOURCE_LIMIT') refused++; }));
          await Promise.all(all);
          return refused;
        }`,
        ['flood'],
      ),
    }, healthy);
    expect(await host.call('flooder', 'flood')).to.be.at.least(2000 - 256);
    expect(await host.call('healthy', 'ping', 1)).to.deep.equal({ pong: 1 });
  });

  it('deeply nested values are refused before the host parses them', async () => {
    await start({
      id: 'nester',
      code: jsPlugin(
        `deep() { let o = 0; for (let i = 0; i < 10000; i++) o = [o]; return o; }
         async emitDeep() { let o = 0; for (let i = 0; i < 10000; i++) o = [o]; try { await this.ctx.emit('deep', o); return 'sent'; } catch (e) { return e.code; } }`,
        ['deep', 'emitDeep'],
      ),
    });
    expect(await rejection(host.call('nester', 'deep'))).to.be.instanceOf(ResourceLimitError);
    expect(await host.call('nester', 'emitDeep')).to.equal('LOGOMESH_ERR_RESOURCE_LIMIT');
    expect(host.status('nester').state).to.equal('started');
  });

  it('an entry point that is a symlink out of the plugin folder is refused', async () => {
    await writeFile(join(root, 'elsewhere.js'), jsPlugin(`x() { return 'outside code ran'; }`, ['x']));
    const dir = await writePlugin(root, { id: 'linked', code: '' });
    await rm(join(dir, 'index.js'));
    await symlink(join(root, 'elsewhere.js'), join(dir, 'index.js'));
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.plugins.find((p) => p.id === 'linked')!.error).to.be.instanceOf(ImportRefusedError);
  });

  it('a plugin may not take the id the host uses as its event source', async () => {
    await writePlugin(root, { id: 'host', code: jsPlugin(``, []) });
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.plugins[0].error).to.be.instanceOf(ManifestError);
    expect((report.plugins[0].error as ManifestError).problems[0].pointer).to.equal('/id');
  });

  it('a caller flooding its dependency with calls is capped; the dependency keeps running', async () => {
    await start(
      { id: 'target', code: jsPlugin(`work() { const end = Date.now() + 5; while (Date.now() < end) {} return 1; }`, ['work']), resourceLimits: { executionTimeoutMs: 2000 } },
      {
        id: 'caller',
        dependencies: [{ id: 'target', version: '*' }],
        resourceLimits: { executionTimeoutMs: 10000 },
        code: jsPlugin(
          `async flood() {
            const results = await Promise.allSettled(Array.from({ length: 200 }, () => this.ctx.call('target', 'work')));
            return results.filter((r) => r.status === 'rejected' && r.reason.code === 'LOGOMESH_ERR_RESOURCE_LIMIT').length;
          }`,
          ['flood'],
        ),
      },
    );
    // Slots free up as calls finish, so a few more than 200 - 32 may get through.
    expect(await host.call('caller', 'flood')).to.be.at.least(100);
    expect(host.status('target').state).to.equal('started');
  });

  it('two plugins re-emitting what they handle stop at the event depth limit', async () => {
    const pong = (id: string, listen: string, say: string) => ({
      id,
      code: jsPlugin(`async on(d) { this.n = (this.n ?? 0) + 1; await this.ctx.emit(${JSON.stringify(say)}, d); } count() { return this.n ?? 0; }`, ['count'], { on: listen }),
    });
    await start(pong('ping', 'ball.a', 'ball.b'), pong('pong', 'ball.b', 'ball.a'));
    const tooDeep = firstValueFrom(host.events$.pipe(filter((e: HostEvent) => e.type === 'event.dropped')));
    await host.publish('ball.a', {});
    expect(await tooDeep).to.include({ reason: 'too-deep' });
    await new Promise((r) => setTimeout(r, 100));
    const total = (await host.call<number>('ping', 'count')) + (await host.call<number>('pong', 'count'));
    expect(total).to.equal(9); // depth 0 (host) … 8
  });

  it('two plugins re-emitting without awaiting also stop at the depth limit', async () => {
    const pong = (id: string, listen: string, say: string) => ({
      id,
      code: jsPlugin(`on(d) { this.n = (this.n ?? 0) + 1; Promise.resolve().then(() => this.ctx.emit(${JSON.stringify(say)}, d)); } count() { return this.n ?? 0; }`, ['count'], { on: listen }),
    });
    await start(pong('ping', 'ball.a', 'ball.b'), pong('pong', 'ball.b', 'ball.a'));
    await host.publish('ball.a', {});
    await new Promise((r) => setTimeout(r, 300));
    const total = (await host.call<number>('ping', 'count')) + (await host.call<number>('pong', 'count'));
    expect(total).to.equal(9);
  });

  it('close() does not wait past its budget for onStop hooks that never return', async () => {
    const hang = (id: string) => ({ id, code: jsPlugin(`onStop() { return new Promise(() => {}); }`, []), resourceLimits: { executionTimeoutMs: 60000 } });
    for (const s of [hang('a'), hang('b'), hang('c')]) await writePlugin(root, s);
    host = await hostFor(root, { closeTimeoutMs: 300 });
    await host.loadAll();
    const began = Date.now();
    await host.close();
    expect(Date.now() - began).to.be.below(5000); // not 3 × 60 s
  });
});
