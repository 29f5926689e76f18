// This file is also the source of the '@logomesh/plugin-host/sdk' module inside plugin
// isolates: it must stay self-contained (no imports) and free of Node.js APIs.

/** Where the decorators record what a plugin class offers. */
export const PLUGIN_META = Symbol.for('logomesh.plugin.meta');

/** What the decorators record on a plugin class. */
export interface PluginMeta {
  plugin?: PluginOptions;
  exposed: Record<string, ExposeOptions>;
  handlers: { pattern: string; method: string }[];
}

export interface PluginOptions {
  /** Optional id, checked against the manifest's `id` at load. */
  id?: string;
}

export interface ExposeOptions {
  /** Name callers use; defaults to the method name. */
  name?: string;
}

type Ctor = abstract new (...args: never[]) => unknown;

function metaOf(target: object): PluginMeta {
  const owner = target as { [PLUGIN_META]?: PluginMeta };
  if (!Object.prototype.hasOwnProperty.call(owner, PLUGIN_META)) {
    const inherited = owner[PLUGIN_META];
    const meta: PluginMeta = {
      plugin: undefined,
      exposed: { ...(inherited?.exposed ?? {}) },
      handlers: [...(inherited?.handlers ?? [])],
    };
    Object.defineProperty(owner, PLUGIN_META, { value: meta, enumerable: false });
  }
  return owner[PLUGIN_META]!;
}

/**
 * Marks the default-exported class of a plugin. The host constructs it once, passing the
 * plugin's `PluginContext`.
 *
 * @example
 * @Plugin()
 * export default class TextProcessor { constructor(private readonly ctx: PluginContext) {} }
 */
export function Plugin(options: PluginOptions = {}) {
  return <T extends Ctor>(target: T): T => {
    metaOf(target).plugin = { ...options };
    return target;
  };
}

/**
 * Makes a method callable by the host (`host.call(id, name, …args)`) and by permitted
 * plugins. Arguments and results cross as JSON copies.
 *
 * @example
 * @Expose() upper(text: string) { return text.toUpperCase(); }
 */
export function Expose(options: ExposeOptions = {}) {
  return (target: object, key: string | symbol, _descriptor?: PropertyDescriptor): void => {
    if (typeof key !== 'string') throw new TypeError('@Expose() needs a method with a string name');
    metaOf(target.constructor).exposed[options.name ?? key] = { name: key };
  };
}

/**
 * Runs the method for every event whose topic matches `pattern` (`*` is one segment,
 * a trailing `**` any number). The handler receives the event data and the event.
 *
 * @example
 * @OnEvent('document.*') async saved(doc: { id: number }) { await this.ctx.emit('indexed', doc); }
 */
export function OnEvent(pattern: string) {
  return (target: object, key: string | symbol, _descriptor?: PropertyDescriptor): void => {
    if (typeof key !== 'string') throw new TypeError('@OnEvent() needs a method with a string name');
    metaOf(target.constructor).handlers.push({ pattern, method: key });
  };
}
