import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { filter, firstValueFrom } from 'rxjs';
import { injectable } from 'tsyringe';
import { PluginApi, type AuditEvent, type HostEvent, type PluginHost, type ServiceCaller } from '../../lib/index.js';
import { cleanup, hostFor, jsPlugin, tempDir, writePlugin, type PluginSpec } from '../helpers/make-plugin.js';

// Attack specs for the one door: each plugin below tries something its manifest does not
// allow and must get a typed error, leave an audit record and a permission.denied event,
// and change nothing outside its scope, while a benign plugin keeps answering.
describe('security: the API gateway', () => {
  let root: string;
  let host: PluginHost;
  let canary: string;

  beforeEach(async () => {
    root = await tempDir();
    canary = join(root, 'canary.txt');
    await writeFile(canary, 'CANARY');
  });
  afterEach(async () => {
    await host?.close();
    await cleanup(root);
  });

  const benign = { id: 'benign', code: jsPlugin(`ping() { return 'pong'; }`, ['ping']) };

  /** Loads `spec` with a probe method running `body`, returns what it returned or the error code it hit. */
  async function attack(spec: Omit<PluginSpec, 'code' | 'id'> & { id?: string }, body: string, options = {}) {
    await writePlugin(root, {
      id: 'attacker',
      ...spec,
      code: jsPlugin(`async probe() { try { return { ok: await (async () => { ${body} })() }; } catch (e) { return { code: e.code, message: e.message }; } }`, ['probe']),
    });
    await writePlugin(root, benign);
    host = await hostFor(root, options);
    const report = await host.loadAll();
    expect(report.failed, report.plugins.map((p) => p.error?.message).join()).to.deep.equal([]);
    const denied = firstValueFrom(host.events$.pipe(filter((e: HostEvent) => e.type === 'permission.denied')));
    const audits: AuditEvent[] = [];
    host.audit$.subscribe((a) => audits.push(a));
    const result = (await host.call('attacker', 'probe')) as { ok?: unknown; code?: string; message?: string };
    expect(await host.call('benign', 'ping')).to.equal('pong');
    return { result, denied, audits };
  }

  async function expectDenied(spec: Parameters<typeof attack>[0], body: string, options = {}) {
    const { result, denied, audits } = await attack(spec, body, options);
    expect(result.code, JSON.stringify(result)).to.equal('LOGOMESH_ERR_PERMISSION_DENIED');
    const event = (await denied) as HostEvent & { needed: string };
    expect(event.pluginId).to.equal('attacker');
    expect(audits.some((a) => a.outcome === 'denied' && a.pluginId === 'attacker')).to.equal(true);
    expect(await readFile(canary, 'utf8')).to.equal('CANARY');
    return { result, event };
  }

  describe('filesystem', () => {
    const rw = { permissions: [{ type: 'filesystem', scope: ['.'], level: 'readwrite' }] };

    it('reads and writes inside its data folder', async () => {
      const { result } = await attack(rw, `await this.ctx.fs.writeFile('notes/a.txt', 'hello').catch(async (e) => { await this.ctx.fs.mkdir('notes', { recursive: true }); await this.ctx.fs.writeFile('notes/a.txt', 'hello'); }); return this.ctx.fs.readFile('notes/a.txt');`);
      expect(result.ok).to.equal('hello');
      expect(host.status('attacker').usage!.filesystem.bytesWritten).to.equal(5);
    });

    it('has no filesystem without a filesystem permission', async () => {
      await expectDenied({ permissions: [] }, `return this.ctx.fs.readFile('x.txt');`);
    });

    for (const [label, path] of [
      ['../ out of the data folder', '../../../../../canary.txt'],
      ['an absolute path', '/etc/passwd'],
      ['a null byte', 'a.txt\u0000../../canary.txt'],
    ]) {
      it(`refuses ${label}`, async () => {
        const { result } = await attack(rw, `return this.ctx.fs.readFile(${JSON.stringify(path)});`);
        expect(result.code).to.be.oneOf(['LOGOMESH_ERR_PERMISSION_DENIED', 'LOGOMESH_ERR_INVALID_ARGUMENT']);
        expect(String(result.ok ?? '')).to.not.include('CANARY');
      });
    }

    it('refuses a symlink in its data folder that points at the canary', async () => {
      const data = join(root, '.data', 'plugins', 'attacker', 'data');
      await mkdir(data, { recursive: true });
      await symlink(canary, join(data, 'link.txt'));
      const { result } = await expectDenied(rw, `return this.ctx.fs.readFile('link.txt');`);
      expect(JSON.stringify(result)).to.not.include('CANARY');
    });

    it('read-only permission refuses writes', async () => {
      await expectDenied({ permissions: [{ type: 'filesystem', scope: ['.'], level: 'read' }] }, `return this.ctx.fs.writeFile('x.txt', 'x');`);
    });

    it('a handle exhaustion attempt stops at maxFileHandles and leaks nothing', async () => {
      const { result } = await attack(
        { ...rw, resourceLimits: { maxFileHandles: 4 } },
        `await this.ctx.fs.writeFile('f.txt', 'x');
         const handles = []; let refused = 0;
         for (let i = 0; i < 50; i++) { try { handles.push(await this.ctx.fs.open('f.txt', 'r')); } catch (e) { if (e.code === 'LOGOMESH_ERR_RESOURCE_LIMIT') refused++; } }
         for (const h of handles) await this.ctx.fs.close(h);
         return [handles.length, refused];`,
      );
      expect(result.ok).to.deep.equal([4, 46]);
      expect(host.status('attacker').usage!.filesystem.filesOpen).to.equal(0);
    });
  });

  describe('network', () => {
    let server: Server;
    let hits = 0;
    let port = 0;
    beforeEach(async () => {
      hits = 0;
      server = createServer((_req, res) => {
        hits++;
        res.end('secret');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterEach(() => new Promise<void>((r) => server.close(() => r())));

    it('has no network without a network permission, and the listener hears nothing', async () => {
      await expectDenied({ permissions: [] }, `return this.ctx.net.fetch('http://127.0.0.1:${port}/');`);
      expect(hits).to.equal(0);
    });

    for (const url of ['http://2130706433:PORT/', 'http://[::ffff:127.0.0.1]:PORT/', 'http://0x7f.1:PORT/', 'http://localhost:PORT/']) {
      it(`refuses loopback through ${url.replace(':PORT', '')} even when the host pattern is allowed`, async () => {
        const target = url.replace('PORT', String(port));
        await expectDenied({ permissions: [{ type: 'network', scope: ['*.test', `localhost:${port}`, `127.0.0.1:${port}`, `[::ffff:7f00:1]:${port}`] }] }, `return this.ctx.net.fetch(${JSON.stringify(target)});`);
        expect(hits).to.equal(0);
      });
    }

    it('refuses userinfo tricks', async () => {
      await expectDenied({ permissions: [{ type: 'network', scope: ['allowed.test'] }] }, `return this.ctx.net.fetch('http://allowed.test@127.0.0.1:${port}/');`);
      expect(hits).to.equal(0);
    });

    describe('through an allowed host', () => {
      let api: Server;
      let apiPort = 0;
      const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
      beforeEach(async () => {
        api = createServer((req, res) => {
          if (req.url === '/redirect') {
            res.writeHead(302, { location: `http://[::1]:${port}/` });
            res.end();
          } else {
            res.writeHead(200, { 'content-encoding': 'gzip' });
            res.end(bomb);
          }
        });
        await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
        apiPort = (api.address() as AddressInfo).port;
        server.close();
        await new Promise<void>((r) => server.listen(port, '::1', r));
      });
      afterEach(() => new Promise<void>((r) => api.close(() => r())));
      const options = () => ({ network: { allowAddress: ['127.0.0.1'], resolve: async () => [{ address: '127.0.0.1', family: 4 as const }] } });
      const perms = () => ({ permissions: [{ type: 'network', scope: [`api.example.test:${apiPort}`, `[::1]:${port}`] }] });

      it('a redirect to a loopback listener is re-checked and refused', async () => {
        await expectDenied(perms(), `return this.ctx.net.fetch('http://api.example.test:${apiPort}/redirect');`, options());
        expect(hits).to.equal(0);
      });

      it('a gzip bomb stops at the decoded-size cap', async () => {
        const { result } = await attack(perms(), `return this.ctx.net.fetch('http://api.example.test:${apiPort}/bomb');`, options());
        expect(result.code).to.equal('LOGOMESH_ERR_RESOURCE_LIMIT');
      });
    });

    it('fetches an allowed host at an address the host allows', async () => {
      const { result } = await attack(
        { permissions: [{ type: 'network', scope: [`api.example.test:${port}`] }] },
        `const r = await this.ctx.net.fetch('http://api.example.test:${port}/data'); return [r.status, r.body];`,
        { network: { allowAddress: ['127.0.0.1'], resolve: async () => [{ address: '127.0.0.1', family: 4 }] } },
      );
      expect(result.ok).to.deep.equal([200, 'secret']);
      expect(hits).to.equal(1);
      expect(host.status('attacker').usage!.network.requestCount).to.equal(1);
    });
  });

  describe('events and calls', () => {
    it('may not emit a topic outside its events permission', async () => {
      await expectDenied({ permissions: [{ type: 'events', scope: ['mine.*'], level: 'write' }] }, `return this.ctx.emit('admin.shutdown', {});`);
    });

    it('does not receive events it has no read permission for', async () => {
      await writePlugin(root, {
        id: 'eavesdropper',
        permissions: [{ type: 'events', scope: ['public.*'], level: 'read' }],
        code: jsPlugin(`on(d, e) { this.seen = (this.seen ?? []).concat(e.topic); } seenTopics() { return this.seen ?? []; }`, ['seenTopics'], { on: '**' }),
      });
      host = await hostFor(root);
      await host.loadAll();
      await host.publish('public.news', {});
      await host.publish('private.payroll', { salary: 1 });
      expect(await host.call('eavesdropper', 'seenTopics')).to.deep.equal(['public.news']);
    });

    it('may call only plugins and methods its manifest names', async () => {
      await writePlugin(root, { id: 'vault', code: jsPlugin(`open() { return 'gold'; } peek() { return 'shiny'; }`, ['open', 'peek']) });
      const { result } = await attack({ permissions: [{ type: 'plugins', scope: ['vault#peek'] }] }, `return [await this.ctx.call('vault', 'peek'), await this.ctx.call('vault', 'open').catch((e) => e.code)];`);
      expect(result.ok).to.deep.equal(['shiny', 'LOGOMESH_ERR_PERMISSION_DENIED']);
    });
  });

  describe('host services', () => {
    @injectable()
    class FakeLlm {
      calls: { prompt: string; by: string }[] = [];
      @PluginApi('llm.complete', { args: Type.Object({ prompt: Type.String({ maxLength: 100 }) }, { additionalProperties: false }) })
      complete(args: { prompt: string }, caller: ServiceCaller) {
        this.calls.push({ prompt: args.prompt, by: caller.pluginId });
        return { text: args.prompt.split('').reverse().join('') };
      }
      secretAdmin() {
        return 'root';
      }
    }

    it('a plugin with the system permission calls a decorated host service; arguments are validated', async () => {
      const llm = new FakeLlm();
      const { result } = await attack(
        { permissions: [{ type: 'system', scope: ['llm.complete'] }] },
        `return [await this.ctx.services.call('llm.complete', { prompt: 'abc' }), await this.ctx.services.call('llm.complete', { prompt: 1 }).catch((e) => e.code)];`,
        { services: [llm] },
      );
      expect(result.ok).to.deep.equal([{ text: 'cba' }, 'LOGOMESH_ERR_INVALID_ARGUMENT']);
      expect(llm.calls).to.deep.equal([{ prompt: 'abc', by: 'attacker' }]);
    });

    it('refuses a service the manifest does not name, and undecorated methods do not exist', async () => {
      const llm = new FakeLlm();
      await expectDenied({ permissions: [] }, `return this.ctx.services.call('llm.complete', { prompt: 'x' });`, { services: [llm] });
      expect(llm.calls).to.deep.equal([]);
      await host.close();
      const { result } = await attack({ permissions: [{ type: 'system', scope: ['**'] }] }, `return this.ctx.services.call('secretAdmin');`, { services: [FakeLlm] });
      expect(result.code).to.equal('LOGOMESH_ERR_SERVICE_NOT_FOUND');
    });
  });

  it('refuses a manifest that asks for more than the host allows, with the list', async () => {
    await writePlugin(root, {
      id: 'greedy',
      permissions: [
        { type: 'filesystem', scope: ['/etc'], level: 'read' },
        { type: 'network', scope: ['evil.test'] },
      ],
      code: jsPlugin(``, []),
    });
    host = await hostFor(root, { permissionPolicy: { network: ['*.example.test'] } });
    const error = (await host.loadAll()).plugins[0].error as Error & { problems?: { pointer: string }[] };
    expect(error.constructor.name).to.equal('ManifestError');
    expect(error.problems!.map((p) => p.pointer)).to.deep.equal(['/permissions/0/scope/0', '/permissions/1/scope/0']);
  });

  it('a request of the wrong shape is refused by the schema before anything runs', async () => {
    const { result } = await attack({ permissions: [{ type: 'filesystem', scope: ['.'], level: 'readwrite' }] }, `return this.ctx.fs.read('not a handle', -1);`);
    expect(result.code).to.equal('LOGOMESH_ERR_INVALID_ARGUMENT');
  });

  it('values a plugin sends cannot pollute host prototypes', async () => {
    await writePlugin(root, { id: 'polluter', code: jsPlugin(`give() { return JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'); }`, ['give']) });
    host = await hostFor(root);
    await host.loadAll();
    const value = (await host.call('polluter', 'give')) as Record<string, unknown>;
    const merged = Object.assign({}, value);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(Object.getPrototypeOf(value)).to.equal(null);
    expect((merged as Record<string, unknown>).polluted).to.equal(undefined);
  });
});
