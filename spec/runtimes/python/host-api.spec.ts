import { expect } from 'chai';
import * as Comlink from 'comlink';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { PermissionDeniedError } from '../../../lib/errors.js';
import { portEndpoint } from '../../../lib/runtimes/comlink-endpoint.js';
import type { GatewayPort } from '../../../lib/runtimes/protocol.js';
import { exposeHostApi } from '../../../lib/runtimes/python/host-api.js';
import type { PythonHostApi } from '../../../lib/runtimes/python/python-protocol.js';

/** Answers `echo` requests with their data, denies `fs.readFile`, records everything. */
class FakeGateway implements GatewayPort {
  readonly requests: unknown[] = [];
  async request(request: unknown): Promise<unknown> {
    this.requests.push(request);
    const r = request as { op: string; data?: unknown };
    if (r.op === 'fs.readFile') throw new PermissionDeniedError('py', 'read', '/etc/passwd', 'filesystem:read');
    return { echoed: r.data ?? null };
  }
}

/** Sends one raw comlink-shaped message and returns the reply, or 'no reply' after a few turns. */
function raw(port: MessagePort, message: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve) => {
    const id = String(Math.random());
    const timer = setTimeout(() => {
      port.off('message', onMessage);
      resolve('no reply');
    }, 100);
    const onMessage = (data: { id?: string }) => {
      if (data?.id !== id) return;
      clearTimeout(timer);
      port.off('message', onMessage);
      resolve(data);
    };
    port.on('message', onMessage);
    port.postMessage({ id, ...message });
  });
}

describe('Python host API (comlink)', () => {
  let channel: MessageChannel;
  let gateway: FakeGateway;
  let api: ReturnType<typeof exposeHostApi>;

  beforeEach(() => {
    channel = new MessageChannel();
    gateway = new FakeGateway();
    api = exposeHostApi(channel.port1, { pluginId: 'py', gateway, maxPayloadBytes: 1024, maxPending: 4, onBytes: () => undefined });
  });
  afterEach(() => {
    api.close();
    channel.port2.close();
  });

  it('answers a gateway request as JSON text, and a gateway error as {ok: false, error}', async () => {
    const host = Comlink.wrap<PythonHostApi>(portEndpoint(channel.port2));
    expect(JSON.parse(await host.request(JSON.stringify({ op: 'emit', topic: 'a.b', data: 1 })))).to.deep.equal({ ok: true, value: { echoed: 1 } });
    const denied = JSON.parse(await host.request(JSON.stringify({ op: 'fs.readFile', path: '/etc/passwd' })));
    expect(denied.ok).to.equal(false);
    expect(denied.error.name).to.equal('PermissionDeniedError');
    expect(denied.error.code).to.equal(PermissionDeniedError.code);
  });

  it('refuses requests over the payload cap or nested too deep, before the gateway sees them', async () => {
    const host = Comlink.wrap<PythonHostApi>(portEndpoint(channel.port2));
    const big = JSON.parse(await host.request(JSON.stringify({ op: 'log', level: 'info', message: 'x'.repeat(2000) })));
    expect(big.error.name).to.equal('ResourceLimitError');
    const deep = JSON.parse(await host.request('['.repeat(200) + ']'.repeat(200)));
    expect(deep.error.name).to.equal('ResourceLimitError');
    expect(gateway.requests).to.deep.equal([]);
  });

  it('hands the gateway null-prototype copies, so __proto__ keys pollute nothing', async () => {
    const host = Comlink.wrap<PythonHostApi>(portEndpoint(channel.port2));
    await host.request('{"op":"emit","topic":"a.b","data":{"__proto__":{"polluted":true}}}');
    const request = gateway.requests[0] as { data: object };
    expect(Object.getPrototypeOf(request)).to.equal(null);
    expect(({} as { polluted?: boolean }).polluted).to.equal(undefined);
  });

  // comlink's expose walks any property path a message names: a compromised worker could
  // read, overwrite or construct through the exposed object. Only APPLY of request/post passes.
  it('attack: GET, SET, CONSTRUCT and APPLY on other paths are dropped unanswered', async () => {
    const port = channel.port2;
    expect(await raw(port, { type: 'GET', path: ['request', 'constructor'] })).to.equal('no reply');
    expect(
      await raw(port, { type: 'SET', path: ['request', 'constructor', 'prototype', 'polluted'], value: { type: 'RAW', value: 'yes' } }),
    ).to.equal('no reply');
    expect(await raw(port, { type: 'APPLY', path: ['request', 'constructor'], argumentList: [{ type: 'RAW', value: 'return process' }] })).to.equal('no reply');
    expect(await raw(port, { type: 'CONSTRUCT', path: ['request'], argumentList: [] })).to.equal('no reply');
    expect(await raw(port, { type: 'APPLY', path: ['request'], argumentList: [{ type: 'HANDLER', name: 'proxy', value: {} }] })).to.equal('no reply');
    expect(await raw(port, { type: 'ENDPOINT', path: [] })).to.equal('no reply');
    expect((Function.prototype as unknown as { polluted?: string }).polluted).to.equal(undefined);
    // The door still works after the attempts.
    const host = Comlink.wrap<PythonHostApi>(portEndpoint(port));
    expect(JSON.parse(await host.request(JSON.stringify({ op: 'emit', topic: 'a.b' }))).ok).to.equal(true);
  });

  it('drops fire-and-forget posts while too many requests wait, and counts them', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const slow: GatewayPort = { request: () => blocked };
    api.close();
    channel = new MessageChannel();
    api = exposeHostApi(channel.port1, { pluginId: 'py', gateway: slow, maxPayloadBytes: 1024, maxPending: 2, onBytes: () => undefined });
    const host = Comlink.wrap<PythonHostApi>(portEndpoint(channel.port2));
    for (let i = 0; i < 5; i++) void host.post(JSON.stringify({ op: 'log', level: 'info', message: `m${i}` }));
    const answer = JSON.parse(await host.request(JSON.stringify({ op: 'emit', topic: 'a.b' })));
    expect(answer.error.name).to.equal('ResourceLimitError');
    expect(api.dropped).to.equal(3);
    release();
  });
});
