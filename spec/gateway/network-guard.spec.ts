import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { InvalidArgumentError, PermissionDeniedError, ResourceLimitError } from '../../lib/errors.js';
import { NetworkGuard, type NetworkGuardOptions } from '../../lib/gateway/network-guard.js';
import { guardedNetworkHooks } from '../helpers/loopback-only.js';
import { startNetFixture, type NetFixture } from '../helpers/net-fixture.js';
import { rejection } from '../helpers/make-plugin.js';

/** A throwaway self-signed certificate for api.example.test, or undefined without openssl. */
function selfSigned(): { key: Buffer; cert: Buffer } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'net-guard-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=api.example.test', '-addext', 'subjectAltName=DNS:api.example.test',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('NetworkGuard (ctx.net.fetch)', function () {
  this.timeout(10_000);
  let net: NetFixture;
  const guards: NetworkGuard[] = [];

  before(async () => {
    net = await startNetFixture();
  });
  after(async () => {
    await net.close();
  });
  guardedNetworkHooks(() => net.reset(), guards);

  function guard(over: Partial<NetworkGuardOptions> = {}): NetworkGuard {
    const g = new NetworkGuard({
      pluginId: 'net-spec',
      allows: () => true,
      needed: (url) => `{ "type": "network", "scope": ["${url.hostname}"] }`,
      allowAddress: ['::1'],
      resolve: (host) => net.resolve(host),
      ...over,
    });
    guards.push(g);
    return g;
  }

  /** Expects a PermissionDeniedError and that neither server saw so much as a connection. */
  async function denied(p: Promise<unknown>): Promise<PermissionDeniedError> {
    const e = await rejection(p);
    expect(e).to.be.instanceOf(PermissionDeniedError);
    expect(net.canary.connections, 'canary connections').to.equal(0);
    expect(net.app.connections, 'app connections').to.equal(0);
    return e as PermissionDeniedError;
  }

  describe('fetching what is allowed', () => {
    it('fetches from an allowed host, sets Host itself and returns status, headers and body', async () => {
      const g = guard();
      const res = await g.fetch(net.url('api.example.test', '/hello#frag'));
      expect(res).to.include({ status: 200, statusText: 'OK', body: `hello from api.example.test:${net.port}`, redirected: false });
      expect(res.url).to.equal(net.url('api.example.test', '/hello'));
      expect(res.headers['x-spec']).to.equal('yes');
      expect(net.app.requests[0].url).to.equal('/hello');
      expect(net.canary.connections).to.equal(0);
    });

    it('sends a utf8 or base64 body and returns base64 when asked', async () => {
      const g = guard();
      const a = JSON.parse((await g.fetch(net.url('api.example.test', '/echo'), { method: 'post', body: 'héllo', headers: { 'X-Id': '7' } })).body);
      expect(a).to.include({ method: 'POST', body: 'héllo' });
      expect(a.headers).to.include({ 'x-id': '7', 'content-length': '6' });
      const b = await g.fetch(net.url('api.example.test', '/echo'), {
        method: 'PUT',
        body: Buffer.from('raw bytes').toString('base64'),
        bodyEncoding: 'base64',
        responseEncoding: 'base64',
      });
      expect(JSON.parse(Buffer.from(b.body, 'base64').toString('utf8')).body).to.equal('raw bytes');
      expect(b.headers['set-cookie']).to.equal('a=1, b=2');
    });

    it('decodes gzip and brotli bodies and drops the encoding headers that no longer apply', async () => {
      const g = guard();
      for (const enc of ['gzip', 'br']) {
        const res = await g.fetch(net.url('api.example.test', `/gzip?enc=${enc}`));
        expect(res.body).to.equal('hello, decoded');
        expect(res.headers).to.not.have.property('content-encoding');
      }
      expect(net.app.requests[0].headers['accept-encoding']).to.equal('gzip, deflate, br');
    });
  });

  describe('URL checks, before anything else', () => {
    for (const url of ['http://allowed@evil.example.test/', 'http://user:pass@api.example.test/', 'https://:pw@api.example.test/']) {
      it(`refuses user info: ${url}`, async () => {
        let asked = 0;
        const g = guard({ allows: () => (asked++, true) });
        await denied(g.fetch(url));
        expect(asked, 'allows() consulted').to.equal(0);
        expect(net.dnsCalls).to.deep.equal([]);
      });
    }

    for (const url of ['file:///etc/passwd', 'ftp://api.example.test/', 'data:text/plain,hi', 'javascript:alert(1)', 'ws://api.example.test/', 'gopher://api.example.test/']) {
      it(`refuses scheme ${url.split(':')[0]}:`, async () => {
        await denied(guard().fetch(url));
      });
    }

    it('refuses a host the plugin has no permission for, with the permission it would need', async () => {
      const g = guard({ allows: (u) => u.hostname === 'api.example.test' });
      const e = await denied(g.fetch(net.url('other.example.test', '/x')));
      expect(e).to.include({ operation: 'net.fetch', target: net.url('other.example.test', '/x'), pluginId: 'net-spec' });
      expect(e.requiredPermission).to.equal('{ "type": "network", "scope": ["other.example.test"] }');
      expect(net.dnsCalls, 'no DNS for a host that is not allowed').to.deep.equal([]);
    });

    it('hands allows() the normalised URL', async () => {
      const seen: string[] = [];
      await guard({ allows: (u) => (seen.push(u.href), false) }).fetch('HTTP://API.Example.TEST:80/a/../b?q#h').catch(() => undefined);
      expect(seen).to.deep.equal(['http://api.example.test/b?q']);
    });

    it('says an unparsable URL is an invalid argument', async () => {
      expect(await rejection(guard().fetch('not a url'))).to.be.instanceOf(InvalidArgumentError);
    });
  });

  describe('request shape', () => {
    for (const method of ['CONNECT', 'TRACE', 'TRACK', 'FOO', 'GET\r\nX: y']) {
      it(`refuses method ${JSON.stringify(method)}`, async () => {
        expect(await rejection(guard().fetch(net.url('api.example.test'), { method }))).to.be.instanceOf(InvalidArgumentError);
        expect(net.app.connections).to.equal(0);
      });
    }

    const badHeaders: Record<string, string>[] = [
      { 'X-A': 'ok\r\nInjected: 1' },
      { 'X-A': 'line\nfeed' },
      { 'X-A': 'nul\0' },
      { 'X-A\r\nInjected': 'v' },
      { 'Bad Name': 'v' },
      { Host: 'internal.example.test' },
      { Connection: 'keep-alive' },
      { 'Transfer-Encoding': 'chunked' },
      { 'Content-Length': '0' },
      { 'Proxy-Authorization': 'Basic eA==' },
      { 'Proxy-Connection': 'close' },
      { 'Keep-Alive': 'timeout=5' },
      { Upgrade: 'websocket' },
      { TE: 'trailers' },
      { Trailer: 'X' },
      { Expect: '100-continue' },
      { 'x-a': '1', 'X-A': '2' },
    ];
    for (const headers of badHeaders) {
      it(`refuses headers ${JSON.stringify(headers)}`, async () => {
        const g = guard();
        expect(await rejection(g.fetch(net.url('api.example.test'), { headers }))).to.be.instanceOf(InvalidArgumentError);
        expect(net.app.connections + net.canary.connections).to.equal(0);
        expect(g.stats().denied).to.equal(1);
      });
    }

    it('refuses a body on GET, bad base64 and a body over 8 MiB', async () => {
      const g = guard();
      const url = net.url('api.example.test', '/echo');
      expect(await rejection(g.fetch(url, { body: 'x' }))).to.be.instanceOf(InvalidArgumentError);
      expect(await rejection(g.fetch(url, { method: 'POST', body: '%%%', bodyEncoding: 'base64' }))).to.be.instanceOf(InvalidArgumentError);
      const big = await rejection(g.fetch(url, { method: 'POST', body: 'x'.repeat(8 * 1024 * 1024 + 1) }));
      expect(big).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkRequest' });
      expect(net.app.connections).to.equal(0);
    });
  });

  describe('address policy', () => {
    const loopbackForms = [
      'http://127.0.0.1:PORT/',
      'http://127.1:PORT/',
      'http://2130706433:PORT/',
      'http://0x7f.1:PORT/',
      'http://0x7f000001:PORT/',
      'http://0177.0.0.1:PORT/',
      'http://0177.1:PORT/',
      'http://127.000.000.001:PORT/',
      'http://[::ffff:127.0.0.1]:PORT/',
      'http://[::ffff:7f00:1]:PORT/',
      'http://[::127.0.0.1]:PORT/',
      'http://0.0.0.0:PORT/',
      'http://0:PORT/',
      'http://[::]:PORT/',
      'http://localhost:PORT/',
      'http://rebound.example.test:PORT/',
      'http://mixed.example.test:PORT/',
    ];
    for (const form of loopbackForms) {
      it(`refuses loopback written as ${form.replace(':PORT', '')}`, async () => {
        const e = await denied(guard().fetch(form.replace('PORT', String(net.port))));
        expect(e.requiredPermission).to.match(/only the host can allow it/);
      });
    }

    it('refuses ::1 when the host has not allowed it', async () => {
      for (const host of ['[::1]', '[0:0:0:0:0:0:0:1]', 'api.example.test']) {
        await denied(guard({ allowAddress: [] }).fetch(net.url(host)));
      }
    });

    const resolvedTo = [
      '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '240.0.0.1', '192.0.2.1', '198.18.0.1', 'fd00::1', 'fc00::1', 'fe80::1',
      'fe80::1%eth0', 'ff02::1', '::', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::a9fe:a9fe', '64:ff9b::a9fe:a9fe',
      '64:ff9b::7f00:1', '2002:7f00:1::1', '2002:c0a8:101::', '2001:db8::1', '2001:0:4136:e378::1', 'not-an-ip',
    ];
    for (const address of resolvedTo) {
      it(`refuses a name that resolves to ${address}`, async () => {
        net.dns.set('inside.example.test', () => [address]);
        await denied(guard().fetch(net.url('inside.example.test')));
      });
    }

    it('allows what the host lists in allowAddress (the canary is reachable, so the denials above mean something)', async () => {
      for (const allow of ['127.0.0.1', '127.0.0.0/8', '::ffff:127.0.0.1']) {
        const res = await guard({ allowAddress: [allow] }).fetch(net.url('localhost', '/'));
        expect(res.body).to.equal('canary reached');
      }
      expect(net.canary.requests).to.equal(3);
    });

    it('rejects a malformed allowAddress entry', () => {
      for (const bad of ['10.0.0.0/33', 'example.com', '::1/129', '10.0.0.1/']) {
        expect(() => guard({ allowAddress: [bad] })).to.throw(InvalidArgumentError);
      }
    });

    it('connects to the address it checked, not to what DNS says next (rebinding)', async () => {
      let calls = 0;
      net.dns.set('rebind.example.test', () => (calls++ === 0 ? ['::1'] : ['127.0.0.1']));
      const g = guard();
      const res = await g.fetch(net.url('rebind.example.test', '/hello'));
      expect(res.body).to.equal(`hello from rebind.example.test:${net.port}`);
      expect(calls).to.equal(1);
      expect(net.canary.connections).to.equal(0);
      net.app.connections = 0;
      await denied(g.fetch(net.url('rebind.example.test', '/hello')));
    });
  });

  it('keeps the hostname for TLS (SNI, certificate check) while connecting to the pinned address', async function () {
    const pem = selfSigned();
    if (!pem) return this.skip();
    const names: string[] = [];
    const server = https.createServer(
      { ...pem, SNICallback: (name, done) => (names.push(name), done(null, createSecureContext(pem))) },
      (_req, res) => res.end('secure'),
    );
    server.listen(0, '::1');
    await once(server, 'listening');
    try {
      const url = `https://api.example.test:${(server.address() as AddressInfo).port}/`;
      const e = (await rejection(guard().fetch(url))) as NodeJS.ErrnoException;
      expect(e.code, 'the self-signed certificate is refused').to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(names).to.deep.equal(['api.example.test']);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  describe('redirects', () => {
    const redirect = (to: string, status = 302) => net.url('api.example.test', `/redirect?status=${status}&to=${encodeURIComponent(to)}`);

    it('follows a redirect by hand and reports it', async () => {
      const g = guard();
      const res = await g.fetch(redirect('/hello'));
      expect(res).to.include({ status: 200, redirected: true, url: net.url('api.example.test', '/hello') });
      expect(g.stats().requestCount).to.equal(2);
    });

    for (const to of ['http://127.0.0.1:PORT/', 'http://localhost:PORT/', 'http://2130706433:PORT/', 'http://[::ffff:127.0.0.1]:PORT/']) {
      it(`refuses a redirect to blocked loopback ${to.replace(':PORT', '')}`, async () => {
        const target = to.replace('PORT', String(net.port));
        const g = guard();
        const e = await rejection(g.fetch(redirect(target)));
        expect(e).to.be.instanceOf(PermissionDeniedError);
        expect(net.canary.connections).to.equal(0);
        expect(g.stats()).to.include({ requestCount: 1, denied: 1 });
      });
    }

    it('re-checks the allowlist on every hop', async () => {
      const g = guard({ allows: (u) => u.hostname === 'api.example.test' });
      const e = (await rejection(g.fetch(redirect(net.url('other.example.test', '/x'))))) as PermissionDeniedError;
      expect(e).to.be.instanceOf(PermissionDeniedError).and.include({ target: net.url('other.example.test', '/x') });
      expect(net.dnsCalls).to.deep.equal(['api.example.test']);
      for (const to of ['file:///etc/passwd', `http://u:p@api.example.test:${net.port}/`]) {
        expect(await rejection(g.fetch(redirect(to)))).to.be.instanceOf(PermissionDeniedError);
      }
      expect(net.canary.connections).to.equal(0);
    });

    it('turns 303 into a GET without body, keeps method and body on 307', async () => {
      const g = guard();
      const init = { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } };
      const see = JSON.parse((await g.fetch(redirect('/echo', 303), init)).body);
      expect(see).to.include({ method: 'GET', body: '' });
      expect(see.headers).to.not.have.property('content-type');
      const keep = JSON.parse((await g.fetch(redirect('/echo', 307), init)).body);
      expect(keep).to.include({ method: 'POST', body: 'payload' });
    });

    it('strips Authorization and Cookie on a cross-origin redirect only', async () => {
      const g = guard();
      const headers = { authorization: 'Bearer secret', cookie: 'sid=1', 'x-keep': 'yes' };
      const same = JSON.parse((await g.fetch(redirect('/echo'), { headers })).body).headers;
      expect(same).to.include({ authorization: 'Bearer secret', cookie: 'sid=1', 'x-keep': 'yes' });
      const cross = JSON.parse((await g.fetch(redirect(net.url('other.example.test', '/echo')), { headers })).body).headers;
      expect(cross).to.include({ 'x-keep': 'yes', host: `other.example.test:${net.port}` });
      expect(cross).to.not.have.any.keys('authorization', 'cookie');
    });

    it('stops after maxRedirects', async () => {
      const g = guard({ maxRedirects: 3 });
      const e = await rejection(g.fetch(net.url('api.example.test', '/loop')));
      expect(e).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkRedirects' });
      expect(g.stats().requestCount).to.equal(4);
    });
  });
});
