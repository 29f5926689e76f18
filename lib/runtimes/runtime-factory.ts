import { join } from 'node:path';
import { inject, injectable } from 'tsyringe';
import { IHostOptions } from '../di/tokens.js';
import { effectiveThreads } from '../registry/manifest.js';
import { JsRuntime, type JsRuntimeOptions } from './js/js-runtime.js';
import { ModuleCompiler } from './js/module-compiler.js';
import { PythonRuntime, type PythonRuntimeOptions } from './python/python-runtime.js';
import { SnapshotCache } from './python/snapshot-cache.js';
import { ScalingRuntime } from './scaling-runtime.js';
import { WasmRuntime } from './wasm/wasm-runtime.js';
import type { IRuntimeFactory, PluginRuntime, RuntimeInit } from './runtime.js';

export interface RuntimeFactoryOptions extends JsRuntimeOptions {
  /** Tunables of the Python runtime. */
  python?: PythonRuntimeOptions;
  /** Where compiled plugin code is cached (`<dataDir>/cache`). */
  dataDir?: string;
  /** Idle time after which a wasm or python plugin's worker may be ended (see HostOptions). */
  idleWorkerMs?: number;
  /** Most threads any stateless plugin gets, whatever its manifest asks (see HostOptions). */
  maxThreadsPerPlugin?: number;
  /** `scaleOnHighLoad` (the host's `policies` over `monitoring`): stateless plugins add threads under load. Default true. */
  policies?: { scaleOnHighLoad?: boolean };
  monitoring?: { scaleOnHighLoad?: boolean };
}

/**
 * Builds the runtime a manifest's `runtime` field names. A new language is one more entry
 * here and a folder under lib/runtimes/. A stateless wasm or python plugin whose manifest asks
 * for `threads.max` above 1 gets a {@link ScalingRuntime} of single-thread replicas.
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
    const { runtime } = init.manifest;
    if (runtime !== 'wasm' && runtime !== 'python') return new JsRuntime(init, this.compiler, this.options);
    const single = (replica: RuntimeInit): PluginRuntime =>
      runtime === 'wasm'
        ? new WasmRuntime(replica, this.options)
        : new PythonRuntime(replica, { maxPayloadBytes: this.options.maxPayloadBytes, idleWorkerMs: this.options.idleWorkerMs, snapshots: this.snapshots, ...this.options.python });
    // One thread unless a stateless plugin asks for more: the single-thread path stays as it is.
    const asked = effectiveThreads(init.manifest);
    const cap = Math.max(1, this.options.maxThreadsPerPlugin ?? 4);
    const max = Math.min(asked.max, cap);
    const min = Math.min(asked.min, max);
    if (max <= 1) return single(init);
    const scaleOnHighLoad = this.options.policies?.scaleOnHighLoad ?? this.options.monitoring?.scaleOnHighLoad ?? true;
    return new ScalingRuntime(init, single, { min, max, scaleOnHighLoad });
  }
}
