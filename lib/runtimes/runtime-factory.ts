import { join } from 'node:path';
import { inject, injectable } from 'tsyringe';
import { IHostOptions } from '../di/tokens.js';
import { JsRuntime, type JsRuntimeOptions } from './js/js-runtime.js';
import { ModuleCompiler } from './js/module-compiler.js';
import { PythonRuntime, type PythonRuntimeOptions } from './python/python-runtime.js';
import { SnapshotCache } from './python/snapshot-cache.js';
import { WasmRuntime } from './wasm/wasm-runtime.js';
import type { IRuntimeFactory, PluginRuntime, RuntimeInit } from './runtime.js';

export interface RuntimeFactoryOptions extends JsRuntimeOptions {
  /** Tunables of the Python runtime. */
  python?: PythonRuntimeOptions;
  /** Where compiled plugin code is cached (`<dataDir>/cache`). */
  dataDir?: string;
}

/**
 * Builds the runtime a manifest's `runtime` field names. A new language is one more entry
 * here and a folder under lib/runtimes/.
 *
 * @example
 * const runtime = factory.create({ pluginId, dir, manifest, limits, gateway, onCrash });
 */
@injectable()
export class RuntimeFactory implements IRuntimeFactory {
  private readonly compiler: ModuleCompiler;
  private readonly snapshots: SnapshotCache;

  constructor(@inject(IHostOptions) private readonly options: RuntimeFactoryOptions) {
    this.compiler = new ModuleCompiler(options.dataDir ? join(options.dataDir, 'cache', 'modules') : undefined);
    this.snapshots = new SnapshotCache(options.dataDir ? join(options.dataDir, 'cache', 'pyodide') : undefined);
  }

  supports(kind: string): boolean {
    return kind === 'nodejs' || kind === 'wasm' || kind === 'python';
  }

  create(init: RuntimeInit): PluginRuntime {
    if (init.manifest.runtime === 'wasm') return new WasmRuntime(init, this.options);
    if (init.manifest.runtime === 'python') return new PythonRuntime(init, { maxPayloadBytes: this.options.maxPayloadBytes, snapshots: this.snapshots, ...this.options.python });
    return new JsRuntime(init, this.compiler, this.options);
  }
}
