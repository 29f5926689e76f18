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

export function isolateBootstrap(global: Record<string, unknown>, pluginId: string): IsolateEndpoints {
  const send = global.__lm_send as Send;
  delete global.__lm_send;
  // isolated-vm's memoryLimit does not count WebAssembly memory: no WebAssembly in JS plugins.
  delete global.WebAssembly;

  // Captured before plugin code runs, so a plugin that replaces JSON only breaks itself.
  const { stringify, parse } = JSON;
  const freeze = Object.freeze;
  const HOOKS = ['onStart', 'onStop', 'serializeState', 'deserializeState'];
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  let nextId = 0;

  const serializeError = (e: unknown) => {
    const err = (e ?? {}) as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown };
    return {
      name: typeof err.name === 'string' ? err.name : 'Error',
      message: typeof err.message === 'string' ? err.message : String(e),
      code: typeof err.code === 'string' ? err.code : undefined,
      stack: typeof err.stack === 'string' ? err.stack : undefined,
    };
  };
  const request = (req: object): Promise<unknown> =>
    new Promise((resolve, reject) => {
      let json: string;
      try {
        json = stringify(req);
      } catch (e) {
        reject(new TypeError(`value cannot be sent to the host: ${serializeError(e).message}`));
        return;
      }
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      send(id, json);
    });
  const log = (level: string) => (message: unknown, fields?: unknown) => {
    try {
      send(0, stringify({ op: 'log', level, message: String(message), fields }));
    } catch {
      send(0, stringify({ op: 'log', level, message: String(message) }));
    }
  };
  const ctx = freeze({
    pluginId,
    log: freeze({ debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }),
    emit: (topic: string, data?: unknown) => request({ op: 'emit', topic, data }).then(() => undefined),
    call: (target: string, method: string, ...args: unknown[]) => request({ op: 'call', pluginId: target, method, args }),
  });

  type Meta = { plugin?: { id?: string }; exposed: Record<string, { name: string }>; handlers: { pattern: string; method: string }[] };
  let instance: Record<string, (...a: unknown[]) => unknown> | undefined;
  let meta: Meta = { exposed: {}, handlers: [] };

  const answer = (fn: () => unknown): string => {
    try {
      return stringify({ ok: true, value: fn() });
    } catch (e) {
      return stringify({ ok: false, error: serializeError(e) });
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
        return stringify({ ok: true, value });
      } catch (e) {
        return stringify({ ok: false, error: serializeError(e) });
      }
    },

    reply(id, ok, json) {
      const waiter = pending.get(id);
      if (!waiter) return;
      pending.delete(id);
      if (ok) {
        waiter.resolve(json === undefined ? undefined : parse(json));
        return;
      }
      const info = parse(json ?? '{}');
      const error = new Error(info.message) as Error & { code?: string };
      error.name = info.name;
      error.code = info.code;
      waiter.reject(error);
    },
  };
}
