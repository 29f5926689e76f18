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
  /** Call an exposed method of another plugin (a dependency, or one a `plugins` permission names). */
  call<T = unknown>(pluginId: string, method: string, ...args: unknown[]): Promise<T>;
  /** Files, within the plugin's `filesystem` permissions. Relative paths are in its data folder. */
  readonly fs: PluginFileSystem;
  /** HTTP(S), within the plugin's `network` permissions. */
  readonly net: { fetch(url: string, init?: FetchInit): Promise<FetchResult> };
  /** Operations the host application offers, within the plugin's `system` permissions. */
  readonly services: { call<T = unknown>(operation: string, args?: unknown): Promise<T> };
}

export type FileEncoding = 'utf8' | 'base64';
export type FileType = 'file' | 'directory' | 'symlink' | 'other';

/** `ctx.fs`: binary data travels as base64 text (`encoding: 'base64'`). */
export interface PluginFileSystem {
  readFile(path: string, encoding?: FileEncoding): Promise<string>;
  writeFile(path: string, data: string, encoding?: FileEncoding): Promise<void>;
  appendFile(path: string, data: string, encoding?: FileEncoding): Promise<void>;
  readdir(path: string): Promise<{ name: string; type: FileType }[]>;
  stat(path: string): Promise<{ size: number; type: FileType; mtimeMs: number }>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  rm(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Opens a file; the handle counts against `maxFileHandles` until closed. */
  open(path: string, flags: 'r' | 'r+' | 'w' | 'wx' | 'a'): Promise<number>;
  read(handle: number, length: number, position?: number, encoding?: FileEncoding): Promise<{ data: string; bytesRead: number }>;
  write(handle: number, data: string, position?: number, encoding?: FileEncoding): Promise<number>;
  close(handle: number): Promise<void>;
}

export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  bodyEncoding?: FileEncoding;
  responseEncoding?: FileEncoding;
}

export interface FetchResult {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: string;
  url: string;
  redirected: boolean;
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
