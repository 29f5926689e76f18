import * as Comlink from 'comlink';
import type { MessagePort } from 'node:worker_threads';
import { ResourceLimitError } from '../../errors.js';
import { portEndpoint } from '../comlink-endpoint.js';
import { errorToWire, jsonDepth, MAX_JSON_DEPTH, nullPrototype } from '../js/wire.js';
import type { GatewayPort } from '../protocol.js';
import type { PythonHostApi } from './python-protocol.js';

/** The methods a worker may apply; comlink itself would walk any property path it is sent. */
const METHODS = new Set<string>(['request', 'post']);

export interface HostApiOptions {
  pluginId: string;
  gateway: GatewayPort;
  maxPayloadBytes: number;
  /** Requests waiting for the gateway; beyond, new ones fail at once (posts are dropped). */
  maxPending: number;
  /** Counts bytes crossing, for metrics. */
  onBytes(n: number): void;
}

/**
 * Exposes the gateway to a worker over comlink on `port`: `request(json)` answers
 * `{ok, value | error}` as JSON text, `post(json)` is fire-and-forget (log, emit). Every request
 * is untrusted JSON text: size- and depth-checked, parsed into null-prototype objects, then
 * schema-, rate- and permission-checked by the gateway.
 *
 * comlink's `expose` resolves whatever property path a message names (`GET`, `SET`,
 * `CONSTRUCT`, `APPLY` of `['request', 'constructor', …]`), so a compromised worker could read
 * or pollute host objects through it. The endpoint handed to comlink therefore admits only
 * `APPLY` of `request` or `post` with one plain string argument; anything else is dropped
 * before comlink sees it.
 *
 * @example
 * const api = exposeHostApi(port1, { pluginId, gateway, maxPayloadBytes, maxPending: 256, onBytes });
 * api.dropped; // posts dropped because too many were waiting
 * api.close();
 */
export function exposeHostApi(port: MessagePort, options: HostApiOptions): { readonly dropped: number; close(): void } {
  const { pluginId, gateway, maxPayloadBytes, maxPending } = options;
  let pending = 0;
  let dropped = 0;
  let closed = false;

  const parse = (json: unknown): unknown => {
    if (typeof json !== 'string' || json.length > maxPayloadBytes) {
      throw new ResourceLimitError(pluginId, 'payload', `A request to the host exceeds ${maxPayloadBytes} bytes.`);
    }
    options.onBytes(json.length);
    if (jsonDepth(json) > MAX_JSON_DEPTH) throw new ResourceLimitError(pluginId, 'payload', `A request to the host is nested deeper than ${MAX_JSON_DEPTH} levels.`);
    return nullPrototype(JSON.parse(json));
  };

  const answer = (ok: boolean, value: unknown): string => {
    let text: string;
    try {
      text = JSON.stringify(ok ? { ok, value: value ?? null } : { ok, error: value });
      if (text.length > maxPayloadBytes) throw new ResourceLimitError(pluginId, 'payload', `The host's answer exceeds ${maxPayloadBytes} bytes.`);
    } catch (e) {
      text = JSON.stringify({ ok: false, error: errorToWire(e) });
    }
    options.onBytes(text.length);
    return text;
  };

  const api: PythonHostApi = Object.freeze(
    Object.assign(Object.create(null) as object, {
      async request(json: string): Promise<string> {
        if (closed) return answer(false, { name: 'PluginCrashedError', message: 'The plugin was stopped.' });
        if (pending >= maxPending) {
          return answer(false, errorToWire(new ResourceLimitError(pluginId, 'requests', `Plugin '${pluginId}' has ${maxPending} requests waiting for the host.`)));
        }
        pending++;
        try {
          return answer(true, await gateway.request(parse(json)));
        } catch (e) {
          return answer(false, errorToWire(e));
        } finally {
          pending--;
        }
      },
      post(json: string): void {
        if (closed) return;
        if (pending >= maxPending) {
          dropped++;
          return;
        }
        pending++;
        Promise.resolve()
          .then(() => gateway.request(parse(json)))
          .catch(() => undefined)
          .finally(() => pending--);
      },
    }),
  );

  Comlink.expose(api, portEndpoint(port, admissible));
  // The channel must not keep the host process alive on its own.
  port.unref();
  return {
    get dropped() {
      return dropped;
    },
    close() {
      closed = true;
      port.close();
    },
  };
}

/** Only `APPLY` of an allowed method with one plain string argument reaches comlink. */
function admissible(data: unknown): boolean {
  if (data === null || typeof data !== 'object') return false;
  const m = data as { type?: unknown; path?: unknown; argumentList?: unknown; id?: unknown };
  if (m.type !== 'APPLY' || typeof m.id !== 'string') return false;
  if (!Array.isArray(m.path) || m.path.length !== 1 || !METHODS.has(m.path[0] as string)) return false;
  if (!Array.isArray(m.argumentList) || m.argumentList.length !== 1) return false;
  const arg = m.argumentList[0] as { type?: unknown; value?: unknown };
  return arg !== null && typeof arg === 'object' && arg.type === 'RAW' && typeof arg.value === 'string';
}
