import { expect } from 'chai';
import { ManifestError } from '../../lib/errors.js';
import {
  DEFAULT_HOST_PERMISSION_POLICY,
  PermissionSet,
  policyViolations,
  type HostPermissionPolicy,
  type PermissionContext,
} from '../../lib/gateway/permissions.js';
import type { PluginManifest } from '../../lib/registry/manifest-schema.js';
import { validateManifest } from '../../lib/registry/manifest.js';

const PLUGIN = '/opt/logomesh/plugins/reporter';
const DATA = '/var/lib/logomesh/plugins/reporter/data';
const ctx: PermissionContext = { pluginId: 'reporter', pluginDir: PLUGIN, dataDir: DATA };

function manifest(fields: Partial<PluginManifest> = {}): PluginManifest {
  const m = { id: 'reporter', name: 'Reporter', version: '1.0.0', entryPoint: 'index.js', runtime: 'nodejs' as const, apiVersion: '^1.0.0', ...fields };
  // Every manifest here is one the registry would accept.
  const result = validateManifest(m);
  expect(result.problems, JSON.stringify(result.problems)).to.deep.equal([]);
  return m;
}

/** A reporter plugin asking for a bit of everything. */
const reporter = () =>
  manifest({
    permissions: [
      { type: 'filesystem', scope: ['cache', 'out/reports/'], level: 'readwrite' },
      { type: 'filesystem', scope: ['$plugin/assets'] },
      { type: 'filesystem', scope: ['/srv/shared/templates'], level: 'read' },
      { type: 'filesystem', scope: ['bin'], level: 'execute' },
      { type: 'network', scope: ['api.example.com', '*.example.org', 'localhost:8080', 'https://cdn.example.com', '[::1]:3000'] },
      { type: 'events', scope: ['orders.*', 'audit.**'] },
      { type: 'events', scope: ['reports.generated'], level: 'write' },
      { type: 'events', scope: ['reports.requests.*'], level: 'readwrite' },
      { type: 'plugins', scope: ['acme.auth#login', 'metrics#*'] },
      { type: 'storage', scope: ['reports', 'cache.**'] },
      { type: 'system', scope: ['llm.*', 'clock'] },
      { type: 'ui', scope: ['sidebar.*'] },
    ],
    dependencies: [
      { id: 'text-processor', version: '^1.0.0' },
      { id: 'spellcheck', version: '^2.0.0', optional: true },
    ],
  });

const sharedPolicy: HostPermissionPolicy = { filesystemRoots: [{ path: '/srv/shared', level: 'read' }] };

describe('PermissionSet', () => {
  describe('least privilege', () => {
    const none = PermissionSet.from(manifest(), ctx);

    it('allows nothing of a type the manifest does not ask for', () => {
      expect(none.allowsFile(`${DATA}/x.txt`, 'read')).to.equal(false);
      expect(none.allowsFile(`${PLUGIN}/index.js`, 'read')).to.equal(false);
      expect(none.allowsNetwork(new URL('https://api.example.com/'))).to.equal(false);
      expect(none.allowsTopic('orders.created', 'subscribe')).to.equal(false);
      expect(none.allowsTopic('orders.created', 'publish')).to.equal(false);
      expect(none.allowsCall('acme.auth', 'login')).to.equal(false);
      for (const type of ['system', 'storage', 'ui'] as const) expect(none.allowsName(type, 'x')).to.equal(false);
      expect(none.fileRoots()).to.deep.equal([]);
    });

    it('reads an omitted level as read: no publishing, no writing', () => {
      const p = PermissionSet.from(manifest({ permissions: [{ type: 'events', scope: ['a.*'] }, { type: 'filesystem', scope: ['.'] }] }), ctx);
      expect(p.allowsTopic('a.b', 'subscribe')).to.equal(true);
      expect(p.allowsTopic('a.b', 'publish')).to.equal(false);
      expect(p.allowsFile(`${DATA}/f`, 'read')).to.equal(true);
      expect(p.allowsFile(`${DATA}/f`, 'write')).to.equal(false);
    });

    it('grants nothing for events at level execute', () => {
      const p = PermissionSet.from(manifest({ permissions: [{ type: 'events', scope: ['a.*'], level: 'execute' }] }), ctx);
      expect(p.allowsTopic('a.b', 'subscribe')).to.equal(false);
      expect(p.allowsTopic('a.b', 'publish')).to.equal(false);
    });
  });

  describe('files', () => {
    const p = PermissionSet.from(reporter(), ctx, sharedPolicy);
    const table: [string, 'read' | 'write' | 'execute', boolean][] = [
      [`${DATA}/cache`, 'read', true],
      [`${DATA}/cache/x.txt`, 'read', true],
      [`${DATA}/cache/x.txt`, 'write', true],
      [`${DATA}/cache/x.txt`, 'execute', false],
      [`${DATA}/cache/`, 'write', true],
      [`${DATA}/cachex/x.txt`, 'read', false],
      [`${DATA}/cache/../out/reports/q1.csv`, 'write', true],
      [`${DATA}/cache/../secrets.txt`, 'read', false],
      [`${DATA}/cache/../../../other/data/x`, 'read', false],
      [`${DATA}/x.txt`, 'read', false],
      [`${DATA}/out/reports/q1.csv`, 'write', true],
      [`${DATA}/out/reportsx`, 'write', false],
      [`${DATA}/out`, 'read', false],
      [`${DATA}/bin/tool.wasm`, 'execute', true],
      [`${DATA}/bin/tool.wasm`, 'read', false],
      [`${DATA}/bin/tool.wasm`, 'write', false],
      [`${PLUGIN}/assets/logo.png`, 'read', true],
      [`${PLUGIN}/assets/logo.png`, 'write', false],
      [`${PLUGIN}/assets/logo.png`, 'execute', false],
      [`${PLUGIN}/index.js`, 'read', false],
      [`${PLUGIN}/assetsx/a`, 'read', false],
      ['/srv/shared/templates/a.hbs', 'read', true],
      ['/srv/shared/templates/a.hbs', 'write', false],
      ['/srv/shared/templatesx', 'read', false],
      ['/srv/shared/other', 'read', false],
      ['/etc/passwd', 'read', false],
      [`${DATA}/cache/x\0.txt`, 'read', false],
      ['cache/x.txt', 'read', false],
      ['', 'read', false],
    ];
    for (const [target, access, expected] of table) {
      it(`${expected ? 'allows' : 'refuses'} ${access} of ${JSON.stringify(target)}`, () => {
        expect(p.allowsFile(target, access)).to.equal(expected);
      });
    }

    it('lists the granted roots resolved, with their levels', () => {
      expect(p.fileRoots()).to.deep.equal([
        { path: `${DATA}/cache`, level: 'readwrite' },
        { path: `${DATA}/out/reports`, level: 'readwrite' },
        { path: `${PLUGIN}/assets`, level: 'read' },
        { path: '/srv/shared/templates', level: 'read' },
        { path: `${DATA}/bin`, level: 'execute' },
      ]);
    });

    it('grants an absolute path only inside a root the host policy allows', () => {
      const p = PermissionSet.from(reporter(), ctx);
      expect(p.allowsFile('/srv/shared/templates/a.hbs', 'read')).to.equal(false);
      expect(p.fileRoots().map((r) => r.path)).to.not.include('/srv/shared/templates');
    });

    it('never grants write to the plugin folder, even when asked', () => {
      const m = manifest({ permissions: [{ type: 'filesystem', scope: ['$plugin', `${PLUGIN}/lib`], level: 'readwrite' }] });
      const p = PermissionSet.from(m, ctx, { filesystemRoots: [{ path: '/opt', level: 'readwrite' }] });
      expect(p.allowsFile(`${PLUGIN}/index.js`, 'write')).to.equal(false);
      expect(p.allowsFile(`${PLUGIN}/lib/a.js`, 'write')).to.equal(false);
    });

    it('keeps the plugin folder read-only under a wider absolute root, but a data folder inside it writable', () => {
      const m = manifest({ permissions: [{ type: 'filesystem', scope: ['/opt/logomesh', '.'], level: 'readwrite' }] });
      const inside = { ...ctx, dataDir: `${PLUGIN}/.data` };
      const p = PermissionSet.from(m, inside, { filesystemRoots: [{ path: '/opt', level: 'readwrite' }] });
      expect(p.allowsFile('/opt/logomesh/other.txt', 'write')).to.equal(true);
      expect(p.allowsFile(`${PLUGIN}/index.js`, 'read')).to.equal(true);
      expect(p.allowsFile(`${PLUGIN}/index.js`, 'write')).to.equal(false);
      expect(p.allowsFile(`${PLUGIN}/.data/state.json`, 'write')).to.equal(true);
    });

    it('grants nothing for a scope that climbs out of its folder', () => {
      // Built directly: the manifest check refuses these before they get here.
      const m = { ...manifest(), permissions: [{ type: 'filesystem' as const, scope: ['../../other/data', '$plugin/../other'], level: 'readwrite' as const }] };
      const p = PermissionSet.from(m, ctx);
      expect(p.fileRoots()).to.deep.equal([]);
      expect(p.allowsFile('/var/lib/logomesh/plugins/other/data/x', 'read')).to.equal(false);
    });

    it('resolves relative folders of the context against the working directory', () => {
      const p = PermissionSet.from(manifest({ permissions: [{ type: 'filesystem', scope: ['cache'] }] }), { ...ctx, dataDir: '.logomesh/data' });
      expect(p.fileRoots()[0].path).to.equal(`${process.cwd()}/.logomesh/data/cache`);
    });
  });

  describe('network', () => {
    const p = PermissionSet.from(reporter(), ctx);
    const table: [string, boolean][] = [
      ['https://api.example.com/v1/orders?x=1', true],
      ['http://api.example.com/', true],
      ['wss://api.example.com/stream', true],
      ['https://API.example.com./', true],
      ['https://api.example.com:8443/', false],
      ['https://user:pw@api.example.com/', false],
      ['ftp://api.example.com/', false],
      ['https://www.example.org/', true],
      ['https://a.b.example.org/', true],
      ['https://example.org/', false],
      ['https://evil-example.org/', false],
      ['https://example.org.evil.net/', false],
      ['http://localhost:8080/', true],
      ['ws://localhost:8080/', true],
      ['http://localhost/', false],
      ['http://127.0.0.1:8080/', false],
      ['https://cdn.example.com/lib.js', true],
      ['http://cdn.example.com/lib.js', false],
      ['http://[::1]:3000/', true],
      ['http://[0:0:0:0:0:0:0:1]:3000/', true],
      ['http://[::1]/', false],
      ['https://example.com/', false],
    ];
    for (const [href, expected] of table) {
      it(`${expected ? 'allows' : 'refuses'} ${href}`, () => {
        expect(p.allowsNetwork(new URL(href))).to.equal(expected);
      });
    }

    it('drops network scopes outside the host policy', () => {
      const capped = PermissionSet.from(reporter(), ctx, { network: ['*.example.org'] });
      expect(capped.allowsNetwork(new URL('https://www.example.org/'))).to.equal(true);
      expect(capped.allowsNetwork(new URL('https://api.example.com/'))).to.equal(false);
    });
  });

  describe('events', () => {
    const p = PermissionSet.from(reporter(), ctx);
    const table: [string, 'publish' | 'subscribe', boolean][] = [
      ['orders.created', 'subscribe', true],
      ['orders.created', 'publish', false],
      ['orders', 'subscribe', false],
      ['orders.created.v2', 'subscribe', false],
      ['audit', 'subscribe', true],
      ['audit.login.failed', 'subscribe', true],
      ['audit.login.failed', 'publish', false],
      ['reports.generated', 'publish', true],
      ['reports.generated', 'subscribe', false],
      ['reports.generatedx', 'publish', false],
      ['reports.requests.new', 'publish', true],
      ['reports.requests.new', 'subscribe', true],
      ['reports.requests', 'subscribe', false],
      ['invoices.created', 'subscribe', false],
      // Subscription patterns: allowed when a granted scope covers the whole pattern.
      ['orders.*', 'subscribe', true],
      ['orders.**', 'subscribe', false],
      ['audit.login.*', 'subscribe', true],
      ['audit.**', 'subscribe', true],
      ['**', 'subscribe', false],
      ['reports.*', 'publish', false],
    ];
    for (const [topic, access, expected] of table) {
      it(`${expected ? 'allows' : 'refuses'} ${access} ${topic}`, () => {
        expect(p.allowsTopic(topic, access)).to.equal(expected);
      });
    }
  });

  describe('plugin calls', () => {
    const p = PermissionSet.from(reporter(), ctx);
    const table: [string, string, boolean][] = [
      ['acme.auth', 'login', true],
      ['acme.auth', 'logout', false],
      ['acme.auth', 'Login', false],
      ['metrics', 'record', true],
      ['metrics', 'anything', true],
      ['text-processor', 'upper', true],
      ['spellcheck', 'check', true],
      ['acme', 'login', false],
      ['acme.authx', 'login', false],
      ['reporter', 'self', false],
    ];
    for (const [id, method, expected] of table) {
      it(`${expected ? 'allows' : 'refuses'} ${id}#${method}`, () => {
        expect(p.allowsCall(id, method)).to.equal(expected);
      });
    }

    it('does not let a policy-refused dependency be called', () => {
      const capped = PermissionSet.from(reporter(), ctx, { plugins: ['metrics', 'text-processor'] });
      expect(capped.allowsCall('text-processor', 'upper')).to.equal(true);
      expect(capped.allowsCall('spellcheck', 'check')).to.equal(false);
      expect(capped.allowsCall('acme.auth', 'login')).to.equal(false);
    });
  });

  describe('names', () => {
    const p = PermissionSet.from(reporter(), ctx);
    const table: ['system' | 'storage' | 'ui', string, boolean][] = [
      ['system', 'llm.complete', true],
      ['system', 'llm', false],
      ['system', 'llm.chat.stream', false],
      ['system', 'clock', true],
      ['system', 'clock.now', false],
      ['system', 'reports', false],
      ['storage', 'reports', true],
      ['storage', 'reports.daily', false],
      ['storage', 'cache', true],
      ['storage', 'cache.a.b', true],
      ['storage', 'clock', false],
      ['ui', 'sidebar.reports', true],
      ['ui', 'sidebar', false],
      ['ui', 'toolbar.reports', false],
    ];
    for (const [type, name, expected] of table) {
      it(`${expected ? 'allows' : 'refuses'} ${type} ${name}`, () => {
        expect(p.allowsName(type, name)).to.equal(expected);
      });
    }
  });

  describe('needed', () => {
    const p = PermissionSet.from(reporter(), ctx);
    const table: [Parameters<PermissionSet['needed']>, string][] = [
      [['network', new URL('https://api.example.com/v1')], '{ "type": "network", "scope": ["api.example.com"] }'],
      [['network', 'http://Localhost:8080/x'], '{ "type": "network", "scope": ["localhost:8080"] }'],
      [['network', new URL('https://api.example.com.:8443/')], '{ "type": "network", "scope": ["api.example.com:8443"] }'],
      [['network', 'http://[::1]:3000/'], '{ "type": "network", "scope": ["[::1]:3000"] }'],
      [['filesystem', `${DATA}/cache/x.txt`, 'write'], '{ "type": "filesystem", "scope": ["cache/x.txt"], "level": "write" }'],
      [['filesystem', `${DATA}/notes.md`, 'read'], '{ "type": "filesystem", "scope": ["notes.md"] }'],
      [['filesystem', DATA, 'read'], '{ "type": "filesystem", "scope": ["."] }'],
      [['filesystem', `${PLUGIN}/assets/x.png`, 'read'], '{ "type": "filesystem", "scope": ["$plugin/assets/x.png"] }'],
      [['filesystem', `${PLUGIN}/run.wasm`, 'execute'], '{ "type": "filesystem", "scope": ["$plugin/run.wasm"], "level": "execute" }'],
      [['filesystem', '/srv/shared/a.txt', 'read'], '{ "type": "filesystem", "scope": ["/srv/shared/a.txt"] }'],
      [['events', 'orders.created', 'publish'], '{ "type": "events", "scope": ["orders.created"], "level": "write" }'],
      [['events', 'orders.created', 'write'], '{ "type": "events", "scope": ["orders.created"], "level": "write" }'],
      [['events', 'orders.created', 'subscribe'], '{ "type": "events", "scope": ["orders.created"] }'],
      [['plugins', 'acme.auth#logout'], '{ "type": "plugins", "scope": ["acme.auth#logout"] }'],
      [['system', 'llm.embed.batch'], '{ "type": "system", "scope": ["llm.embed.batch"] }'],
      [['storage', 'say "hi"'], '{ "type": "storage", "scope": ["say \\"hi\\""] }'],
    ];
    for (const [args, expected] of table) {
      it(`names ${expected}`, () => {
        expect(p.needed(...args)).to.equal(expected);
      });
    }

    it('says that the plugin folder is never writable instead of naming a permission that cannot be granted', () => {
      expect(p.needed('filesystem', `${PLUGIN}/index.js`, 'write')).to.contain('never writable');
    });
  });
});

describe('policyViolations', () => {
  const policy: HostPermissionPolicy = {
    filesystemRoots: [{ path: '/srv/shared', level: 'read' }, { path: '/srv/drop', level: 'write' }, { path: '/srv/drop', level: 'read' }],
    network: ['*.example.org', 'api.example.com', 'https://cdn.example.com'],
    events: ['orders.**', 'audit.*'],
    plugins: ['acme.auth', 'text-processor#upper'],
    system: ['llm.*'],
    storage: ['reports.**'],
    ui: [],
  };
  const greedy = () =>
    manifest({
      permissions: [
        { type: 'filesystem', scope: ['cache', '$plugin/assets', '/srv/shared/templates', `${DATA}/abs-in-data`, `${PLUGIN}/lib`], level: 'read' },
        { type: 'filesystem', scope: ['/srv/shared/out', '/etc', '$plugin', `${PLUGIN}/lib`, '/srv/drop/in', '/srv/sharedx'], level: 'readwrite' },
        { type: 'network', scope: ['api.example.com', 'a.example.org', 'example.org', 'evil.com', 'api.example.com:8443', '*.b.example.org', 'cdn.example.com', 'https://cdn.example.com:8443'] },
        { type: 'events', scope: ['orders.*', 'orders.**', 'audit.login', 'audit.**', '**'] },
        { type: 'plugins', scope: ['acme.auth#login', 'metrics', 'text-processor#upper', 'text-processor#lower'] },
        { type: 'system', scope: ['llm.complete', 'llm.**', 'clock'] },
        { type: 'storage', scope: ['reports', 'reports.daily', 'cache'] },
        { type: 'ui', scope: ['sidebar'] },
      ],
      dependencies: [
        { id: 'acme.auth', version: '^1.0.0' },
        { id: 'metrics', version: '^1.0.0', optional: true },
        { id: 'text-processor', version: '^1.0.0' },
      ],
    });

  it('lists every scope the host policy does not cover, with its pointer', () => {
    expect(policyViolations(greedy(), policy, ctx).map((v) => v.pointer)).to.deep.equal([
      '/permissions/1/scope/0', // /srv/shared is read-only
      '/permissions/1/scope/1', // /etc is no root
      '/permissions/1/scope/2', // $plugin is never writable
      '/permissions/1/scope/3', // nor is a path inside it
      '/permissions/1/scope/5', // /srv/sharedx is not inside /srv/shared
      '/permissions/2/scope/2', // the apex is not a subdomain
      '/permissions/2/scope/3',
      '/permissions/2/scope/6', // https://cdn.example.com does not cover http
      '/permissions/3/scope/3', // audit.* does not cover audit.**
      '/permissions/3/scope/4',
      '/permissions/4/scope/1',
      '/permissions/4/scope/3',
      '/permissions/5/scope/1',
      '/permissions/5/scope/2',
      '/permissions/6/scope/2',
      '/permissions/7/scope/0', // no ui at all
      '/dependencies/1/id', // a dependency is a permission to call
      '/dependencies/2/id', // text-processor#upper does not cover every method
    ]);
  });

  it('says what was asked, what the host allows and how to fix it', () => {
    const byPointer = new Map(policyViolations(greedy(), policy, ctx).map((v) => [v.pointer, v]));
    expect(byPointer.get('/permissions/1/scope/1')!.message).to.contain("'/etc'").and.contain('/srv/shared (read)');
    expect(byPointer.get('/permissions/1/scope/1')!.hint).to.contain('filesystemRoots').and.contain('readwrite');
    expect(byPointer.get('/permissions/1/scope/2')!.message).to.contain('never writable');
    expect(byPointer.get('/permissions/2/scope/3')!.message).to.contain("'evil.com'").and.contain('*.example.org');
    expect(byPointer.get('/permissions/7/scope/0')!.message).to.contain('grants no ui permissions');
    expect(byPointer.get('/dependencies/1/id')!.message).to.contain("'metrics'");
    for (const v of byPointer.values()) expect(v.hint).to.be.a('string').and.not.equal('');
  });

  it('makes a ManifestError that lists them all', () => {
    const error = new ManifestError(policyViolations(greedy(), policy, ctx), `${PLUGIN}/plugin.json`, { pluginId: 'reporter' });
    expect(error.code).to.equal('LOGOMESH_ERR_MANIFEST_INVALID');
    expect(error.problems).to.have.length(18);
    expect(error.message).to.contain('/permissions/2/scope/3');
  });

  it('under the default policy, flags only absolute folders and writes to the plugin folder', () => {
    expect(DEFAULT_HOST_PERMISSION_POLICY.network).to.deep.equal(['*']);
    expect(policyViolations(greedy(), {}, ctx).map((v) => v.pointer)).to.deep.equal([
      '/permissions/0/scope/2',
      '/permissions/1/scope/0',
      '/permissions/1/scope/1',
      '/permissions/1/scope/2',
      '/permissions/1/scope/3',
      '/permissions/1/scope/4',
      '/permissions/1/scope/5',
    ]);
  });

  it('finds nothing to report in a manifest within the policy', () => {
    expect(policyViolations(reporter(), sharedPolicy, ctx)).to.deep.equal([]);
    expect(policyViolations(manifest(), { network: [], events: [], plugins: [], system: [], storage: [], ui: [] }, ctx)).to.deep.equal([]);
  });

  it('combines roots: readwrite is covered by a read root and a write root over the same folder', () => {
    const m = manifest({ permissions: [{ type: 'filesystem', scope: ['/srv/drop/in'], level: 'readwrite' }, { type: 'filesystem', scope: ['/srv/drop/tool'], level: 'execute' }] });
    expect(policyViolations(m, policy, ctx).map((v) => v.pointer)).to.deep.equal(['/permissions/1/scope/0']);
    expect(policyViolations(m, { filesystemRoots: [{ path: '/srv', level: 'execute' }, { path: '/srv/drop', level: 'readwrite' }] }, ctx)).to.deep.equal([]);
  });

  it('reports scopes that climb out of the data or plugin folder', () => {
    const m = { ...manifest(), permissions: [{ type: 'filesystem' as const, scope: ['../other', '$plugin/../other', 'ok'] }] };
    const violations = policyViolations(m, {}, ctx);
    expect(violations.map((v) => v.pointer)).to.deep.equal(['/permissions/0/scope/0', '/permissions/0/scope/1']);
    expect(violations[0].message).to.contain('data folder');
    expect(violations[1].message).to.contain("plugin's own folder");
  });

  it('lets the special scopes * and ** cover everything', () => {
    const all: HostPermissionPolicy = { network: ['*'], events: ['**'], plugins: ['*'], system: ['**'], storage: ['**'], ui: ['**'] };
    const m = manifest({ permissions: [
      { type: 'network', scope: ['[::1]:3000', 'wss://*.a.b.example.com:9000'] },
      { type: 'events', scope: ['**'] },
      { type: 'plugins', scope: ['x#y'] },
      { type: 'system', scope: ['**'] },
      { type: 'storage', scope: ['*'] },
      { type: 'ui', scope: ['a.b.*'] },
    ] });
    expect(policyViolations(m, all, ctx)).to.deep.equal([]);
  });
});
