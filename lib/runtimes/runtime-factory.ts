import { join } from 'node:path';
import { inject, injectable } from 'tsyringe';
import { IHostOptions } from '../di/tokens.js';
import { JsRuntime, type JsRuntimeOptions } from './js/js-runtime.js';
import { ModuleCompiler } from './js/module-compiler.js';
import { WasmRuntime } from './wasm/wasm-runtime.js';
import type { IRuntimeFactory, PluginRuntime, RuntimeInit } from './runtime.js';

export interface RuntimeFactoryOptions extends JsRuntimeOptions {
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

  constructor(@inject(IHostOptions) private readonly options: RuntimeFactoryOptions) {
    this.compiler = new ModuleCompiler(options.dataDir ? join(options.dataDir, 'cache', 'modules') : undefined);
  }

  supports(kind: string): boolean {
    return kind === 'nodejs' || kind === 'wasm';
  }

  create(init: RuntimeInit): PluginRuntime {
    if (init.manifest.runtime === 'wasm') return new WasmRuntime(init, this.options);
    return new JsRuntime(init, this.compiler, this.options);
  }
}
