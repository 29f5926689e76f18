import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import ivm from 'isolated-vm';
import { PluginHostError, PluginLoadError } from '../../errors.js';
import { resolveImport, SDK_SPECIFIER } from './import-resolver.js';
import type { ModuleCompiler } from './module-compiler.js';

/** The SDK's decorators, compiled from lib/sdk/decorators.ts: the same code on both sides. */
const SDK_SOURCE = readFileSync(new URL('../../sdk/decorators.js', import.meta.url), 'utf8').replace(
  /\n\/\/# sourceMappingURL=.*$/,
  '',
);

/**
 * Compiles a plugin's entry module and everything it imports into `isolate`, resolving each
 * import with `resolveImport` before anything runs. Any refused import fails the whole load
 * with `ImportRefusedError`, before a line of plugin code has been evaluated.
 *
 * @example
 * const entry = await compileModuleGraph(isolate, '/plugins/a/index.ts', '/plugins/a', compiler, 'a');
 * await entry.instantiate(context, entry.resolver); await entry.module.evaluate();
 */
export async function compileModuleGraph(
  isolate: ivm.Isolate,
  entryPath: string,
  root: string,
  compiler: ModuleCompiler,
  pluginId?: string,
): Promise<ModuleGraph> {
  const byPath = new Map<string, ivm.Module>();
  const links = new Map<ivm.Module, Map<string, ivm.Module>>();
  let sdk: ivm.Module | undefined;

  const compile = async (code: string, filename: string): Promise<ivm.Module> => {
    try {
      return await isolate.compileModule(code, { filename });
    } catch (error) {
      throw new PluginLoadError(`Plugin ${pluginId ?? ''} module ${filename} does not compile: ${(error as Error).message}`, {
        pluginId,
        cause: error,
      });
    }
  };

  const visit = async (path: string): Promise<ivm.Module> => {
    const known = byPath.get(path);
    if (known) return known;
    const module = await compile(await compiler.load(path, pluginId), pathToFileURL(path).href);
    byPath.set(path, module);
    const deps = new Map<string, ivm.Module>();
    links.set(module, deps);
    for (const specifier of module.dependencySpecifiers) {
      const target = resolveImport(specifier, path, root, pluginId);
      if (target.kind === 'sdk') deps.set(specifier, (sdk ??= await compile(SDK_SOURCE, SDK_SPECIFIER)));
      else deps.set(specifier, await visit(target.path));
    }
    return module;
  };

  // The entry point gets the same check as every import: its real path must stay inside.
  const entry = resolveImport(`./${relative(root, entryPath)}`, join(root, 'plugin.json'), root, pluginId);
  if (entry.kind !== 'file') throw new PluginLoadError(`Plugin ${pluginId ?? ''} entry point is not a module file.`, { pluginId });
  const module = await visit(entry.path);
  return {
    module,
    modules: byPath.size,
    resolve: (specifier, referrer) => {
      const target = links.get(referrer)?.get(specifier);
      if (!target) throw new PluginHostError('LOGOMESH_ERR_INTERNAL', `unresolved import ${specifier}`);
      return target;
    },
  };
}

export interface ModuleGraph {
  module: ivm.Module;
  /** How many plugin files were compiled. */
  modules: number;
  resolve(specifier: string, referrer: ivm.Module): ivm.Module;
}
