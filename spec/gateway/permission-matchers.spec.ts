import path from 'node:path';
import { expect } from 'chai';
import { topicMatches } from '../../lib/events/topic.js';
import {
  compileTopicScope,
  isWithin,
  levelGrants,
  matchFilesystemScope,
  matchNameScope,
  matchNetworkScope,
  matchPluginScope,
  matchTopicScope,
  nameScopeCovers,
  networkScopeCovers,
  parseNetworkScope,
  parsePluginScope,
  pluginScopeCovers,
  resolveFilesystemScope,
  topicScopeCovers,
  type FileAccess,
  type PermissionLevel,
} from '../../lib/gateway/permission-matchers.js';
import { validateManifest } from '../../lib/registry/manifest.js';

const label = (expected: boolean) => (expected ? 'allows' : 'refuses');

describe('permission matchers', () => {
  describe('levels', () => {
    const table: [PermissionLevel | undefined, FileAccess, boolean][] = [
      [undefined, 'read', true], [undefined, 'write', false], [undefined, 'execute', false],
      ['read', 'read', true], ['read', 'write', false], ['read', 'execute', false],
      ['write', 'read', false], ['write', 'write', true], ['write', 'execute', false],
      ['readwrite', 'read', true], ['readwrite', 'write', true], ['readwrite', 'execute', false],
      ['execute', 'read', false], ['execute', 'write', false], ['execute', 'execute', true],
    ];
    for (const [level, access, expected] of table) {
      it(`level ${level ?? '(omitted)'} ${expected ? 'grants' : 'does not grant'} ${access}`, () => {
        expect(levelGrants(level, access)).to.equal(expected);
      });
    }
  });

  describe('matchFilesystemScope', () => {
    const table: [string, PermissionLevel | undefined, string, FileAccess, boolean][] = [
      ['/data/a', undefined, '/data/a', 'read', true],
      ['/data/a', undefined, '/data/a/b.txt', 'read', true],
      ['/data/a', undefined, '/data/a/deep/er/c.txt', 'read', true],
      ['/data/a', undefined, '/data/ab', 'read', false],
      ['/data/a', undefined, '/data/ab/c.txt', 'read', false],
      ['/data/a', undefined, '/data/a.bak', 'read', false],
      ['/data/a', undefined, '/data', 'read', false],
      ['/data/a', undefined, '/', 'read', false],
      ['/data/a/', undefined, '/data/a/b', 'read', true],
      ['/data/a/', undefined, '/data/ab', 'read', false],
      ['/data/a', undefined, '/data/a/', 'read', true],
      ['/data/a', undefined, '/data/a/b/', 'read', true],
      ['/data/a', undefined, '/data/a/x/../y', 'read', true],
      ['/data/a', undefined, '/data/a/../a/y', 'read', true],
      ['/data/a', undefined, '/data/b/../a/y', 'read', true],
      ['/data/a', undefined, '/data/a/../b', 'read', false],
      ['/data/a', undefined, '/data/a/..', 'read', false],
      ['/data/a', undefined, '/data/a/../ab', 'read', false],
      ['/data/a', undefined, '/data/a/./b', 'read', true],
      ['/data/a', undefined, '/data//a//b', 'read', true],
      ['/data/./a', undefined, '/data/a/b', 'read', true],
      ['/data/x/../a', undefined, '/data/a/b', 'read', true],
      ['/data/a', undefined, '/DATA/a/b', 'read', false],
      ['/data/a', undefined, '/data/a/b\0.txt', 'read', false],
      ['/data/a\0', undefined, '/data/a\0/b', 'read', false],
      ['/data/a', undefined, 'data/a/b', 'read', false],
      ['/data/a', undefined, './b', 'read', false],
      ['data/a', undefined, '/data/a/b', 'read', false],
      ['/', 'read', '/etc/passwd', 'read', true],
      ['/', 'read', '/', 'read', true],
      ['/data/a', 'read', '/data/a/b', 'write', false],
      ['/data/a', 'write', '/data/a/b', 'write', true],
      ['/data/a', 'write', '/data/a/b', 'read', false],
      ['/data/a', 'readwrite', '/data/a/b', 'read', true],
      ['/data/a', 'readwrite', '/data/a/b', 'write', true],
      ['/data/a', 'readwrite', '/data/a/b', 'execute', false],
      ['/data/a', 'execute', '/data/a/tool.wasm', 'execute', true],
      ['/data/a', 'execute', '/data/a/tool.wasm', 'read', false],
      ['/data/a', 'readwrite', '/data/ab/b', 'write', false],
    ];
    for (const [root, level, target, access, expected] of table) {
      it(`root ${JSON.stringify(root)} (${level ?? 'read'}) ${label(expected)} ${access} of ${JSON.stringify(target)}`, () => {
        expect(matchFilesystemScope(root, level, target, access)).to.equal(expected);
      });
    }

    it('isWithin compares whole segments of normalised paths', () => {
      expect(isWithin('/data/a', '/data/a/b')).to.equal(true);
      expect(isWithin('/data/a', '/data/a')).to.equal(true);
      expect(isWithin('/data/a', '/data/ab')).to.equal(false);
      expect(isWithin('/data/a', '/data')).to.equal(false);
      expect(isWithin('/', '/anything')).to.equal(true);
    });
  });

  describe('resolveFilesystemScope', () => {
    const folders = { pluginDir: '/plugins/p', dataDir: '/data/p' };
    const table: [string, { kind: string; path: string } | undefined][] = [
      ['.', { kind: 'data', path: '/data/p' }],
      ['./', { kind: 'data', path: '/data/p' }],
      ['cache', { kind: 'data', path: '/data/p/cache' }],
      ['cache/', { kind: 'data', path: '/data/p/cache' }],
      ['./cache', { kind: 'data', path: '/data/p/cache' }],
      ['out/reports', { kind: 'data', path: '/data/p/out/reports' }],
      ['a/../b', { kind: 'data', path: '/data/p/b' }],
      ['..', undefined],
      ['../q', undefined],
      ['../p/cache', { kind: 'data', path: '/data/p/cache' }],
      ['../pq', undefined],
      ['a/../../q', undefined],
      ['$plugin', { kind: 'plugin', path: '/plugins/p' }],
      ['$plugin/', { kind: 'plugin', path: '/plugins/p' }],
      ['$plugin/assets', { kind: 'plugin', path: '/plugins/p/assets' }],
      ['$plugin//assets', { kind: 'plugin', path: '/plugins/p/assets' }],
      ['$plugin/a/../b', { kind: 'plugin', path: '/plugins/p/b' }],
      ['$plugin/..', undefined],
      ['$plugin/../other', undefined],
      ['$pluginx', { kind: 'data', path: '/data/p/$pluginx' }],
      ['/srv/shared', { kind: 'absolute', path: '/srv/shared' }],
      ['/srv/shared/', { kind: 'absolute', path: '/srv/shared' }],
      ['/srv/../etc', { kind: 'absolute', path: '/etc' }],
      ['cache\0', undefined],
      ['', undefined],
    ];
    for (const [scope, expected] of table) {
      it(`resolves ${JSON.stringify(scope)} to ${expected ? `${expected.kind} ${expected.path}` : 'nothing'}`, () => {
        expect(resolveFilesystemScope(scope, folders)).to.deep.equal(expected);
      });
    }

    it('resolves relative folders against the working directory', () => {
      expect(resolveFilesystemScope('cache', { pluginDir: 'p', dataDir: 'd' })).to.deep.equal({ kind: 'data', path: path.resolve('d', 'cache') });
    });
  });

  describe('matchNetworkScope', () => {
    const table: [string, string, boolean][] = [
      // exact host: http/https/ws/wss on the default port
      ['api.example.com', 'https://api.example.com/v1', true],
      ['api.example.com', 'http://api.example.com/', true],
      ['api.example.com', 'ws://api.example.com/socket', true],
      ['api.example.com', 'wss://api.example.com/', true],
      ['api.example.com', 'ftp://api.example.com/', false],
      ['api.example.com', 'file:///etc/passwd', false],
      ['api.example.com', 'https://API.EXAMPLE.COM/', true],
      ['API.Example.com', 'https://api.example.com/', true],
      ['api.example.com', 'https://api.example.com./', true],
      ['api.example.com.', 'https://api.example.com/', true],
      ['api.example.com', 'https://api.example.com../', false],
      ['api.example.com', 'https://api.example.com:443/', true],
      ['api.example.com', 'http://api.example.com:80/', true],
      ['api.example.com', 'wss://api.example.com:443/', true],
      ['api.example.com', 'https://api.example.com:8443/', false],
      ['api.example.com', 'http://api.example.com:443/', false],
      ['api.example.com', 'https://api.example.com:80/', false],
      ['api.example.com', 'http://api.example.com:8080/', false],
      ['api.example.com', 'https://example.com/', false],
      ['api.example.com', 'https://x.api.example.com/', false],
      ['api.example.com', 'https://api.example.com.evil.net/', false],
      ['api.example.com', 'https://evilapi.example.com/', false],
      ['api.example.com', 'https://api.example.co/', false],
      ['api.example.com', 'https://user@api.example.com/', false],
      ['api.example.com', 'https://user:pw@api.example.com/', false],
      ['api.example.com', 'https://:pw@api.example.com/', false],
      ['api.example.com', 'https://api.example.com@evil.net/', false],
      ['xn--bcher-kva.example', 'https://bücher.example/', true],
      ['bücher.example', 'https://xn--bcher-kva.example/', true],
      ['bücher.example', 'https://BÜCHER.example/', true],
      // *.host: subdomains at any depth, never the apex
      ['*.example.com', 'https://api.example.com/', true],
      ['*.example.com', 'https://a.b.example.com/', true],
      ['*.example.com', 'wss://a.b.c.example.com/', true],
      ['*.example.com', 'https://example.com/', false],
      ['*.example.com', 'https://example.com./', false],
      ['*.example.com', 'https://evil-example.com/', false],
      ['*.example.com', 'https://notexample.com/', false],
      ['*.example.com', 'https://example.com.evil.net/', false],
      ['*.example.com', 'https://api.example.com.evil.net/', false],
      ['*.example.com', 'https://api.example.com./', true],
      ['*.example.com', 'https://API.Example.COM/', true],
      ['*.example.com', 'https://api.example.com:8443/', false],
      ['*.example.com', 'https://a..example.com/', false],
      ['*.example.com', 'https://.example.com/', false],
      ['*.example.com', 'https://user@api.example.com/', false],
      ['*.example.com', 'http://[::1]/', false],
      // host:port: that port, any of the four schemes
      ['localhost:8080', 'http://localhost:8080/', true],
      ['localhost:8080', 'ws://localhost:8080/', true],
      ['localhost:8080', 'https://localhost:8080/', true],
      ['localhost:8080', 'http://localhost/', false],
      ['localhost:8080', 'http://localhost:8081/', false],
      ['localhost:8080', 'http://127.0.0.1:8080/', false],
      ['api.example.com:443', 'https://api.example.com/', true],
      ['api.example.com:443', 'http://api.example.com:443/', true],
      ['api.example.com:443', 'http://api.example.com/', false],
      ['api.example.com:80', 'http://api.example.com/', true],
      ['*.example.com:8443', 'https://a.example.com:8443/', true],
      ['*.example.com:8443', 'https://example.com:8443/', false],
      ['*.example.com:8443', 'https://a.example.com/', false],
      // scheme://host[:port]: that scheme only
      ['https://api.example.com', 'https://api.example.com/', true],
      ['https://api.example.com', 'http://api.example.com/', false],
      ['https://api.example.com', 'wss://api.example.com/', false],
      ['https://api.example.com', 'https://api.example.com:8443/', false],
      ['HTTPS://API.Example.com', 'https://api.example.com/', true],
      ['https://api.example.com:8443', 'https://api.example.com:8443/', true],
      ['https://api.example.com:8443', 'http://api.example.com:8443/', false],
      ['https://api.example.com:8443', 'https://api.example.com/', false],
      ['https://api.example.com:443', 'https://api.example.com/', true],
      ['http://api.example.com:443', 'https://api.example.com/', false],
      ['wss://*.example.com', 'wss://stream.example.com/', true],
      ['wss://*.example.com', 'ws://stream.example.com/', false],
      // IP literals match only as literals, after URL normalisation
      ['127.0.0.1:8080', 'http://127.0.0.1:8080/', true],
      ['127.0.0.1:8080', 'http://2130706433:8080/', true],
      ['127.0.0.1:8080', 'http://0x7f.0.0.1:8080/', true],
      ['127.0.0.1:8080', 'http://127.1:8080/', true],
      ['127.0.0.1:8080', 'http://localhost:8080/', false],
      ['127.0.0.1:8080', 'http://127.0.0.1/', false],
      ['127.0.0.1:8080', 'http://127.0.0.2:8080/', false],
      ['127.0.0.1', 'http://127.0.0.1/', true],
      ['127.0.0.1', 'http://127.0.0.1:8080/', false],
      ['2130706433', 'http://127.0.0.1/', true],
      ['[::1]:3000', 'http://[::1]:3000/', true],
      ['[::1]:3000', 'ws://[0:0:0:0:0:0:0:1]:3000/', true],
      ['[::1]:3000', 'http://[::1]/', false],
      ['[::1]:3000', 'http://[::2]:3000/', false],
      ['[::1]:3000', 'http://127.0.0.1:3000/', false],
      ['[::1]:3000', 'http://localhost:3000/', false],
      ['[::1]', 'http://[::1]/', true],
      ['[::1]', 'http://[::1]:80/', true],
      ['[2001:db8::1]:443', 'https://[2001:DB8:0:0::1]/', true],
      ['https://[2001:db8::1]', 'https://[2001:db8::1]/', true],
      ['https://[2001:db8::1]', 'http://[2001:db8::1]/', false],
      ['[::ffff:127.0.0.1]', 'http://[::ffff:7f00:1]/', true],
      ['[::ffff:127.0.0.1]', 'http://127.0.0.1/', false],
      // scopes that match nothing
      ['*', 'https://api.example.com/', false],
      ['*.*.example.com', 'https://a.b.example.com/', false],
      ['a*.example.com', 'https://ab.example.com/', false],
      ['ftp://api.example.com', 'ftp://api.example.com/', false],
      ['https://api.example.com/path', 'https://api.example.com/path', false],
      ['user@api.example.com', 'https://user@api.example.com/', false],
      ['api.example.com:0', 'https://api.example.com:0/', false],
      ['api.example.com:99999', 'https://api.example.com/', false],
      ['api.example.com:', 'https://api.example.com/', false],
      ['1.2.3.256', 'http://1.2.3.256.example/', false],
      ['*.0.0.1', 'http://127.0.0.1/', false],
      ['*.[::1]', 'http://[::1]/', false],
      ['::1', 'http://[::1]/', false],
      ['[::1', 'http://[::1]/', false],
      ['', 'https://api.example.com/', false],
    ];
    for (const [scope, href, expected] of table) {
      it(`${JSON.stringify(scope)} ${label(expected)} ${href}`, () => {
        expect(matchNetworkScope(scope, new URL(href))).to.equal(expected);
      });
    }

    it('parses scheme, host, wildcard and port into their normalised forms', () => {
      expect(parseNetworkScope('HTTPS://API.Example.com.:8443')).to.deep.equal({ protocol: 'https:', host: 'api.example.com', wildcard: false, port: 8443 });
      expect(parseNetworkScope('*.Example.org')).to.deep.equal({ protocol: undefined, host: 'example.org', wildcard: true, port: undefined });
      expect(parseNetworkScope('[0:0::1]:3000')).to.deep.equal({ protocol: undefined, host: '[::1]', wildcard: false, port: 3000 });
    });
  });

  describe('networkScopeCovers (policy, manifest)', () => {
    const table: [string, string, boolean][] = [
      ['*', 'anything.example.com', true],
      ['*', '[::1]:3000', true],
      ['*.example.com', 'api.example.com', true],
      ['*.example.com', 'a.b.example.com', true],
      ['*.example.com', '*.a.example.com', true],
      ['*.example.com', '*.example.com', true],
      ['*.example.com', 'example.com', false],
      ['*.example.com', 'api.example.com:8443', true],
      ['*.example.com', 'https://api.example.com', true],
      ['*.example.com', 'wss://*.example.com:9000', true],
      ['*.example.com', 'evil-example.com', false],
      ['*.example.com', 'example.com.evil.net', false],
      ['*.example.com', '*.com', false],
      ['*.a.example.com', '*.example.com', false],
      ['api.example.com', 'api.example.com', true],
      ['api.example.com', 'API.example.com.', true],
      ['api.example.com', '*.api.example.com', false],
      ['api.example.com', 'https://api.example.com:8443', true],
      ['api.example.com', 'x.api.example.com', false],
      ['https://api.example.com', 'api.example.com', false],
      ['https://api.example.com', 'https://api.example.com:8443', true],
      ['https://api.example.com', 'wss://api.example.com', false],
      ['api.example.com:443', 'https://api.example.com', true],
      ['api.example.com:443', 'wss://api.example.com', true],
      ['api.example.com:443', 'api.example.com', false],
      ['api.example.com:443', 'api.example.com:443', true],
      ['api.example.com:443', 'http://api.example.com', false],
      ['api.example.com:443', 'api.example.com:8443', false],
      ['https://*.example.com:8443', 'https://a.example.com:8443', true],
      ['https://*.example.com:8443', 'a.example.com:8443', false],
      ['localhost', '127.0.0.1', false],
      ['127.0.0.1', '2130706433', true],
      ['[::1]', '[0::1]:3000', true],
      ['[::1]', '127.0.0.1', false],
      ['garbage/', 'api.example.com', false],
      ['*.example.com', 'not a scope', false],
    ];
    for (const [policy, scope, expected] of table) {
      it(`${JSON.stringify(policy)} ${expected ? 'covers' : 'does not cover'} ${JSON.stringify(scope)}`, () => {
        expect(networkScopeCovers(policy, scope)).to.equal(expected);
      });
    }

    it('never says "covers" when the manifest scope matches a URL the policy scope (read with no port/scheme limits) does not', () => {
      const scopes = ['*.example.com', 'api.example.com', 'a.b.example.com', 'example.com', 'https://api.example.com', 'api.example.com:8443',
        'https://api.example.com:8443', 'ws://*.example.com:80', 'wss://*.b.example.com', 'api.example.com:443', '127.0.0.1:8080', '[::1]'];
      const urls = ['https://api.example.com/', 'http://api.example.com/', 'wss://api.example.com/', 'https://api.example.com:8443/',
        'http://api.example.com:443/', 'https://example.com/', 'https://a.b.example.com/', 'ws://x.example.com/', 'wss://c.b.example.com/',
        'http://127.0.0.1:8080/', 'http://[::1]/'].map((u) => new URL(u));
      // The policy reading of a scope: same host pattern, scheme/port only where the scope names them.
      const policyAllows = (policy: string, url: URL) => {
        const p = parseNetworkScope(policy)!;
        const loose = `${p.protocol ? `${p.protocol}//` : ''}${p.wildcard ? '*.' : ''}${p.host}:${p.port ?? (url.port || { 'http:': 80, 'ws:': 80, 'https:': 443, 'wss:': 443 }[url.protocol])}`;
        return matchNetworkScope(loose, url);
      };
      for (const policy of scopes) for (const scope of scopes) {
        if (!networkScopeCovers(policy, scope)) continue;
        for (const url of urls) {
          if (matchNetworkScope(scope, url)) expect(policyAllows(policy, url), `${policy} covers ${scope} but not ${url.href}`).to.equal(true);
        }
      }
    });
  });

  const patterns = ['orders', 'orders.created', 'orders.*', 'orders.**', '*', '**', '*.created', 'orders.*.v2', 'a.*.**', 'a.**', '*.*', 'orders.created.**'];
  const topics = ['orders', 'orders.created', 'orders.created.v2', 'orders.updated', 'ordersx.created', 'image.created', 'a', 'a.b', 'a.b.c', 'x', 'orders.x.v2', ''];

  describe('matchTopicScope', () => {
    const table: [string, string, boolean][] = [
      ['orders.created', 'orders.created', true],
      ['orders.created', 'orders.createdx', false],
      ['orders.created', 'orders', false],
      ['orders.*', 'orders.created', true],
      ['orders.*', 'orders', false],
      ['orders.*', 'orders.a.b', false],
      ['orders.*', 'ordersx.created', false],
      ['orders.**', 'orders', true],
      ['orders.**', 'orders.a.b.c', true],
      ['orders.**', 'ordersx', false],
      ['*.created', 'image.created', true],
      ['*.created', 'image.updated', false],
      ['**', 'anything.at.all', true],
      ['Orders.created', 'orders.created', false],
    ];
    for (const [scope, topic, expected] of table) {
      it(`${scope} ${label(expected)} ${topic}`, () => {
        expect(matchTopicScope(scope, topic)).to.equal(expected);
        expect(compileTopicScope(scope)(topic)).to.equal(expected);
      });
    }

    it('compiled matchers agree with topicMatches on every pattern and topic', () => {
      for (const p of patterns) {
        const compiled = compileTopicScope(p);
        for (const t of topics) expect(compiled(t), `${p} vs ${t}`).to.equal(topicMatches(p, t));
      }
    });
  });

  describe('topicScopeCovers (policy, manifest)', () => {
    const table: [string, string, boolean][] = [
      ['**', 'anything.*', true],
      ['**', 'a.**', true],
      ['**', '**', true],
      ['orders.**', 'orders', true],
      ['orders.**', 'orders.*', true],
      ['orders.**', 'orders.created', true],
      ['orders.**', 'orders.a.**', true],
      ['orders.**', 'orders.**', true],
      ['orders.**', 'ordersx.created', false],
      ['orders.**', '**', false],
      ['orders.**', '*.created', false],
      ['orders.*', 'orders.created', true],
      ['orders.*', 'orders.*', true],
      ['orders.*', 'orders.**', false],
      ['orders.*', 'orders', false],
      ['orders.*', 'orders.a.b', false],
      ['*.created', 'orders.created', true],
      ['*.created', '*.created', true],
      ['*.created', 'orders.*', false],
      ['orders.created', 'orders.created', true],
      ['orders.created', 'orders.*', false],
      ['*', 'orders', true],
      ['*', '*', true],
      ['*', 'orders.created', false],
      ['*', '**', false],
      ['a.*.**', 'a.b', true],
      ['a.*.**', 'a.b.**', true],
      ['a.*.**', 'a.**', false],
    ];
    for (const [policy, scope, expected] of table) {
      it(`${policy} ${expected ? 'covers' : 'does not cover'} ${scope}`, () => {
        expect(topicScopeCovers(policy, scope)).to.equal(expected);
      });
    }

    it('is sound: a covered pattern matches no topic the policy pattern does not', () => {
      for (const p of patterns) for (const m of patterns) {
        if (!topicScopeCovers(p, m)) continue;
        for (const t of topics) if (topicMatches(m, t)) expect(topicMatches(p, t), `${p} covers ${m} but not ${t}`).to.equal(true);
      }
    });
  });

  describe('matchPluginScope', () => {
    const table: [string, string, string, boolean][] = [
      ['acme.auth', 'acme.auth', 'login', true],
      ['acme.auth', 'acme.auth', 'anything', true],
      ['acme.auth#*', 'acme.auth', 'logout', true],
      ['acme.auth#login', 'acme.auth', 'login', true],
      ['acme.auth#login', 'acme.auth', 'logout', false],
      ['acme.auth#login', 'acme.auth', 'Login', false],
      ['acme.auth#login', 'acme.auth', 'login2', false],
      ['acme.auth#login', 'acme.auth', '*', false],
      ['acme.auth', 'acme.auth2', 'login', false],
      ['acme.auth', 'acme', 'login', false],
      ['acme', 'acme.auth', 'login', false],
      ['acme.auth#login', 'acme.authx', 'login', false],
      ['acme.auth#login', 'acme.auth#login', 'login', false],
      ['acme#', 'acme', 'x', false],
      ['#login', '', 'login', false],
      ['acme#a#b', 'acme', 'a', false],
    ];
    for (const [scope, id, method, expected] of table) {
      it(`${scope} ${label(expected)} ${id}#${method}`, () => {
        expect(matchPluginScope(scope, id, method)).to.equal(expected);
      });
    }

    it('reads id#* as every method', () => {
      expect(parsePluginScope('acme#*')).to.deep.equal({ id: 'acme' });
      expect(parsePluginScope('acme#run')).to.deep.equal({ id: 'acme', method: 'run' });
    });
  });

  describe('pluginScopeCovers (policy, manifest)', () => {
    const table: [string, string, boolean][] = [
      ['*', 'acme.auth', true],
      ['*', 'acme.auth#login', true],
      ['acme.auth', 'acme.auth', true],
      ['acme.auth', 'acme.auth#*', true],
      ['acme.auth', 'acme.auth#login', true],
      ['acme.auth#*', 'acme.auth', true],
      ['acme.auth#login', 'acme.auth#login', true],
      ['acme.auth#login', 'acme.auth#logout', false],
      ['acme.auth#login', 'acme.auth', false],
      ['acme.auth#login', 'acme.auth#*', false],
      ['acme.auth', 'acme.auth2', false],
      ['acme', 'acme.auth', false],
    ];
    for (const [policy, scope, expected] of table) {
      it(`${policy} ${expected ? 'covers' : 'does not cover'} ${scope}`, () => {
        expect(pluginScopeCovers(policy, scope)).to.equal(expected);
      });
    }
  });

  const names = ['clock', 'clock.now', 'clocks', 'llm', 'llm.complete', 'llm.chat', 'llm.chat.stream', 'llmx', 'llmx.a', 'a.*.b', 'a.x.b', 'llm.'];
  const nameScopes = ['clock', '*', '**', 'llm.*', 'llm.**', 'llm.chat.*', 'llm.chat.**', 'llm.complete', 'a.*.b', 'llmx.**'];

  describe('matchNameScope', () => {
    const table: [string, string, boolean][] = [
      ['clock', 'clock', true],
      ['clock', 'clock.now', false],
      ['clock', 'clocks', false],
      ['clock', 'Clock', false],
      ['llm.*', 'llm.complete', true],
      ['llm.*', 'llm', false],
      ['llm.*', 'llm.', false],
      ['llm.*', 'llm.chat.stream', false],
      ['llm.*', 'llmx.complete', false],
      ['llm.*', 'other.complete', false],
      ['llm.*', 'LLM.complete', false],
      ['llm.**', 'llm', true],
      ['llm.**', 'llm.complete', true],
      ['llm.**', 'llm.chat.stream', true],
      ['llm.**', 'llmx', false],
      ['llm.**', 'llmx.a', false],
      ['*', 'clock', true],
      ['*', 'llm.complete', false],
      ['**', 'anything.at.all', true],
      ['a.*.b', 'a.x.b', false],
      ['a.*.b', 'a.*.b', true],
    ];
    for (const [scope, name, expected] of table) {
      it(`${scope} ${label(expected)} ${name}`, () => {
        expect(matchNameScope(scope, name)).to.equal(expected);
      });
    }
  });

  describe('nameScopeCovers (policy, manifest)', () => {
    const table: [string, string, boolean][] = [
      ['**', 'anything', true],
      ['**', 'llm.**', true],
      ['**', '*', true],
      ['llm.**', 'llm', true],
      ['llm.**', 'llm.complete', true],
      ['llm.**', 'llm.*', true],
      ['llm.**', 'llm.chat.*', true],
      ['llm.**', 'llm.chat.**', true],
      ['llm.**', 'llm.**', true],
      ['llm.**', 'llmx.**', false],
      ['llm.**', '**', false],
      ['llm.**', '*', false],
      ['llm.*', 'llm.complete', true],
      ['llm.*', 'llm.*', true],
      ['llm.*', 'llm.chat.stream', false],
      ['llm.*', 'llm.**', false],
      ['llm.*', 'llm', false],
      ['llm.*', 'llm.chat.*', false],
      ['*', 'clock', true],
      ['*', '*', true],
      ['*', 'llm.complete', false],
      ['*', 'llm.*', false],
      ['clock', 'clock', true],
      ['clock', 'clock.*', false],
      ['clock', 'clocks', false],
      ['a.*.b', 'a.x.b', false],
    ];
    for (const [policy, scope, expected] of table) {
      it(`${policy} ${expected ? 'covers' : 'does not cover'} ${scope}`, () => {
        expect(nameScopeCovers(policy, scope)).to.equal(expected);
      });
    }

    it('is sound: a covered scope allows no name the policy scope does not', () => {
      for (const p of nameScopes) for (const m of nameScopes) {
        if (!nameScopeCovers(p, m)) continue;
        for (const n of names) if (matchNameScope(m, n)) expect(matchNameScope(p, n), `${p} covers ${m} but not ${n}`).to.equal(true);
      }
    });
  });

  describe('agreement with manifest validation', () => {
    const manifestWith = (type: string, scope: string) => ({
      id: 'hello', name: 'Hello', version: '1.0.0', entryPoint: 'index.js', runtime: 'nodejs', apiVersion: '^1.0.0',
      permissions: [{ type, scope: [scope] }],
    });
    const accepted = (type: string, scope: string) => validateManifest(manifestWith(type, scope)).valid;

    const network = ['api.example.com', 'API.Example.com', '*.example.org', 'localhost:8080', 'https://cdn.example.com:443', 'wss://*.example.com',
      '127.0.0.1:8080', '2130706433', '0x7f.1', '[::1]', '[::1]:3000', 'https://[2001:db8::1]:8443', 'xn--bcher-kva.example', 'a-b.c-d.e',
      'api.example.com:080', '*', 'ftp://x.com', 'x.com/p', 'u@x.com', 'x.com:0', 'x.com:99999', '1.2.3.256', '*.1.2.3.4', '*.[::1]', '[::1',
      '[::g]', '*.*.x.com', 'bad_host.example.com', 'bücher.example', 'x.com:', ':80', 'example.com.'];
    for (const scope of network) {
      it(`network scope ${JSON.stringify(scope)}: accepted by the manifest check only if the matcher can parse it`, () => {
        if (accepted('network', scope)) expect(parseNetworkScope(scope), scope).to.not.equal(undefined);
      });
    }

    it('accepts IPv6 literal hosts and refuses hosts the URL parser cannot read', () => {
      for (const ok of ['[::1]', '[::1]:3000', 'https://[2001:db8::1]:8443', '127.0.0.1:8080']) expect(accepted('network', ok), ok).to.equal(true);
      for (const bad of ['1.2.3.256', '*.1.2.3.4', '*.[::1]', '[::g]', '[::1']) expect(accepted('network', bad), bad).to.equal(false);
    });

    const plugins = ['acme.auth', 'acme.auth#login', 'metrics#*', 'a#$x', 'a#_b1'];
    for (const scope of plugins) {
      it(`plugins scope ${scope} is accepted and parsed`, () => {
        expect(accepted('plugins', scope)).to.equal(true);
        expect(parsePluginScope(scope)).to.not.equal(undefined);
      });
    }

    const folders = { pluginDir: '/plugins/p', dataDir: '/data/p' };
    const filesystem: [string, boolean][] = [
      ['.', true], ['cache', true], ['out/reports', true], ['./cache/', true], ['a/../b', true], ['$plugin', true], ['$plugin/assets', true],
      ['$plugin//assets', true], ['/srv/shared', true], ['/srv/../etc', true], ['..', false], ['../x', false], ['a/../../x', false],
      ['$plugin/..', false], ['$plugin/a/../../x', false], ['$pluginx', false], ['$HOME/x', false], ['x\0', false],
    ];
    for (const [scope, ok] of filesystem) {
      it(`filesystem scope ${JSON.stringify(scope)} is ${ok ? 'accepted and resolved' : 'refused by the manifest check'}`, () => {
        expect(accepted('filesystem', scope)).to.equal(ok);
        if (ok) expect(resolveFilesystemScope(scope, folders)).to.not.equal(undefined);
      });
    }
  });
});
