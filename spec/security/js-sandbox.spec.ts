import { expect } from 'chai';
import { symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImportRefusedError, type PluginHost } from '../../lib/index.js';
import { hostFor, jsPlugin, writePlugin, sandbox } from '../helpers/make-plugin.js';

// Attack specs: each one is code a hostile plugin would run, and what it must not get.
describe('security: the JS plugin sandbox', () => {
  let root: string;
  let host: PluginHost;
  sandbox((dir) => (root = dir), () => host);

  async function probe(body: string): Promise<unknown> {
    await writePlugin(root, { id: 'attacker', code: jsPlugin(`probe() { ${body} }`, ['probe']) });
    host = await hostFor(root);
    const report = await host.loadAll();
    expect(report.failed, JSON.stringify(report.plugins[0].error?.message)).to.deep.equal([]);
    return host.call('attacker', 'probe');
  }

  it('has no Node.js globals, no WebAssembly and no trace of the host channel', async () => {
    const seen = await probe(`return ['process', 'require', 'module', 'Buffer', 'WebAssembly', '__lm_send', 'setTimeout', 'fetch']
      .filter((name) => typeof globalThis[name] !== 'undefined');`);
    expect(seen).to.deep.equal([]);
  });

  it('exposes nothing but standard JavaScript on its global object', async () => {
    const names = (await probe(`return Object.getOwnPropertyNames(globalThis);`)) as string[];
    const standard = new Set(Object.getOwnPropertyNames(globalThis));
    const extra = names.filter((n) => !standard.has(n));
    expect(extra).to.deep.equal([]);
  });

  it('Function constructors reached through ctx stay inside the isolate', async () => {
    const result = await probe(`
      const viaEmit = this.ctx.emit.constructor('return typeof process')();
      const viaLog = this.ctx.log.info.constructor.constructor('return typeof require')();
      const viaProto = Object.getPrototypeOf(this.ctx).constructor.constructor('return typeof process')();
      return [viaEmit, viaLog, viaProto];`);
    expect(result).to.deep.equal(['undefined', 'undefined', 'undefined']);
  });

  it('Error.prepareStackTrace frames lead to no host function or global', async () => {
    const result = await probe(`
      Error.prepareStackTrace = (_e, frames) => frames;
      const frames = (() => new Error('x').stack)();
      Error.prepareStackTrace = undefined;
      return frames.map((f) => {
        const fn = f.getFunction && f.getFunction();
        const self = f.getThis && f.getThis();
        const viaFn = fn ? fn.constructor('return typeof process')() : 'none';
        const viaThis = self && self.constructor ? self.constructor.constructor('return typeof require')() : 'none';
        return [viaFn, viaThis];
      }).flat().filter((x) => x !== 'none' && x !== 'undefined');`);
    expect(result).to.deep.equal([]);
  });

  it('a stack overflow is an ordinary RangeError of its own realm, and the plugin keeps working', async () => {
    const result = await probe(`
      const f = () => f();
      try { f(); } catch (e) { return [e instanceof RangeError, e.constructor === RangeError, typeof process]; }`);
    expect(result).to.deep.equal([true, true, 'undefined']);
    expect(await host.call('attacker', 'probe')).to.deep.equal([true, true, 'undefined']);
  });

  it('cannot modify the context it was given', async () => {
    const result = await probe(`
      'use strict';
      const attempts = [];
      try { this.ctx.emit = () => 'hijacked'; } catch { attempts.push('emit'); }
      try { this.ctx.log.info = null; } catch { attempts.push('log'); }
      return [Object.isFrozen(this.ctx), Object.isFrozen(this.ctx.log), attempts.length];`);
    expect(result).to.deep.equal([true, true, 2]);
  });

  it('cannot reach references or copies of host objects through its class or the SDK', async () => {
    const result = await probe(`
      const values = [];
      const walk = (o, depth) => {
        if (!o || depth > 3 || (typeof o !== 'object' && typeof o !== 'function')) return;
        for (const k of Reflect.ownKeys(o)) {
          let v; try { v = o[k]; } catch { continue; }
          if (v && typeof v === 'object' && ['Reference', 'ExternalCopy', 'Context', 'Isolate'].includes(v.constructor?.name)) values.push(String(k));
          walk(v, depth + 1);
        }
      };
      walk(this, 0); walk(this.constructor, 0); walk(globalThis, 0);
      return values;`);
    expect(result).to.deep.equal([]);
  });

  describe('imports', () => {
    async function loadWith(code: string, files: Record<string, string> = {}) {
      await writePlugin(root, { id: 'importer', code, files });
      host = await hostFor(root);
      const report = await host.loadAll();
      return report.plugins[0];
    }

    for (const [label, specifier] of [
      ['a Node.js built-in', 'node:fs'],
      ['a bare built-in name', 'fs'],
      ['a package', 'lodash'],
      ['a path outside the plugin folder', '../outside.js'],
      ['an absolute path', '/etc/passwd'],
      ['a URL', 'file:///etc/passwd'],
      ['a data: URL', 'data:text/javascript,export default 1'],
    ]) {
      it(`refuses ${label} (${specifier}) before any plugin code runs`, async () => {
        await writeFile(join(root, 'outside.js'), 'export default 1;');
        const line = await loadWith(`globalThis.ran = true; import x from ${JSON.stringify(specifier)}; export default x;`);
        expect(line.state).to.equal('failed');
        expect(line.error).to.be.instanceOf(ImportRefusedError);
        expect((line.error as ImportRefusedError).specifier).to.equal(specifier);
      });
    }

    it('refuses a symlink inside the plugin folder that points out of it', async () => {
      await writeFile(join(root, 'secret.js'), 'export default "secret";');
      await writePlugin(root, { id: 'importer', code: `import s from './link.js'; export default s;` });
      await symlink(join(root, 'secret.js'), join(root, 'importer', 'link.js'));
      host = await hostFor(root);
      const line = (await host.loadAll()).plugins[0];
      expect(line.error).to.be.instanceOf(ImportRefusedError);
      expect(line.error!.message).to.match(/outside the plugin folder/);
    });

    it('refuses a sibling folder sharing the plugin folder as a prefix', async () => {
      await writePlugin(root, { id: 'importer-evil', code: `export default 1;`, files: { 'x.js': 'export default 1;' } });
      const line = await loadWith(`import x from '../importer-evil/x.js'; export default x;`);
      expect(line.error).to.be.instanceOf(ImportRefusedError);
    });

    for (const specifier of ['node:fs', 'node:child_process', './index.js']) {
      it(`has no dynamic import() to load ${specifier} around the check`, async () => {
        const result = await probe(`return import(${JSON.stringify(specifier)}).then(() => 'loaded', (e) => 'refused: ' + e.message);`);
        expect(result).to.match(/^refused/);
      });
    }
  });
});
