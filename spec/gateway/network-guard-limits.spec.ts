import { expect } from 'chai';
import { PermissionDeniedError, PluginStateError, ResourceLimitError } from '../../lib/errors.js';
import { NetworkGuard, type NetworkGuardOptions } from '../../lib/gateway/network-guard.js';
import { guardedNetworkHooks } from '../helpers/loopback-only.js';
import { startNetFixture, type NetFixture } from '../helpers/net-fixture.js';
import { rejection } from '../helpers/make-plugin.js';

const MiB = 1024 * 1024;

/** Runs `work` while sampling Buffer memory; returns how far it rose above the starting point. */
async function peakBufferGrowth(work: () => Promise<unknown>): Promise<number> {
  const start = process.memoryUsage().arrayBuffers;
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 1);
  try {
    await work();
  } finally {
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }
  return peak - start;
}

describe('NetworkGuard limits', function () {
  // Compressing the bombs and the throttled transfers take seconds by design.
  this.timeout(30_000);
  let net: NetFixture;
  const guards: NetworkGuard[] = [];

  before(async () => {
    net = await startNetFixture();
    // The fixture compresses its bombs on first use; do that outside the memory measurements.
    await guard({ maxDecodedBytes: 1 }).fetch(net.url('api.example.test', '/bomb?enc=gzip')).catch(() => undefined);
  });
  after(async () => {
    await net.close();
  });
  guardedNetworkHooks(() => net.reset(), guards);

  function guard(over: Partial<NetworkGuardOptions> = {}): NetworkGuard {
    const g = new NetworkGuard({
      pluginId: 'net-spec',
      allows: () => true,
      needed: (url) => `network:${url.hostname}`,
      allowAddress: ['::1'],
      resolve: (host) => net.resolve(host),
      ...over,
    });
    guards.push(g);
    return g;
  }
  const api = (path: string) => net.url('api.example.test', path);

  describe('response size', () => {
    for (const chunked of [false, true]) {
      it(`aborts a body over maxResponseBytes (${chunked ? 'chunked' : 'with Content-Length'})`, async () => {
        const e = await rejection(guard({ maxResponseBytes: MiB }).fetch(api(`/bytes?n=${2 * MiB}${chunked ? '&chunked=1' : ''}`)));
        expect(e).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkResponse', pluginId: 'net-spec' });
      });
    }

    it('returns a body right at the limit', async () => {
      const res = await guard({ maxResponseBytes: 100_000 }).fetch(api('/bytes?n=100000&chunked=1'));
      expect(res.body.length).to.equal(100_000);
    });

    for (const enc of ['gzip', 'gzip, gzip', 'br']) {
      it(`stops a ${enc} bomb (100 MiB of zeros) at maxDecodedBytes without holding it in memory`, async () => {
        let error: Error | undefined;
        const growth = await peakBufferGrowth(async () => {
          error = await rejection(guard({ maxDecodedBytes: 4 * MiB }).fetch(api(`/bomb?enc=${encodeURIComponent(enc)}`)));
        });
        expect(error).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkResponse' });
        expect(growth, 'Buffer memory growth').to.be.below(24 * MiB);
      });
    }

    it('stops a gzip bomb under the default 32 MiB decoded limit', async () => {
      let error: Error | undefined;
      const growth = await peakBufferGrowth(async () => {
        error = await rejection(guard().fetch(api('/bomb?enc=gzip')));
      });
      expect(error).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkResponse' });
      expect(growth, 'Buffer memory growth').to.be.below(48 * MiB);
    });
  });

  describe('bandwidth (kbps)', () => {
    it('throttles a download: 20 KB at 80 kbps takes at least ~1.5 s', async () => {
      const started = performance.now();
      const res = await guard({ kbps: 80 }).fetch(api('/bytes?n=20000'));
      expect(res.body.length).to.equal(20_000);
      expect(performance.now() - started).to.be.at.least(1500);
    });

    it('throttles an upload the same way', async () => {
      const started = performance.now();
      const res = await guard({ kbps: 80 }).fetch(api('/'), { method: 'POST', body: 'u'.repeat(20_000) });
      expect(res.status).to.equal(200);
      expect(net.app.requests[0].body.length).to.equal(20_000);
      expect(performance.now() - started).to.be.at.least(1500);
    });

    it("shares the budget across the plugin's concurrent fetches", async () => {
      const g = guard({ kbps: 80 });
      const started = performance.now();
      await Promise.all([g.fetch(api('/bytes?n=10000')), g.fetch(api('/bytes?n=10000'))]);
      expect(performance.now() - started).to.be.at.least(1500);
    });
  });

  describe('deadline and close', () => {
    it('aborts a fetch that runs past timeoutMs with a networkTime limit error', async () => {
      const started = performance.now();
      const e = await rejection(guard({ timeoutMs: 300 }).fetch(api('/hang')));
      expect(e).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkTime' });
      expect(performance.now() - started).to.be.below(5000);
    });

    it('counts time spent waiting for bandwidth against the deadline', async () => {
      const e = await rejection(guard({ timeoutMs: 500, kbps: 8 }).fetch(api('/bytes?n=20000')));
      expect(e).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'networkTime' });
    });

    it('close() aborts fetches in flight and refuses new ones', async () => {
      const g = guard();
      const pending = rejection(g.fetch(api('/hang')));
      while (net.app.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      g.close();
      expect(await pending).to.be.instanceOf(PluginStateError);
      expect(await rejection(g.fetch(api('/hello')))).to.be.instanceOf(PluginStateError);
    });
  });

  it('stats() counts requests per hop, bytes both ways and denials', async () => {
    const g = guard({ allows: (u) => u.hostname === 'api.example.test' });
    await g.fetch(api(`/redirect?to=${encodeURIComponent('/bytes?n=5000')}`));
    await g.fetch(api('/'), { method: 'POST', body: 'b'.repeat(3000) });
    expect(await rejection(g.fetch(net.url('other.example.test')))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejection(g.fetch('http://127.0.0.1/'))).to.be.instanceOf(PermissionDeniedError);
    const stats = g.stats();
    expect(stats).to.include({ requestCount: 3, denied: 2 });
    expect(stats.bytesIn).to.be.within(5000, 7000);
    expect(stats.bytesOut).to.be.within(3000, 4000);
  });
});
