import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ManifestError, type ManifestProblem } from '../../lib/errors.js';
import {
  effectiveLimits,
  effectiveThreads,
  parseManifest,
  readManifestFile,
  validateManifest,
  type ManifestValidationOptions,
} from '../../lib/registry/manifest.js';
import { DEFAULT_RESOURCE_LIMITS, HOST_MAXIMUM_LIMITS, type PluginManifest } from '../../lib/registry/manifest-schema.js';
import { SCHEMA_FILE, findRepoRoot, manifestSchemaText } from '../../scripts/write-schema.js';

const minimal = (): Record<string, unknown> => ({
  id: 'hello',
  name: 'Hello',
  version: '1.0.0',
  entryPoint: 'index.js',
  runtime: 'nodejs',
  apiVersion: '^1.0.0',
});

const full = (): PluginManifest => ({
  $schema: '../schemas/plugin-manifest.schema.json',
  id: 'acme.reporter-2',
  name: 'Reporter',
  version: '2.1.0-beta.1',
  description: 'Writes reports.',
  author: { name: 'Ada', email: 'ada@example.com', url: 'https://example.com' },
  license: 'MIT',
  entryPoint: './dist/main.mjs',
  runtime: 'nodejs',
  apiVersion: '>=1.0.0 <2.0.0',
  permissions: [
    { type: 'filesystem', scope: ['data/reports'], level: 'readwrite' },
    { type: 'network', scope: ['api.example.com', '*.example.org', 'localhost:8080', 'https://cdn.example.com:443'] },
    { type: 'events', scope: ['orders.*', 'orders.created', 'audit.**'] },
    { type: 'plugins', scope: ['acme.auth', 'acme.auth#login', 'metrics#*'] },
    { type: 'storage', scope: ['reports'], level: 'write' },
    { type: 'ui', scope: ['sidebar'] },
    { type: 'system', scope: ['clock'] },
  ],
  dependencies: [
    { id: 'acme.auth', version: '^1.4.0' },
    { id: 'metrics', version: '1.x', optional: true },
  ],
  resourceLimits: { maxMemoryMB: 128, maxCpuPercent: 25, maxNetworkKbps: 2048, maxFileHandles: 8, executionTimeoutMs: 10000 },
  capabilities: ['reports'],
  stateless: true,
  integrity: { algorithm: 'sha256', files: { 'dist/main.mjs': 'a'.repeat(64) } },
  signature: { algorithm: 'ed25519', keyId: 'acme-2025', value: 'c2lnbmF0dXJl' },
  contributes: { ui: [{ point: 'sidebar', id: 'reports', title: 'Reports', entry: 'ui/panel.js' }] },
});

/** Validates `manifest` and returns its problems; fails if it is valid. */
function problemsOf(manifest: unknown, options?: ManifestValidationOptions): ManifestProblem[] {
  const result = validateManifest(manifest, options);
  expect(result.valid, 'manifest should be invalid').to.equal(false);
  for (const p of result.problems) expect(p.hint, `hint at ${p.pointer}`).to.be.a('string').that.is.not.empty;
  return result.problems;
}

/** Asserts exactly one problem, at `pointer`, and returns it. */
function onlyProblem(manifest: unknown, pointer: string, options?: ManifestValidationOptions): ManifestProblem {
  const problems = problemsOf(manifest, options);
  expect(problems.map((p) => p.pointer)).to.deep.equal([pointer]);
  return problems[0];
}

const withField = (field: string, value: unknown) => ({ ...minimal(), [field]: value });

describe('registry/manifest', () => {
  describe('valid manifests', () => {
    it('accepts a minimal manifest', () => {
      const result = validateManifest(minimal());
      expect(result).to.deep.equal({ valid: true, manifest: minimal(), problems: [] });
    });

    it('accepts a manifest using every field', () => {
      const result = validateManifest(full());
      expect(result.problems).to.deep.equal([]);
      expect(result.valid).to.equal(true);
    });

    it('accepts an author given as a string', () => {
      expect(validateManifest(withField('author', 'Ada <ada@example.com>')).valid).to.equal(true);
    });

    it('returns a copy, not the input object', () => {
      const input = minimal();
      const result = validateManifest(input);
      if (!result.valid) throw new Error('expected valid');
      expect(result.manifest).to.not.equal(input);
    });
  });

  describe('schema rules', () => {
    it('rejects a non-object', () => {
      expect(problemsOf(42)[0].pointer).to.equal('');
    });

    it('rejects an unknown field at its own pointer', () => {
      const p = onlyProblem(withField('colour', 'red'), '/colour');
      expect(p.hint).to.equal("remove 'colour': it is not a manifest field");
    });

    it('rejects an unknown nested field and names the allowed ones', () => {
      const p = onlyProblem(withField('resourceLimits', { maxMemoryMb: 64 }), '/resourceLimits/maxMemoryMb');
      expect(p.hint).to.contain('maxMemoryMB');
    });

    it('reports a missing required field at its pointer', () => {
      const { name: _, ...noName } = minimal();
      expect(onlyProblem(noName, '/name').hint).to.contain("add 'name'");
    });

    for (const bad of ['Hello', '1hello', 'hello-', 'he--llo', 'hello..x', 'hello_world', '', 'a'.repeat(65)]) {
      it(`rejects the id ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 8)}…` : bad)}`, () => {
        onlyProblem(withField('id', bad), '/id');
      });
    }

    it('accepts ids with single - or . separators', () => {
      for (const id of ['a', 'acme.auth', 'my-plugin-2', 'a1.b2-c3']) {
        expect(validateManifest(withField('id', id)).valid, id).to.equal(true);
      }
    });

    it('rejects a 100k-character hostile id (maxLength bounds the work)', () => {
      onlyProblem(withField('id', `${'a-'.repeat(50_000)}!`), '/id');
      onlyProblem(withField('id', `${'a'.repeat(100_000)}_`), '/id');
    });

    it('rejects an empty or overlong name', () => {
      onlyProblem(withField('name', ''), '/name');
      onlyProblem(withField('name', 'x'.repeat(101)), '/name');
    });

    it('rejects an unknown runtime and lists the allowed ones', () => {
      expect(onlyProblem(withField('runtime', 'ruby'), '/runtime').hint).to.contain('"wasm"');
    });

    it('rejects a permission type it does not know', () => {
      onlyProblem(withField('permissions', [{ type: 'camera', scope: ['x'] }]), '/permissions/0/type');
    });

    it('rejects a permission with an empty scope list', () => {
      onlyProblem(withField('permissions', [{ type: 'storage', scope: [] }]), '/permissions/0/scope');
    });

    it('rejects non-integer and too-small limits', () => {
      onlyProblem(withField('resourceLimits', { maxMemoryMB: 4 }), '/resourceLimits/maxMemoryMB');
      onlyProblem(withField('resourceLimits', { maxCpuPercent: 12.5 }), '/resourceLimits/maxCpuPercent');
      onlyProblem(withField('resourceLimits', { maxCpuPercent: 101 }), '/resourceLimits/maxCpuPercent');
    });

    it('rejects an integrity digest that is not lowercase hex-64', () => {
      const integrity = { algorithm: 'sha256', files: { 'index.js': 'A'.repeat(64) } };
      onlyProblem(withField('integrity', integrity), '/integrity/files/index.js');
    });

    it('rejects a signature value that is not base64', () => {
      const signature = { algorithm: 'ed25519', keyId: 'k', value: 'not base64!' };
      onlyProblem(withField('signature', signature), '/signature/value');
    });

    it('reports the fitting branch of author instead of the union noise', () => {
      onlyProblem(withField('author', { email: 'ada@example.com' }), '/author/name');
      onlyProblem(withField('author', { name: 'Ada', email: 'not-an-email' }), '/author/email');
      onlyProblem(withField('author', 42), '/author');
    });

    it('rejects duplicate capabilities at the duplicate', () => {
      onlyProblem(withField('capabilities', ['a', 'b', 'a']), '/capabilities/2');
    });
  });

  describe('semantic rules', () => {
    it('rejects a version that is not semver', () => {
      expect(onlyProblem(withField('version', '1.0'), '/version').hint).to.contain('1.0.0');
      expect(onlyProblem(withField('version', 'v1.2.3'), '/version').hint).to.contain('1.2.3');
    });

    it('rejects an apiVersion that is not a range and says which API the host offers', () => {
      expect(onlyProblem(withField('apiVersion', 'latest'), '/apiVersion').hint).to.contain('1.0.0');
    });

    it('rejects an apiVersion the host API does not satisfy', () => {
      const p = onlyProblem(withField('apiVersion', '^2.0.0'), '/apiVersion');
      expect(p.hint).to.contain('1.0.0');
      expect(validateManifest(withField('apiVersion', '^2.0.0'), { apiVersion: '2.3.0' }).valid).to.equal(true);
    });

    for (const [entryPoint, why] of [
      ['../outside.js', 'escapes the folder'],
      ['/abs/index.js', 'is absolute'],
      ['C:/index.js', 'has a drive letter'],
      ['lib\\index.js', 'uses backslashes'],
      ['lib//index.js', 'is not normalized'],
      ['lib/./index.js', 'is not normalized'],
      ['index\0.js', 'holds a NUL byte'],
      ['lib/', 'names a folder'],
      ['index.py', 'does not suit the nodejs runtime'],
    ]) {
      it(`rejects an entryPoint that ${why}`, () => {
        onlyProblem(withField('entryPoint', entryPoint), '/entryPoint');
      });
    }

    it('matches the entryPoint extension to the runtime', () => {
      expect(validateManifest({ ...minimal(), runtime: 'python', entryPoint: 'main.py' }).valid).to.equal(true);
      expect(validateManifest({ ...minimal(), runtime: 'wasm', entryPoint: 'plugin.wasm' }).valid).to.equal(true);
      expect(validateManifest({ ...minimal(), entryPoint: 'src/index.ts' }).valid).to.equal(true);
      onlyProblem({ ...minimal(), runtime: 'wasm', entryPoint: 'plugin.js' }, '/entryPoint');
    });

    it('rejects a dependency range that is not semver', () => {
      const deps = [{ id: 'a', version: '^1.0.0' }, { id: 'b', version: 'soon' }];
      expect(onlyProblem(withField('dependencies', deps), '/dependencies/1/version').hint).to.contain('^1.2.0');
    });

    it('rejects a dependency on the plugin itself', () => {
      onlyProblem(withField('dependencies', [{ id: 'hello', version: '^1.0.0' }]), '/dependencies/0/id');
    });

    it('rejects a dependency listed twice', () => {
      const deps = [{ id: 'a', version: '^1.0.0' }, { id: 'a', version: '^2.0.0' }];
      onlyProblem(withField('dependencies', deps), '/dependencies/1/id');
    });

    const scopeCases: [string, string][] = [
      ['filesystem', 'data/\0x'],
      ['network', 'https://api.example.com/path'],
      ['network', 'user@api.example.com'],
      ['network', 'ftp://api.example.com'],
      ['network', 'api.example.com:99999'],
      ['network', '*'],
      ['network', 'bad_host.example.com'],
      ['events', 'Orders.created'],
      ['events', 'orders..created'],
      ['events', 'orders.**.created'],
      ['plugins', 'Acme#login'],
      ['plugins', 'acme#a#b'],
      ['plugins', 'acme#1x'],
      ['storage', 'my store'],
      ['system', 'clock\t'],
      ['ui', 'side bar'],
    ];
    for (const [type, scope] of scopeCases) {
      it(`rejects the ${type} scope ${JSON.stringify(scope)}`, () => {
        const permissions = [{ type, scope: ['ok-scope', scope] }];
        onlyProblem(withField('permissions', permissions), '/permissions/0/scope/1');
      });
    }

    it('rejects limits above the host maxima and names the maximum', () => {
      const limits = { maxMemoryMB: 2048, executionTimeoutMs: 600_000 };
      const problems = problemsOf(withField('resourceLimits', limits));
      expect(problems.map((p) => p.pointer)).to.deep.equal(['/resourceLimits/maxMemoryMB', '/resourceLimits/executionTimeoutMs']);
      expect(problems[0].hint).to.contain(String(HOST_MAXIMUM_LIMITS.maxMemoryMB));
    });

    it('uses the host maxima it is given', () => {
      const hostLimits = { ...HOST_MAXIMUM_LIMITS, maxMemoryMB: 96 };
      const p = onlyProblem(withField('resourceLimits', { maxMemoryMB: 128 }), '/resourceLimits/maxMemoryMB', { hostLimits });
      expect(p.hint).to.contain('96');
    });

    it('rejects integrity paths outside the plugin folder', () => {
      const integrity = { algorithm: 'sha256', files: { '../evil.js': 'a'.repeat(64) } };
      onlyProblem(withField('integrity', integrity), '/integrity/files/..~1evil.js');
    });

    it('rejects a UI contribution entry outside the plugin folder', () => {
      const contributes = { ui: [{ point: 'sidebar', id: 'x', entry: '/etc/passwd' }] };
      onlyProblem(withField('contributes', contributes), '/contributes/ui/0/entry');
    });
  });

  describe('threads', () => {
    const wasm = (extra: Record<string, unknown>) => ({ ...minimal(), entryPoint: 'plugin.wasm', runtime: 'wasm', ...extra });

    it('accepts threads for a stateless wasm or python plugin, and one thread for any wasm plugin', () => {
      expect(validateManifest(wasm({ stateless: true, threads: { min: 2, max: 16 } })).valid).to.equal(true);
      expect(validateManifest({ ...minimal(), entryPoint: 'main.py', runtime: 'python', stateless: true, threads: { max: 4 } }).valid).to.equal(true);
      expect(validateManifest(wasm({ threads: { min: 1, max: 1 } })).valid).to.equal(true);
      expect(validateManifest(wasm({ threads: {} })).valid).to.equal(true);
    });

    it('rejects threads on a nodejs plugin at /threads', () => {
      const p = onlyProblem(withField('threads', { max: 1 }), '/threads');
      expect(p.hint).to.contain("remove 'threads'");
    });

    it('rejects more than one thread for a plugin that is not stateless, and says why', () => {
      expect(onlyProblem(wasm({ threads: { max: 2 } }), '/threads/max').hint).to.contain('stateless').and.contain('state would differ between threads');
      onlyProblem(wasm({ stateless: false, threads: { max: 2 } }), '/threads/max');
    });

    it('rejects min above max (max defaults to 1)', () => {
      onlyProblem(wasm({ stateless: true, threads: { min: 3, max: 2 } }), '/threads/min');
      expect(onlyProblem(wasm({ stateless: true, threads: { min: 2 } }), '/threads/min').hint).to.contain('threads.max');
    });

    it('rejects thread counts outside 1..16 and unknown fields by the schema', () => {
      onlyProblem(wasm({ stateless: true, threads: { max: 17 } }), '/threads/max');
      onlyProblem(wasm({ stateless: true, threads: { min: 0, max: 2 } }), '/threads/min');
      onlyProblem(wasm({ stateless: true, threads: { max: 2.5 } }), '/threads/max');
      onlyProblem(wasm({ threads: { count: 2 } }), '/threads/count');
    });

    it('effectiveThreads fills the defaults: one thread', () => {
      expect(effectiveThreads(wasm({}) as PluginManifest)).to.deep.equal({ min: 1, max: 1 });
      expect(effectiveThreads(wasm({ stateless: true, threads: { max: 4 } }) as PluginManifest)).to.deep.equal({ min: 1, max: 4 });
    });
  });

  it('returns every problem at once', () => {
    const manifest = {
      ...minimal(),
      colour: 'red',
      version: 'one',
      dependencies: [{ id: 'a', version: '^1' }, { id: 'b', version: 'x.y.z.w' }],
      resourceLimits: { maxMemoryMB: 4096 },
    };
    const pointers = problemsOf(manifest).map((p) => p.pointer).sort();
    expect(pointers).to.deep.equal(['/colour', '/dependencies/1/version', '/resourceLimits/maxMemoryMB', '/version']);
  });

  describe('parseManifest', () => {
    it('returns the manifest when valid', () => {
      expect(parseManifest(minimal(), 'test')).to.deep.equal(minimal());
    });

    it('throws a ManifestError carrying every problem and the source', () => {
      try {
        parseManifest({ ...minimal(), colour: 1, version: 'x' }, 'plugins/hello/plugin.json');
        expect.fail('should throw');
      } catch (error) {
        expect(error).to.be.instanceOf(ManifestError);
        const e = error as ManifestError;
        expect(e.code).to.equal(ManifestError.code);
        expect(e.source).to.equal('plugins/hello/plugin.json');
        expect(e.pluginId).to.equal('hello');
        expect(e.problems.map((p) => p.pointer)).to.have.members(['/colour', '/version']);
      }
    });
  });

  describe('readManifestFile', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'logomesh-manifest-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads and validates a file (a BOM is tolerated)', async () => {
      const file = path.join(dir, 'ok.json');
      await writeFile(file, `\uFEFF${JSON.stringify(minimal())}`);
      expect(await readManifestFile(file)).to.deep.equal(minimal());
    });

    it('reports bad JSON as a ManifestError at the root pointer', async () => {
      const file = path.join(dir, 'bad.json');
      await writeFile(file, '{ "id": "x", }');
      const error = await readManifestFile(file).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ManifestError);
      const [problem] = (error as ManifestError).problems;
      expect(problem.pointer).to.equal('');
      expect(problem.hint).to.contain('JSON');
    });

    it('reports a missing file as a ManifestError', async () => {
      const error = await readManifestFile(path.join(dir, 'none.json')).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ManifestError);
    });
  });

  describe('effectiveLimits', () => {
    it('fills unset limits with the defaults', () => {
      const manifest = { ...minimal(), resourceLimits: { maxMemoryMB: 128 } } as PluginManifest;
      expect(effectiveLimits(manifest)).to.deep.equal({ ...DEFAULT_RESOURCE_LIMITS, maxMemoryMB: 128 });
      expect(effectiveLimits(minimal() as PluginManifest)).to.deep.equal(DEFAULT_RESOURCE_LIMITS);
    });

    it('caps every limit at the host maxima when given', () => {
      const hostLimits = { ...HOST_MAXIMUM_LIMITS, maxMemoryMB: 32 };
      expect(effectiveLimits(minimal() as PluginManifest, hostLimits).maxMemoryMB).to.equal(32);
    });
  });

  it('the committed JSON Schema matches the generated one (run scripts/write-schema.ts)', () => {
    const root = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
    expect(readFileSync(path.join(root, SCHEMA_FILE), 'utf8')).to.equal(manifestSchemaText());
  });
});
