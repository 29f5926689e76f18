import { lookup as dnsLookup } from 'node:dns/promises';
import { once } from 'node:events';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { InvalidArgumentError, PermissionDeniedError, PluginStateError, ResourceLimitError } from '../errors.js';
import { prepareRequest, type FetchRequest, type FetchResponse, type PreparedRequest } from './fetch-request.js';
import { AddressPolicy, type AddressKind } from './ip-policy.js';
import { TokenBucket } from './token-bucket.js';

export type { FetchRequest, FetchResponse } from './fetch-request.js';

/** One resolved address. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface NetworkGuardOptions {
  pluginId: string;
  /** The plugin's allowlist check on the (normalised) URL, from its manifest permissions. */
  allows(url: URL): boolean;
  /** How to phrase the permission that would allow this URL (for PermissionDeniedError). */
  needed(url: URL): string;
  /** Addresses the host explicitly allows even though they are loopback/private/link-local (exact IPs or CIDRs). Default none. */
  allowAddress?: string[];
  /** DNS resolution; default node:dns/promises lookup(host, { all: true, verbatim: true }). Injectable for specs. */
  resolve?(hostname: string): Promise<ResolvedAddress[]>;
  /** Largest response body as received on the wire, in bytes; default 8 MiB. */
  maxResponseBytes?: number;
  /** Largest response body after gzip/deflate/br decoding, in bytes; default 32 MiB. */
  maxDecodedBytes?: number;
  /** Redirects followed before giving up; default 5. */
  maxRedirects?: number;
  /** Deadline for the whole fetch, redirects included; default 10 s. */
  timeoutMs?: number;
  /** maxNetworkKbps: token bucket over bytes in and out (kilobits per second; 0/undefined = unlimited). */
  kbps?: number;
}

const MiB = 1024 * 1024;
/** The limits a guard uses where its options say nothing. */
export const NETWORK_GUARD_DEFAULTS = { maxResponseBytes: 8 * MiB, maxDecodedBytes: 32 * MiB, maxRedirects: 5, timeoutMs: 10_000 } as const;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const BODY_HEADERS = ['content-type', 'content-encoding', 'content-language', 'content-location'];
const CREDENTIAL_HEADERS = ['authorization', 'cookie'];
const WRITE_CHUNK = 16 * 1024;
const DECODERS: Record<string, () => Transform> = {
  // Sync flush at the end tolerates servers that cut the stream short, as browsers do.
  gzip: () => zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  'x-gzip': () => zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  deflate: () => zlib.createInflate({ finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  br: () => zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH }),
};

/**
 * `ctx.net.fetch` for one plugin. Every request, and every redirect hop, passes the plugin's
 * allowlist and an address policy (no loopback, private, link-local, … unless the host allows
 * the address); the connection goes to the very address that was checked, so DNS rebinding
 * cannot swap it. Bodies are capped raw and decoded, the whole fetch has a deadline, and an
 * optional kbps budget is shared by all of the plugin's fetches.
 *
 * @example
 * const guard = new NetworkGuard({
 *   pluginId: 'weather',
 *   allows: (url) => url.hostname === 'api.example.com',
 *   needed: (url) => `{ "type": "network", "scope": ["${url.hostname}"] }`,
 *   kbps: 1024,
 * });
 * const res = await guard.fetch('https://api.example.com/today', { headers: { accept: 'application/json' } });
 * guard.close();
 */
export class NetworkGuard {
  private readonly policy: AddressPolicy;
  private readonly bucket?: TokenBucket;
  private readonly limits: { maxResponseBytes: number; maxDecodedBytes: number; maxRedirects: number; timeoutMs: number };
  private readonly inFlight = new Set<AbortController>();
  private readonly counts = { bytesIn: 0, bytesOut: 0, requestCount: 0, denied: 0 };
  private closed = false;

  constructor(private readonly options: NetworkGuardOptions) {
    this.policy = new AddressPolicy(options.allowAddress ?? []);
    this.bucket = TokenBucket.fromKbps(options.kbps);
    this.limits = {
      maxResponseBytes: options.maxResponseBytes ?? NETWORK_GUARD_DEFAULTS.maxResponseBytes,
      maxDecodedBytes: options.maxDecodedBytes ?? NETWORK_GUARD_DEFAULTS.maxDecodedBytes,
      maxRedirects: options.maxRedirects ?? NETWORK_GUARD_DEFAULTS.maxRedirects,
      timeoutMs: options.timeoutMs ?? NETWORK_GUARD_DEFAULTS.timeoutMs,
    };
  }

  /** Fetches `url` for the plugin, following redirects by hand, each hop re-checked. */
  async fetch(url: string, init: FetchRequest = {}): Promise<FetchResponse> {
    if (this.closed) throw this.closedError();
    let target: URL;
    let request: PreparedRequest;
    try {
      target = this.permit(url, String(url));
      request = prepareRequest(this.options.pluginId, init);
      if (!this.options.allows(new URL(target.href))) throw this.denial(url, this.options.needed(new URL(target.href)));
    } catch (e) {
      this.counts.denied++;
      throw e;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(this.timeoutError(url)), this.limits.timeoutMs);
    this.inFlight.add(controller);
    try {
      return await this.follow(url, target, request, controller.signal);
    } catch (e) {
      // Whatever the abort surfaced as (AbortError, ECONNRESET, …), report why it was aborted.
      throw controller.signal.aborted ? controller.signal.reason : e;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  /** Totals since the guard was made: requests sent (each hop), bytes in and out (approximate headers included), refusals. */
  stats(): { bytesIn: number; bytesOut: number; requestCount: number; denied: number } {
    return { ...this.counts };
  }

  /** Aborts every fetch in flight and refuses new ones (the plugin stopped). */
  close(): void {
    this.closed = true;
    for (const controller of this.inFlight) controller.abort(this.closedError());
    this.inFlight.clear();
  }

  private async follow(given: string, first: URL, initial: PreparedRequest, signal: AbortSignal): Promise<FetchResponse> {
    let url = first;
    let request = initial;
    for (let hop = 0; ; hop++) {
      const addresses = await this.pin(url, hop === 0 ? given : url.href, signal);
      const res = await this.send(url, request, addresses, signal);
      const headBytes = res.rawHeaders.reduce((n, h) => n + h.length + 2, 15 + (res.statusMessage ?? '').length);
      this.counts.bytesIn += headBytes;
      await this.bucket?.take(headBytes, signal);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(status) || location === undefined) {
        const { body, decoded } = await this.readBody(res, request, signal);
        return {
          status,
          statusText: res.statusMessage ?? '',
          headers: responseHeaders(res, decoded),
          body: body.toString(request.responseEncoding),
          url: url.href,
          redirected: hop > 0,
        };
      }
      res.destroy();
      if (hop >= this.limits.maxRedirects) {
        throw new ResourceLimitError(
          this.options.pluginId,
          'networkRedirects',
          `Plugin '${this.options.pluginId}' fetch of '${given}' was redirected more than ${this.limits.maxRedirects} times; it was stopped.`,
        );
      }
      const next = this.permitRedirect(location, url);
      request = redirected(request, status, url, next);
      url = next;
    }
  }

  /** Parses the URL and refuses user info and schemes other than http(s), before anything else is looked at. */
  private permit(raw: string, target: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new InvalidArgumentError(`net.fetch: '${String(raw)}' is not an absolute URL.`, { pluginId: this.options.pluginId });
    }
    if (url.username !== '' || url.password !== '') {
      throw this.denial(target, '(nothing: URLs with user info are refused; send credentials in an Authorization header)');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw this.denial(target, `(nothing: only http: and https: URLs can be fetched, not ${url.protocol})`);
    }
    url.hash = '';
    return url;
  }

  private permitRedirect(location: string, from: URL): URL {
    try {
      let next: URL;
      try {
        next = new URL(location, from);
      } catch {
        throw new InvalidArgumentError(`net.fetch: '${from.href}' redirected to an invalid URL '${location}'.`, {
          pluginId: this.options.pluginId,
        });
      }
      next = this.permit(next.href, next.href);
      if (!this.options.allows(new URL(next.href))) throw this.denial(next.href, this.options.needed(new URL(next.href)));
      return next;
    } catch (e) {
      this.counts.denied++;
      throw e;
    }
  }

  /** Resolves the host and checks every address; returns the addresses the connection may use. */
  private async pin(url: URL, target: string, signal: AbortSignal): Promise<ResolvedAddress[]> {
    const host = bareHost(url.hostname);
    const family = isIP(host);
    const resolved: ResolvedAddress[] = family ? [{ address: host, family: family as 4 | 6 }] : await this.resolve(host, signal);
    for (const { address } of resolved) {
      const verdict = this.policy.check(address);
      if (!verdict.allowed) {
        this.counts.denied++;
        throw this.denial(target, addressNeeded(host, address, verdict.kind, verdict.embedded));
      }
    }
    return resolved.map(({ address }) => ({ address, family: isIP(address) as 4 | 6 }));
  }

  private async resolve(host: string, signal: AbortSignal): Promise<ResolvedAddress[]> {
    const resolve = this.options.resolve ?? defaultResolve;
    const result = await untilAborted(resolve(host), signal);
    if (!Array.isArray(result) || result.length === 0) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
    }
    return result;
  }

  private async send(url: URL, request: PreparedRequest, addresses: ResolvedAddress[], signal: AbortSignal): Promise<IncomingMessage> {
    const secure = url.protocol === 'https:';
    const host = bareHost(url.hostname);
    const headers: Record<string, string> = { ...request.headers, host: url.host };
    headers['accept-encoding'] ??= 'gzip, deflate, br';
    if (request.body) headers['content-length'] = String(request.body.length);
    const path = url.pathname + url.search;
    const headBytes = Object.entries(headers).reduce(
      (n, [k, v]) => n + k.length + v.length + 4,
      request.method.length + path.length + 13,
    );
    await this.bucket?.take(headBytes, signal);
    this.counts.bytesOut += headBytes;
    this.counts.requestCount++;
    const options: https.RequestOptions = {
      protocol: url.protocol,
      hostname: host,
      port: url.port || (secure ? 443 : 80),
      path,
      method: request.method,
      headers,
      setHost: false,
      // A fresh agent per request: no keep-alive socket is shared between plugins or hops.
      agent: false,
      lookup: pinnedLookup(addresses),
      signal,
      // The certificate is checked against the name, while the socket goes to the pinned address.
      ...(secure && !isIP(host) ? { servername: host } : {}),
    };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = (secure ? https : http).request(options);
      req.once('response', resolve).on('error', reject);
      this.writeBody(req, request.body, signal).catch((e: unknown) => req.destroy(e as Error));
    });
  }

  private async writeBody(req: ClientRequest, body: Buffer | undefined, signal: AbortSignal): Promise<void> {
    for (let at = 0; body && at < body.length; at += WRITE_CHUNK) {
      const piece = body.subarray(at, at + WRITE_CHUNK);
      await this.bucket?.take(piece.length, signal);
      this.counts.bytesOut += piece.length;
      if (!req.write(piece)) await once(req, 'drain', { signal });
    }
    req.end();
  }

  /** Reads the body through the raw cap and the rate limit, then the decoders, then the decoded cap. */
  private async readBody(res: IncomingMessage, request: PreparedRequest, signal: AbortSignal): Promise<{ body: Buffer; decoded: boolean }> {
    const { pluginId } = this.options;
    const { maxResponseBytes, maxDecodedBytes } = this.limits;
    const overRaw = () =>
      new ResourceLimitError(pluginId, 'networkResponse', `Plugin '${pluginId}' received a response body over the limit of ${maxResponseBytes} bytes; it was aborted.`);
    if (Number(res.headers['content-length']) > maxResponseBytes) {
      res.destroy();
      throw overRaw();
    }
    const bodiless = request.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
    const decoders = bodiless ? [] : decodersFor(res.headers['content-encoding']);

    let raw = 0;
    const { bucket, counts } = this;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        raw += chunk.length;
        counts.bytesIn += chunk.length;
        if (raw > maxResponseBytes) return done(overRaw());
        // Holding the chunk until it is paid for stops reading from the socket (backpressure).
        if (!bucket) return done(null, chunk);
        bucket.take(chunk.length, signal).then(() => done(null, chunk), done);
      },
    });
    let size = 0;
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > maxDecodedBytes) {
          return done(
            new ResourceLimitError(pluginId, 'networkResponse', `Plugin '${pluginId}' received a response that decodes to over ${maxDecodedBytes} bytes; it was aborted.`),
          );
        }
        chunks.push(chunk);
        done();
      },
    });
    await pipeline([res, meter, ...(decoders ?? []), sink], { signal });
    return { body: Buffer.concat(chunks), decoded: (decoders?.length ?? 0) > 0 };
  }

  private denial(target: string, needed: string): PermissionDeniedError {
    return new PermissionDeniedError(this.options.pluginId, 'net.fetch', target, needed);
  }

  private timeoutError(url: string): ResourceLimitError {
    const { pluginId } = this.options;
    return new ResourceLimitError(
      pluginId,
      'networkTime',
      `Plugin '${pluginId}' fetch of '${url}' did not finish within ${this.limits.timeoutMs} ms (redirects included); it was aborted.`,
    );
  }

  private closedError(): PluginStateError {
    return new PluginStateError(this.options.pluginId, 'closed', 'net.fetch for');
  }
}

async function defaultResolve(hostname: string): Promise<ResolvedAddress[]> {
  const all = await dnsLookup(hostname, { all: true, verbatim: true });
  return all.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}

function bareHost(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

function addressNeeded(host: string, address: string, kind: AddressKind, embedded?: string): string {
  const what = `${embedded ? `${address} (carrying ${embedded})` : address}, a ${kind} address`;
  const subject = host === address ? what : `${host} resolves to ${what}`;
  return `(nothing: ${subject}; only the host can allow it, through its allowAddress option)`;
}

/** A `lookup` for http.request that answers with the checked addresses only. */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (hostname, options, callback) => {
    const wanted = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const usable = addresses.filter((a) => !wanted || a.family === wanted);
    if (usable.length === 0) {
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
    } else if (options.all) {
      callback(null, usable);
    } else {
      callback(null, usable[0].address, usable[0].family);
    }
  };
}

/** The request for the next hop: 303 (and 301/302 after POST) become a bodiless GET; credentials stay on their origin. */
function redirected(request: PreparedRequest, status: number, from: URL, to: URL): PreparedRequest {
  const headers = { ...request.headers };
  let { method, body } = request;
  if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
    method = 'GET';
    body = undefined;
    for (const name of BODY_HEADERS) delete headers[name];
  }
  if (from.origin !== to.origin) for (const name of CREDENTIAL_HEADERS) delete headers[name];
  return { ...request, method, headers, body };
}

/** Decoders for a Content-Encoding, innermost last; `undefined` when one is unknown (the body is then passed on as is). */
function decodersFor(header: string | undefined): Transform[] | undefined {
  const codings = (header ?? '')
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length > 2 || codings.some((c) => !Object.hasOwn(DECODERS, c))) return undefined;
  return codings.reverse().map((c) => DECODERS[c]());
}

function responseHeaders(res: IncomingMessage, decoded: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    // The body handed over is decoded, so its original encoding and length no longer describe it.
    if (decoded && (name === 'content-encoding' || name === 'content-length')) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
