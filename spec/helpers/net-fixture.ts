import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { ResolvedAddress } from '../../lib/gateway/network-guard.js';

/** A request as the app server saw it. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Two loopback servers on one port and a fake DNS:
 * - the app on [::1]:port, which specs allow (`allowAddress: ['::1']`);
 * - the canary on 127.0.0.1:port, which no denial spec may reach.
 * Fake names: api/other.example.test → ::1; localhost, rebound.example.test → 127.0.0.1;
 * mixed.example.test → both. Anything else is ENOTFOUND unless a spec sets it with `dns`.
 */
export interface NetFixture {
  port: number;
  app: { requests: SeenRequest[]; connections: number };
  canary: { requests: number; connections: number };
  /** Names the fake DNS was asked for, in order. */
  dnsCalls: string[];
  /** Extra fake DNS entries for one spec (cleared by reset). */
  dns: Map<string, () => string[]>;
  resolve(hostname: string): Promise<ResolvedAddress[]>;
  url(host: string, path?: string): string;
  reset(): void;
  close(): Promise<void>;
}

const BASE_DNS: Record<string, string[]> = {
  'api.example.test': ['::1'],
  'other.example.test': ['::1'],
  localhost: ['127.0.0.1'],
  'rebound.example.test': ['127.0.0.1'],
  'mixed.example.test': ['::1', '127.0.0.1'],
};

const MiB = 1024 * 1024;
let bombs: Promise<Record<string, Buffer>> | undefined;

/** 100 MiB of zeros, compressed: gzip (~100 KB), gzip twice (~300 B), brotli (~200 B). */
function compressedBombs(): Promise<Record<string, Buffer>> {
  bombs ??= (async () => {
    const gzip = zlib.createGzip({ level: 9 });
    const parts: Buffer[] = [];
    gzip.on('data', (c: Buffer) => parts.push(c));
    const zeros = Buffer.alloc(MiB);
    for (let i = 0; i < 100; i++) if (!gzip.write(zeros)) await once(gzip, 'drain');
    gzip.end();
    await once(gzip, 'end');
    const single = Buffer.concat(parts);
    const brotli = zlib.createBrotliCompress();
    const brParts: Buffer[] = [];
    brotli.on('data', (c: Buffer) => brParts.push(c));
    for (let i = 0; i < 100; i++) if (!brotli.write(zeros)) await once(brotli, 'drain');
    brotli.end();
    await once(brotli, 'end');
    return { gzip: single, 'gzip, gzip': await promisify(zlib.gzip)(single), br: Buffer.concat(brParts) };
  })();
  return bombs;
}

async function app(req: IncomingMessage, res: ServerResponse, seen: SeenRequest[]): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
  const url = new URL(req.url ?? '/', 'http://app');
  const q = (name: string) => url.searchParams.get(name) ?? '';
  switch (url.pathname) {
    case '/echo':
      res.setHeader('content-type', 'application/json');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      return void res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    case '/redirect':
      res.writeHead(Number(q('status') || 302), { location: q('to') });
      return void res.end('moved');
    case '/loop':
      res.writeHead(302, { location: '/loop' });
      return void res.end();
    case '/bytes': {
      const n = Number(q('n'));
      if (!q('chunked')) res.setHeader('content-length', n);
      for (let sent = 0; sent < n; sent += 16 * 1024) {
        if (!res.write(Buffer.alloc(Math.min(16 * 1024, n - sent), 'a'))) await once(res, 'drain');
      }
      return void res.end();
    }
    case '/gzip':
      res.writeHead(200, { 'content-encoding': q('enc') || 'gzip' });
      return void res.end(q('enc') === 'br' ? zlib.brotliCompressSync('hello, decoded') : zlib.gzipSync('hello, decoded'));
    case '/bomb': {
      const enc = q('enc');
      res.writeHead(200, { 'content-encoding': enc, 'content-type': 'application/octet-stream' });
      return void res.end((await compressedBombs())[enc]);
    }
    case '/hang':
      return; // never answers
    default:
      res.setHeader('x-spec', 'yes');
      return void res.end(`hello from ${req.headers.host}`);
  }
}

/** Starts the fixture; retries if 127.0.0.1 already has the port the app got on ::1. */
export async function startNetFixture(): Promise<NetFixture> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryStart();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 10) throw e;
    }
  }
}

async function tryStart(): Promise<NetFixture> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const track = (counter: { connections: number }) => (socket: Socket) => {
    counter.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const fixture = {
    app: { requests: seen, connections: 0 },
    canary: { requests: 0, connections: 0 },
    dnsCalls: [] as string[],
    dns: new Map<string, () => string[]>(),
  };
  const appServer = http.createServer((req, res) => {
    app(req, res, seen).catch((e: unknown) => res.destroy(e as Error));
  });
  const canaryServer = http.createServer((_req, res) => {
    fixture.canary.requests++;
    res.end('canary reached');
  });
  appServer.on('connection', track(fixture.app));
  canaryServer.on('connection', track(fixture.canary));
  appServer.listen(0, '::1');
  await once(appServer, 'listening');
  const port = (appServer.address() as AddressInfo).port;
  try {
    canaryServer.listen(port, '127.0.0.1');
    await once(canaryServer, 'listening');
  } catch (e) {
    appServer.close();
    throw e;
  }

  return {
    ...fixture,
    port,
    async resolve(hostname) {
      fixture.dnsCalls.push(hostname);
      const addresses = fixture.dns.get(hostname)?.() ?? BASE_DNS[hostname];
      if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    },
    url: (host, path = '/') => `http://${host}:${port}${path}`,
    reset() {
      seen.length = 0;
      fixture.app.connections = 0;
      fixture.canary.requests = 0;
      fixture.canary.connections = 0;
      fixture.dnsCalls.length = 0;
      fixture.dns.clear();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => appServer.close(r)), new Promise((r) => canaryServer.close(r))]);
    },
  };
}
