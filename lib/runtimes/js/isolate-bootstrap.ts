// Runs INSIDE a plugin isolate, before any plugin code: the host evaluates this function's
// source text there, so it must be self-contained (no imports, no closures over host values).
// It receives `send`, the only host function in the isolate, keeps it in a closure, and
// returns the dispatcher the host drives. Plugin code sees only the frozen `ctx` it builds.

type Send = (id: number, json: string) => void;

export interface IsolateEndpoints {
  install(pluginClass: unknown): string;
  dispatch(json: string): Promise<string>;
  reply(id: number, ok: boolean, json: string | undefined): void;
}

/** Limits the isolate side enforces before anything is copied out to the host. */
export interface BootstrapOptions {
  pluginId: string;
  /** Largest JSON text sent to the host or returned from a call. */
  maxPayload: number;
  /** Requests (logs included) sent and not yet answered by the host. */
  maxPending: number;
  /** Bytes of such requests. */
  maxPendingBytes: number;
}

export function isolateBootstrap(global: Record<string, unknown>, options: BootstrapOptions): IsolateEndpoints {
  'use strict'; // strict functions are hidden from stack-trace introspection (CallSite.getFunction)
  const { pluginId, maxPayload, maxPending, maxPendingBytes } = options;
  const send = global.__lm_send as Send;
  delete global.__lm_send;
  // Memory that isolated-vm's memoryLimit does not count: WebAssembly memories, ICU objects
  // behind Intl, and resizable buffers (also disabled by a V8 flag in the host).
  delete global.WebAssembly;
  delete global.Intl;
  delete (ArrayBuffer.prototype as unknown as Record<string, unknown>).resize;
  delete (SharedArrayBuffer.prototype as unknown as Record<string, unknown>).grow;

  // Captured before plugin code runs, so a plugin that replaces these only breaks itself.
  const { stringify, parse } = JSON;
  const freeze = Object.freeze;
  const LocalPromise = Promise;
  const LocalError = Error;
  const HOOKS = ['onStart', 'onStop', 'serializeState', 'deserializeState', 'checkHealth', 'onDependencyDown', 'onDependencyUp'];
  const pending: Record<number, { resolve(v: unknown): void; reject(e: unknown): void; bytes: number } | undefined> =
    Object.create(null);
  let pendingCount = 0;
  let pendingBytes = 0;
  let droppedLogs = 0;
  let nextId = 0;

  const limitError = (message: string) => {
    const error = new LocalError(message) as Error & { code?: string };
    error.name = 'ResourceLimitError';
    error.code = 'LOGOMESH_ERR_RESOURCE_LIMIT';
    return error;
  };
  const read = (obj: unknown, key: string): unknown => {
    try {
      return (obj as Record<string, unknown>)[key];
    } catch {
      return undefined;
    }
  };
  const serializeError = (e: unknown) => {
    const name = read(e, 'name');
    const message = read(e, 'message');
    const code = read(e, 'code');
    const stack = read(e, 'stack');
    let text: string;
    try {
      text = typeof message === 'string' ? message : String(e);
    } catch {
      text = 'unprintable error';
    }
    return {
      name: typeof name === 'string' ? name : 'Error',
      message: text.slice(0, 4096),
      code: typeof code === 'string' ? code : undefined,
      stack: typeof stack === 'string' ? stack.slice(0, 16384) : undefined,
    };
  };
  const noop = () => undefined;
  /** Sends one request if the budget allows; returns false when it does not. */
  const trySend = (json: string, resolve: (v: unknown) => void, reject: (e: unknown) => void): boolean => {
    if (pendingCount >= maxPending || pendingBytes + json.length > maxPendingBytes) return false;
    const id = ++nextId;
    pending[id] = { resolve, reject, bytes: json.length };
    pendingCount++;
    pendingBytes += json.length;
    send(id, json);
    return true;
  };
  const request = (req: object): Promise<unknown> =>
    new LocalPromise((resolve, reject) => {
      let json: string;
      try {
        json = stringify(req);
      } catch (e) {
        reject(new TypeError(`value cannot be sent to the host: ${serializeError(e).message}`));
        return;
      }
      if (json.length > maxPayload) reject(limitError(`request to the host is ${json.length} bytes; the limit is ${maxPayload}`));
      else if (!trySend(json, resolve, reject)) {
        reject(limitError(`too many requests waiting for the host (${pendingCount}); await earlier ones first`));
      }
    });
  // Logs are fire-and-forget: past the budget they are dropped and the count is reported
  // with the next log that gets through.
  const log = (level: string) => (message: unknown, fields?: unknown) => {
    let json: string;
    const text = String(message).slice(0, 8192);
    const extra = droppedLogs > 0 ? { droppedLogs } : undefined;
    try {
      json = stringify({ op: 'log', level, message: text, fields: fields ?? extra });
    } catch {
      json = stringify({ op: 'log', level, message: text, fields: extra });
    }
    if (json.length > maxPayload || !trySend(json, noop, noop)) droppedLogs++;
    else droppedLogs = 0;
  };
  const ctx = freeze({
    pluginId,
    log: freeze({ debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }),
    emit: (topic: string, data?: unknown) => request({ op: 'emit', topic, data }).then(noop),
    call: (target: string, method: string, ...args: unknown[]) => request({ op: 'call', pluginId: target, method, args }),
    fs: freeze({
      readFile: (path: string, encoding?: string) => request({ op: 'fs.readFile', path, encoding }),
      writeFile: (path: string, data: string, encoding?: string) => request({ op: 'fs.writeFile', path, data, encoding }).then(noop),
      appendFile: (path: string, data: string, encoding?: string) => request({ op: 'fs.appendFile', path, data, encoding }).then(noop),
      readdir: (path: string) => request({ op: 'fs.readdir', path }),
      stat: (path: string) => request({ op: 'fs.stat', path }),
      mkdir: (path: string, options?: { recursive?: boolean }) => request({ op: 'fs.mkdir', path, recursive: options?.recursive }).then(noop),
      rm: (path: string, options?: { recursive?: boolean }) => request({ op: 'fs.rm', path, recursive: options?.recursive }).then(noop),
      open: (path: string, flags: string) => request({ op: 'fs.open', path, flags }),
      read: (handle: number, length: number, position?: number, encoding?: string) => request({ op: 'fs.read', handle, length, position, encoding }),
      write: (handle: number, data: string, position?: number, encoding?: string) => request({ op: 'fs.write', handle, data, position, encoding }),
      close: (handle: number) => request({ op: 'fs.close', handle }).then(noop),
    }),
    net: freeze({ fetch: (url: string, init?: object) => request({ op: 'net.fetch', url, init }) }),
    services: freeze({ call: (operation: string, args?: unknown) => request({ op: 'services.call', operation, args }) }),
  });

  type Meta = { plugin?: { id?: string }; exposed: Record<string, { name: string }>; handlers: { pattern: string; method: string }[] };
  let instance: Record<string, (...a: unknown[]) => unknown> | undefined;
  let meta: Meta = { exposed: {}, handlers: [] };

  const encode = (ok: boolean, payload: unknown): string => {
    const json = ok ? stringify({ ok, value: payload }) : stringify({ ok, error: payload });
    if (json.length > maxPayload) return stringify({ ok: false, limit: 'payload', size: json.length });
    return json;
  };
  const answer = (fn: () => unknown): string => {
    try {
      return encode(true, fn());
    } catch (e) {
      return encode(false, serializeError(e));
    }
  };

  return {
    install(pluginClass) {
      return answer(() => {
        if (instance) throw new Error('plugin already installed');
        if (typeof pluginClass !== 'function') {
          throw new TypeError('the entry module must `export default` the plugin class (decorated with @Plugin())');
        }
        const found = (pluginClass as unknown as Record<symbol, Meta | undefined>)[Symbol.for('logomesh.plugin.meta')];
        if (!found || !found.plugin) throw new TypeError('the default export is not decorated with @Plugin()');
        meta = found;
        instance = new (pluginClass as new (c: unknown) => typeof instance)(ctx);
        const self = instance!;
        return {
          exposed: Object.keys(meta.exposed),
          handlers: meta.handlers,
          hooks: HOOKS.filter((h) => typeof self[h] === 'function'),
          declaredId: meta.plugin?.id,
        };
      });
    },

    async dispatch(json) {
      try {
        const inv = parse(json);
        const self = instance!;
        let value: unknown;
        if (inv.type === 'call') {
          const entry = meta.exposed[inv.method];
          if (!entry || typeof self[entry.name] !== 'function') throw new TypeError(`no exposed method '${inv.method}'`);
          value = await self[entry.name](...inv.args);
        } else if (inv.type === 'event') {
          const event = freeze({ topic: inv.topic, data: inv.data, source: inv.source });
          for (const method of inv.methods) await self[method](inv.data, event);
        } else if (inv.type === 'hook') {
          if (typeof self[inv.hook] === 'function') value = await self[inv.hook](inv.arg);
        }
        return encode(true, value);
      } catch (e) {
        try {
          return encode(false, serializeError(e));
        } catch {
          return '{"ok":false,"error":{"name":"Error","message":"unserialisable error"}}';
        }
      }
    },

    reply(id, ok, json) {
      const waiter = pending[id];
      if (!waiter) return;
      pending[id] = undefined;
      delete pending[id];
      pendingCount--;
      pendingBytes -= waiter.bytes;
      if (ok) {
        waiter.resolve(json === undefined ? undefined : parse(json));
        return;
      }
      const info = parse(json ?? '{}');
      const error = new LocalError(info.message) as Error & { code?: string };
      error.name = info.name;
      error.code = info.code;
      waiter.reject(error);
    },
  };
}
