/** Log methods of a plugin; entries reach the host's logger tagged with the plugin id. */
export interface PluginLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * What a plugin receives in its constructor: its only way to reach the host. Every method
 * is a request to the host's API gateway; values cross as JSON copies.
 *
 * @example
 * constructor(private readonly ctx: PluginContext) {}
 * async onStart() { this.ctx.log.info('ready'); await this.ctx.emit('ready', {}); }
 */
export interface PluginContext {
  readonly pluginId: string;
  readonly log: PluginLogger;
  /** Publish an event; the host stamps it with this plugin's id as its source. */
  emit(topic: string, data?: unknown): Promise<void>;
  /** Call an exposed method of another plugin this plugin depends on. */
  call<T = unknown>(pluginId: string, method: string, ...args: unknown[]): Promise<T>;
}

/** Optional hooks a plugin class may define. */
export interface PluginHooks {
  onStart?(): unknown;
  onStop?(): unknown;
  serializeState?(): unknown;
  deserializeState?(state: unknown): unknown;
}

/** An event as handlers receive it in their second argument. */
export interface PluginEvent<T = unknown> {
  topic: string;
  data: T;
  source: string;
}
