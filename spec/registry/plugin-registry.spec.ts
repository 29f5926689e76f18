// tsyringe needs the Reflect metadata polyfill before any decorated class loads.
import 'reflect-metadata';
import { realpathSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { container } from 'tsyringe';
import { IHostOptions } from '../../lib/di/tokens.js';
import { InvalidArgumentError, ManifestError, PluginLoadError, PluginNotFoundError } from '../../lib/errors.js';
import {
  IPluginRegistry,
  PluginRegistry,
  discoverPlugins,
  type PluginDescriptor,
} from '../../lib/registry/plugin-registry.js';
import { findRepoRoot } from '../../scripts/write-schema.js';

// Real path, because descriptors carry real paths.
const fixtures = realpathSync(
  path.join(findRepoRoot(path.dirname(fileURLToPath(import.meta.url))), 'spec/fixtures/registry'),
);
const fixture = (...parts: string[]) => path.join(fixtures, ...parts);
const ids = (plugins: PluginDescriptor[]) => plugins.map((p) => `${p.manifest.id}@${p.manifest.version}`);

describe('registry/plugin-registry', () => {
  describe('discoverPlugins', () => {
    it('finds plugin folders one and two levels deep, in a stable order', async () => {
      const { plugins } = await discoverPlugins([fixture('plugins')]);
      expect(ids(plugins)).to.deep.equal([
        'acme.auth@1.4.0',
        'acme.auth@1.3.0',
        'hello@1.0.0',
        'needs-newer@1.0.0',
        'py-tool@1.0.0',
        'reporter@2.0.0',
      ]);
      const auth = plugins[0];
      expect(auth.dir).to.equal(fixture('plugins', 'auth', '1.4.0'));
      expect(auth.manifestPath).to.equal(fixture('plugins', 'auth', '1.4.0', 'plugin.json'));
    });

    it('skips dot-folders, folders below depth 2 and folders inside a plugin', async () => {
      const { plugins } = await discoverPlugins([fixture('plugins')]);
      expect(ids(plugins).map((id) => id.split('@')[0])).to.not.include.members(['hidden', 'too-deep', 'nested-inside']);
    });

    it('reports invalid manifests as errors instead of throwing', async () => {
      const { errors } = await discoverPlugins([fixture('plugins')]);
      expect(errors.map((e) => e.path)).to.deep.equal([
        fixture('plugins', 'bad-json', 'plugin.json'),
        fixture('plugins', 'broken', 'plugin.json'),
      ]);
      for (const { error } of errors) expect(error).to.be.instanceOf(ManifestError);
      const broken = errors[1].error as ManifestError;
      expect(broken.problems.map((p) => p.pointer)).to.have.members(['/colour', '/name']);
    });

    it('reports a missing search path as an InvalidArgumentError', async () => {
      const missing = fixture('does-not-exist');
      const { plugins, errors } = await discoverPlugins([missing, fixture('single')]);
      expect(ids(plugins)).to.deep.equal(['single@1.0.0']);
      expect(errors).to.have.length(1);
      expect(errors[0].path).to.equal(missing);
      expect(errors[0].error).to.be.instanceOf(InvalidArgumentError);
      expect(errors[0].error.message).to.contain(missing);
    });

    it('treats a search path holding plugin.json as a plugin folder', async () => {
      const { plugins } = await discoverPlugins([fixture('single')]);
      expect(ids(plugins)).to.deep.equal(['single@1.0.0']);
    });

    it('passes host options to validation', async () => {
      const { plugins, errors } = await discoverPlugins([fixture('single')], { apiVersion: '2.0.0' });
      expect(plugins).to.deep.equal([]);
      expect((errors[0].error as ManifestError).problems[0].pointer).to.equal('/apiVersion');
    });

    describe('on a scratch folder', () => {
      let root: string;
      beforeEach(async () => {
        root = await mkdtemp(path.join(os.tmpdir(), 'logomesh-registry-'));
      });
      afterEach(async () => {
        await rm(root, { recursive: true, force: true });
      });

      it('skips node_modules', async () => {
        await cp(fixture('single'), path.join(root, 'node_modules', 'single'), { recursive: true });
        await cp(fixture('plugins', 'hello'), path.join(root, 'hello'), { recursive: true });
        const { plugins } = await discoverPlugins([root]);
        expect(ids(plugins)).to.deep.equal(['hello@1.0.0']);
      });

      it('finds a folder once when it is reached through a symlink too', async () => {
        await cp(fixture('single'), path.join(root, 'real', 'single'), { recursive: true });
        await mkdir(path.join(root, 'links'));
        await symlink(path.join(root, 'real', 'single'), path.join(root, 'links', 'single'), 'dir');
        const { plugins } = await discoverPlugins([path.join(root, 'real'), path.join(root, 'links')]);
        expect(ids(plugins)).to.deep.equal(['single@1.0.0']);
      });

      it('reports a search path that is a file', async () => {
        const file = path.join(root, 'file.txt');
        await writeFile(file, '');
        const { errors } = await discoverPlugins([file]);
        expect(errors[0].error).to.be.instanceOf(InvalidArgumentError);
      });
    });
  });

  describe('PluginRegistry', () => {
    let registry: PluginRegistry;
    beforeEach(async () => {
      registry = new PluginRegistry({});
      await registry.discover([fixture('plugins')]);
    });

    it('resolves through tsyringe with the host options', () => {
      const child = container.createChildContainer();
      child.register(IHostOptions, { useValue: { apiVersion: '1.0.0' } });
      child.register(IPluginRegistry, { useClass: PluginRegistry });
      expect(child.resolve<IPluginRegistry>(IPluginRegistry)).to.be.instanceOf(PluginRegistry);
    });

    it('returns what it registered and what failed from discover()', async () => {
      const result = await new PluginRegistry({}).discover([fixture('plugins')]);
      expect(result.plugins).to.have.length(6);
      expect(result.errors).to.have.length(2);
    });

    it('keeps several versions of one id', () => {
      expect(registry.getAvailableVersions('acme.auth')).to.deep.equal(['1.4.0', '1.3.0']);
      expect(registry.getPluginInfo('acme.auth').manifest.version).to.equal('1.4.0');
      expect(registry.getPluginInfo('acme.auth', '1.3.0').manifest.version).to.equal('1.3.0');
      expect(registry.getPluginInfo('acme.auth', '~1.3.0').manifest.version).to.equal('1.3.0');
    });

    it('orders versions by semver, not by text, and prefers releases as the latest', async () => {
      const base = registry.getPluginInfo('hello');
      for (const version of ['1.10.0', '1.9.0', '2.0.0-beta.1', '1.10.0-rc.1']) {
        await registry.registerPlugin({ ...base, dir: `/virtual/${version}`, manifest: { ...base.manifest, version } });
      }
      expect(registry.getAvailableVersions('hello')).to.deep.equal(['2.0.0-beta.1', '1.10.0', '1.10.0-rc.1', '1.9.0', '1.0.0']);
      expect(registry.getPluginInfo('hello').manifest.version).to.equal('1.10.0');
      expect(registry.getPluginInfo('hello', '2.0.0-beta.1').manifest.version).to.equal('2.0.0-beta.1');
    });

    it('returns no versions for an unknown id', () => {
      expect(registry.getAvailableVersions('nope')).to.deep.equal([]);
    });

    it('lists the latest version of each plugin, sorted by id', () => {
      expect(ids(registry.listAvailablePlugins())).to.deep.equal([
        'acme.auth@1.4.0',
        'hello@1.0.0',
        'needs-newer@1.0.0',
        'py-tool@1.0.0',
        'reporter@2.0.0',
      ]);
    });

    it('throws PluginNotFoundError for an unknown id or version', () => {
      expect(() => registry.getPluginInfo('nope')).to.throw(PluginNotFoundError);
      expect(() => registry.getPluginInfo('acme.auth', '9.9.9')).to.throw(PluginNotFoundError, /1\.4\.0, 1\.3\.0/);
    });

    it('registers a plugin folder by path', async () => {
      const descriptor = await registry.registerPlugin(fixture('single'));
      expect(descriptor.dir).to.equal(fixture('single'));
      expect(registry.getPluginInfo('single')).to.equal(descriptor);
    });

    it('re-registering the same folder is harmless', async () => {
      await registry.registerPlugin(fixture('plugins', 'hello'));
      expect(registry.getAvailableVersions('hello')).to.deep.equal(['1.0.0']);
    });

    it('refuses the same id and version from a second folder', async () => {
      await registry.registerPlugin(fixture('duplicates', 'a'));
      const error = await registry.registerPlugin(fixture('duplicates', 'b')).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(PluginLoadError);
      expect(registry.getPluginInfo('dup').dir).to.equal(fixture('duplicates', 'a'));
    });

    it('reports duplicates found by discover() as errors', async () => {
      const { plugins, errors } = await new PluginRegistry({}).discover([fixture('duplicates')]);
      expect(plugins.map((p) => p.dir)).to.deep.equal([fixture('duplicates', 'a')]);
      expect(errors.map((e) => e.path)).to.deep.equal([fixture('duplicates', 'b', 'plugin.json')]);
      expect(errors[0].error).to.be.instanceOf(PluginLoadError);
    });

    it('rejects a missing plugin folder with InvalidArgumentError', async () => {
      const error = await registry.registerPlugin(fixture('nope')).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidArgumentError);
    });

    it('rejects an invalid plugin folder with ManifestError', async () => {
      const error = await registry.registerPlugin(fixture('plugins', 'broken')).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ManifestError);
    });

    it('unregisters one version or all of them', () => {
      expect(registry.unregisterPlugin('acme.auth', '1.4.0')).to.equal(true);
      expect(registry.getAvailableVersions('acme.auth')).to.deep.equal(['1.3.0']);
      expect(registry.unregisterPlugin('acme.auth', '1.4.0')).to.equal(false);
      expect(registry.unregisterPlugin('acme.auth', '1.3.0')).to.equal(true);
      expect(() => registry.getPluginInfo('acme.auth')).to.throw(PluginNotFoundError);
      expect(registry.unregisterPlugin('hello')).to.equal(true);
      expect(registry.unregisterPlugin('hello')).to.equal(false);
      expect(ids(registry.listAvailablePlugins())).to.not.include('hello@1.0.0');
    });

    describe('checkCompatibility', () => {
      it('is compatible when the API, runtime and required dependencies are satisfied', () => {
        expect(registry.checkCompatibility('reporter')).to.deep.equal({ compatible: true, reasons: [] });
      });

      it('ignores a missing optional dependency', () => {
        const deps = registry.getPluginInfo('reporter').manifest.dependencies ?? [];
        expect(deps.find((d) => d.id === 'metrics')?.optional).to.equal(true);
        expect(registry.checkCompatibility('reporter').compatible).to.equal(true);
      });

      it('gives a reason per missing or unsatisfied dependency', () => {
        const report = registry.checkCompatibility('needs-newer');
        expect(report.compatible).to.equal(false);
        expect(report.reasons).to.have.length(2);
        expect(report.reasons[0]).to.contain('acme.auth').and.contain('^2.0.0').and.contain('1.4.0');
        expect(report.reasons[1]).to.contain('missing-plugin');
      });

      it('becomes incompatible when a dependency is unregistered', () => {
        registry.unregisterPlugin('acme.auth', '1.4.0');
        const report = registry.checkCompatibility('reporter');
        expect(report.compatible).to.equal(false);
        expect(report.reasons[0]).to.contain('^1.4.0');
      });

      it('refuses a runtime the host does not support', async () => {
        const nodeOnly = new PluginRegistry({ supportedRuntimes: ['nodejs'] });
        await nodeOnly.discover([fixture('plugins')]);
        const report = nodeOnly.checkCompatibility('py-tool');
        expect(report.compatible).to.equal(false);
        expect(report.reasons[0]).to.contain('python');
        expect(nodeOnly.checkCompatibility('hello').compatible).to.equal(true);
      });

      it('refuses a plugin API range the host does not offer', async () => {
        const base = registry.getPluginInfo('hello');
        await registry.registerPlugin({ ...base, dir: '/virtual/next', manifest: { ...base.manifest, version: '3.0.0', apiVersion: '^2.0.0' } });
        const report = registry.checkCompatibility('hello', '3.0.0');
        expect(report.compatible).to.equal(false);
        expect(report.reasons[0]).to.contain('^2.0.0').and.contain('1.0.0');
      });

      it('throws PluginNotFoundError for an unknown plugin', () => {
        expect(() => registry.checkCompatibility('nope')).to.throw(PluginNotFoundError);
      });
    });
  });
});
