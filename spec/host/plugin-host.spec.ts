import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { injectable } from 'tsyringe';
import {
  DependencyError,
  generateKeyPair,
  IEventBus,
  IntegrityError,
  LifecycleError,
  PluginNotFoundError,
  PluginStateError,
  SignatureError,
  signPlugin,
  EventBus,
  type HostEvent,
  type PluginHost,
} from '../../lib/index.js';
import { hostFor, jsPlugin, rejection, writePlugin, sandbox } from '../helpers/make-plugin.js';

const plugin = (id: string, deps: { id: string; version: string; optional?: boolean }[] = [], version = '1.0.0', body = '') => ({
  id,
  version,
  dependencies: deps.length ? deps : undefined,
  code: jsPlugin(`who() { return ${JSON.stringify(`${id}@${version}`)}; } ${body}`, ['who']),
});

describe('PluginHost', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  describe('loadAll()', () => {
    it('starts plugins in dependency order and picks the highest satisfying version', async () => {
      await writePlugin(root, plugin('auth', [], '1.4.0'), 'auth-1.4.0');
      await writePlugin(root, plugin('auth', [], '2.1.0'), 'auth-2.1.0');
      await writePlugin(root, plugin('workflow', [{ id: 'auth', version: '^1.0.0' }]));
      await writePlugin(root, plugin('audit', [{ id: 'workflow', version: '1.x' }]));
      host = await hostFor(root);
      const started: string[] = [];
      host.events$.subscribe((e) => e.type === 'plugin.started' && started.push(e.pluginId));
      const report = await host.loadAll();
      expect(report.failed).to.deep.equal([]);
      expect(started).to.deep.equal(['auth', 'workflow', 'audit']);
      expect(await host.call('auth', 'who')).to.equal('auth@1.4.0');
    });

    it('reports a version conflict with who needs what, and still loads independent plugins', async () => {
      await writePlugin(root, plugin('auth', [], '1.4.0'), 'auth-1.4.0');
      await writePlugin(root, plugin('auth', [], '2.1.0'), 'auth-2.1.0');
      await writePlugin(root, plugin('workflow', [{ id: 'auth', version: '^2.0.0' }]));
      await writePlugin(root, plugin('audit', [{ id: 'auth', version: '^1.0.0' }]));
      await writePlugin(root, plugin('standalone'));
      host = await hostFor(root);
      const report = await host.loadAll();
      const auth = report.plugins.find((p) => p.id === 'auth')!;
      expect(auth.error).to.be.instanceOf(DependencyError);
      expect(auth.error!.message).to.include('workflow needs auth@^2.0.0').and.include('audit needs auth@^1.0.0').and.include('available: 1.4.0, 2.1.0');
      expect(report.started).to.deep.equal(['standalone']);
      expect(report.failed.sort()).to.deep.equal(['audit', 'auth', 'workflow']);
    });

    it('reports a cycle with its path', async () => {
      await writePlugin(root, plugin('a', [{ id: 'b', version: '*' }]));
      await writePlugin(root, plugin('b', [{ id: 'c', version: '*' }]));
      await writePlugin(root, plugin('c', [{ id: 'a', version: '*' }]));
      await writePlugin(root, plugin('free'));
      host = await hostFor(root);
      const report = await host.loadAll();
      const a = report.plugins.find((p) => p.id === 'a')!;
      expect((a.error as DependencyError).kind).to.equal('cycle');
      expect(a.error!.message).to.include('a → b → c → a');
      expect(report.started).to.deep.equal(['free']);
    });

    it('a plugin that fails to start keeps its dependents from starting, each with the reason', async () => {
      await writePlugin(root, { id: 'db', code: jsPlugin(`onStart() { throw new Error('no database'); }`, []) });
      await writePlugin(root, plugin('repo', [{ id: 'db', version: '*' }]));
      await writePlugin(root, plugin('api', [{ id: 'repo', version: '*' }]));
      await writePlugin(root, plugin('metrics', [{ id: 'db', version: '*', optional: true }]));
      host = await hostFor(root);
      const report = await host.loadAll();
      const byId = Object.fromEntries(report.plugins.map((p) => [p.id, p]));
      expect(byId.db.state).to.equal('failed');
      expect(byId.repo.error!.message).to.match(/repo cannot .*db failed: .*no database/);
      expect(byId.api.error!.message).to.match(/api cannot .*repo failed/);
      expect(byId.metrics.state).to.equal('started');
      expect(host.status('api').state).to.equal('failed');
    });

    it('reports missing dependencies and invalid manifests without throwing', async () => {
      await writePlugin(root, plugin('orphan', [{ id: 'ghost', version: '^1.0.0' }]));
      await writePlugin(root, { ...plugin('bad'), manifest: { colour: 'red' } });
      host = await hostFor(root);
      const report = await host.loadAll();
      expect(report.plugins.map((p) => [p.id, p.error?.code]).sort()).to.deep.equal([
        ['bad', 'LOGOMESH_ERR_MANIFEST_INVALID'],
        ['orphan', 'LOGOMESH_ERR_DEPENDENCY'],
      ]);
    });
  });

  describe('lifecycle', () => {
    it('emits every transition as a host event and records load time', async () => {
      await writePlugin(root, plugin('solo'));
      host = await hostFor(root);
      const events: HostEvent[] = [];
      host.events$.subscribe((e) => events.push(e));
      await host.loadAll();
      await host.stop('solo');
      await host.start('solo');
      await host.unload('solo');
      const transitions = events.filter((e) => e.type !== 'plugin.warning').map((e) => e.type.replace('plugin.', ''));
      expect(transitions).to.deep.equal(['registered', 'loaded', 'starting', 'started', 'stopping', 'stopped', 'starting', 'started', 'stopping', 'stopped', 'unloaded']);
      expect(() => host.status('solo')).to.throw(PluginNotFoundError);
    });

    it('records per-plugin load time', async () => {
      await writePlugin(root, plugin('solo'));
      host = await hostFor(root);
      const report = await host.loadAll();
      expect(report.plugins[0].loadTimeMs).to.be.a('number').and.greaterThan(0);
      expect(host.status('solo').loadTimeMs).to.equal(report.plugins[0].loadTimeMs);
    });

    it('illegal transitions are typed errors', async () => {
      await writePlugin(root, plugin('solo'));
      host = await hostFor(root);
      await host.loadAll();
      expect(await rejection(host.start('solo'))).to.be.instanceOf(LifecycleError);
      await host.stop('solo');
      expect(await rejection(host.stop('solo'))).to.be.instanceOf(PluginStateError);
      expect(await rejection(host.call('solo', 'who'))).to.be.instanceOf(PluginStateError);
    });

    it('load(dir) loads one plugin whose dependencies are loaded, and refuses one whose are not', async () => {
      const base = await writePlugin(root, plugin('base'));
      const top = await writePlugin(root, plugin('top', [{ id: 'base', version: '^1.0.0' }]));
      host = await hostFor(root);
      expect((await rejection(host.load(top))).kind).to.equal('missing');
      await host.load(base);
      await host.start('base');
      expect((await host.load(top)).state).to.equal('loaded');
      await host.start('top');
      expect(await host.call('top', 'who')).to.equal('top@1.0.0');
    });

    it('refuses to unload a plugin that others depend on', async () => {
      await writePlugin(root, plugin('base'));
      await writePlugin(root, plugin('top', [{ id: 'base', version: '*' }]));
      host = await hostFor(root);
      await host.loadAll();
      const error = await rejection(host.unload('base'));
      expect(error).to.be.instanceOf(DependencyError);
      expect(error.message).to.include('top');
      await host.unload('top');
      await host.unload('base');
      expect(host.list()).to.deep.equal([]);
    });

    it('close() stops everything in reverse dependency order', async () => {
      await writePlugin(root, plugin('a'));
      await writePlugin(root, plugin('b', [{ id: 'a', version: '*' }]));
      await writePlugin(root, plugin('c', [{ id: 'b', version: '*' }]));
      host = await hostFor(root);
      await host.loadAll();
      const stopped: string[] = [];
      host.events$.subscribe((e) => e.type === 'plugin.stopped' && stopped.push(e.pluginId));
      await host.close();
      expect(stopped).to.deep.equal(['c', 'b', 'a']);
    });
  });

  describe('signatures', () => {
    it('loads a signed plugin from a trusted key, and refuses a tampered one', async () => {
      const keys = generateKeyPair();
      const dir = await writePlugin(root, plugin('signed'));
      await signPlugin(dir, keys.privateKeyPem);
      host = await hostFor(root, { requireSignature: true, trustedKeys: [keys.publicKeyPem] });
      expect((await host.loadAll()).started).to.deep.equal(['signed']);
      expect(host.status('signed').signature).to.equal('verified');
      await host.close();

      await writeFile(join(dir, 'index.js'), (await readFile(join(dir, 'index.js'), 'utf8')).replace('who()', 'who(x)'));
      host = await hostFor(root, { requireSignature: true, trustedKeys: [keys.publicKeyPem] });
      const line = (await host.loadAll()).plugins[0];
      expect(line.error).to.be.instanceOf(IntegrityError);
      expect((line.error as IntegrityError).files).to.deep.equal(['index.js']);
    });

    it('refuses an unknown key and an unsigned plugin under requireSignature', async () => {
      const signer = generateKeyPair();
      const other = generateKeyPair();
      await signPlugin(await writePlugin(root, plugin('signed')), signer.privateKeyPem);
      await writePlugin(root, plugin('unsigned'));
      host = await hostFor(root, { requireSignature: true, trustedKeys: [other.publicKeyPem] });
      const report = await host.loadAll();
      expect(report.plugins.map((p) => [p.id, p.error?.constructor])).to.deep.equal([
        ['signed', SignatureError],
        ['unsigned', SignatureError],
      ]);
    });

    it('loads an unsigned plugin with a warning when signatures are not required', async () => {
      await writePlugin(root, plugin('unsigned'));
      host = await hostFor(root);
      const warnings: HostEvent[] = [];
      host.events$.subscribe((e) => e.type === 'plugin.warning' && warnings.push(e));
      const report = await host.loadAll();
      expect(report.started).to.deep.equal(['unsigned']);
      expect(report.plugins[0].warnings[0]).to.match(/unsigned/);
      expect(warnings).to.have.length(1);
      expect(host.status('unsigned').signature).to.equal('unsigned');
    });
  });

  describe('dependency injection', () => {
    it('lets a host application replace a core service', async () => {
      const published: string[] = [];
      @injectable()
      class RecordingBus extends EventBus {
        override publish(...args: Parameters<EventBus['publish']>) {
          published.push(args[0].topic);
          return super.publish(...args);
        }
      }
      await writePlugin(root, plugin('solo'));
      host = await hostFor(root, { configure: (c) => c.register(IEventBus, { useClass: RecordingBus }) });
      await host.loadAll();
      await host.publish('config.changed', {});
      expect(published).to.deep.equal(['config.changed']);
    });

    it('gives each host its own services', async () => {
      await writePlugin(root, plugin('solo'));
      host = await hostFor(root);
      const other = await hostFor(root);
      try {
        await host.loadAll();
        await other.loadAll();
        await host.stop('solo');
        expect(host.status('solo').state).to.equal('stopped');
        expect(other.status('solo').state).to.equal('started');
      } finally {
        await other.close();
      }
    });
  });
});
