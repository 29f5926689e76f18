/**
 * The plugin author's SDK: `import { Plugin, Expose, OnEvent, type PluginContext } from '@logomesh/plugin-host/sdk'`.
 * Inside a plugin isolate the same import resolves to the same decorators.
 */
export { Plugin, Expose, OnEvent, PLUGIN_META } from './decorators.js';
export type { PluginMeta, PluginOptions, ExposeOptions } from './decorators.js';
export type { PluginContext, PluginLogger, PluginHooks, PluginEvent, PluginFileSystem, FetchInit, FetchResult, FileEncoding, FileType } from './context.js';
