import { realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import ivm from 'isolated-vm';
import { PluginHostError, PluginLoadError } from '../../errors.js';
import type { PluginManifest } from '../../registry/manifest-schema.js';
import { resolveImport } from './import-resolver.js';
import { ModuleCompiler } from './module-compiler.js';

/** One reason a JS/TS plugin would not load: a refused import, or a module that cannot be read or compiled. */
export interface ImportProblem {
  /** `LOGOMESH_ERR_IMPORT_REFUSED` for a refused import, `LOGOMESH_ERR_PLUGIN_LOAD` for an unreadable or uncompilable module. */
  code: string;
  /** The refused specifier; absent when the module itself is the problem. */
  specifier?: string;
  /** The module (relative to the plugin folder) that imports it, or that fails. */
  file: string;
  message: string;
}

/**
 * Walks a JS/TS plugin's module graph the way the JS runtime does (same compiler, same
 * `resolveImport`, same V8 module parser) without running any of it, and reports every
 * import the loader would refuse, not just the first. Modules that cannot be read or do
 * not compile are reported too; the walk continues past them.
 *
 * @example
 * const problems = await checkImports('plugins/hello', manifest);
 * for (const p of problems) console.log(`${p.file}: ${p.specifier ?? ''} ${p.message}`);
 */
export async function checkImports(dir: string, manifest: PluginManifest): Promise<ImportProblem[]> {
  // resolveImport compares real paths, so the root must be one (as the registry's descriptors are).
  const root = await realpath(dir);
  const pluginId = manifest.id;
  const compiler = new ModuleCompiler();
  const problems: ImportProblem[] = [];
  const seen = new Set<string>();
  const pending = [join(root, manifest.entryPoint)];
  // Compiling a module parses it and lists its imports; nothing is instantiated or evaluated.
  const isolate = new ivm.Isolate({ memoryLimit: 16 });
  try {
    for (let file = pending.shift(); file !== undefined; file = pending.shift()) {
      if (seen.has(file)) continue;
      seen.add(file);
      const where = relative(root, file) || file;
      let module: ivm.Module;
      try {
        const code = await compiler.load(file, pluginId);
        module = await isolate.compileModule(code, { filename: pathToFileURL(file).href });
      } catch (error) {
        problems.push({ code: codeOf(error), file: where, message: moduleMessage(error, where) });
        continue;
      }
      for (const specifier of module.dependencySpecifiers) {
        try {
          const target = resolveImport(specifier, file, root, pluginId);
          if (target.kind === 'file') pending.push(target.path);
        } catch (error) {
          problems.push({ code: codeOf(error), specifier, file: where, message: (error as Error).message });
        }
      }
      module.release();
    }
  } finally {
    isolate.dispose();
  }
  return problems;
}

function codeOf(error: unknown): string {
  return error instanceof PluginHostError ? error.code : PluginLoadError.code;
}

function moduleMessage(error: unknown, where: string): string {
  if (error instanceof PluginHostError) return error.message;
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'ENOENT') return `module ${where} does not exist; check 'entryPoint' and the import that names it.`;
  return `module ${where} does not compile: ${message}`;
}
