import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { PluginLoadError } from '../../errors.js';

/** Largest module source a plugin may ship (compiling runs on the host's thread). */
export const MAX_MODULE_BYTES = 2 * 1024 * 1024;

/** Bump when the compiler options below change, so cached output is not reused. */
const CACHE_VERSION = 'ts6-es2022-decorators-1';

/**
 * Turns a plugin's module file into JavaScript the isolate can run. TypeScript is compiled
 * with decorator support (`experimentalDecorators`, `emitDecoratorMetadata`); the output is
 * cached in memory and on disk under `cacheDir`, keyed by the source's content hash, so a
 * plugin is compiled once per content, not once per load.
 *
 * @example
 * const js = await new ModuleCompiler('.logomesh/cache').load('/plugins/a/index.ts');
 */
export class ModuleCompiler {
  private readonly memory = new Map<string, string>();

  constructor(private readonly cacheDir?: string) {}

  async load(path: string, pluginId?: string): Promise<string> {
    const size = (await stat(path)).size;
    if (size > MAX_MODULE_BYTES) {
      throw new PluginLoadError(`Plugin ${pluginId ?? ''} module ${path} is ${size} bytes; modules may be at most ${MAX_MODULE_BYTES}.`, { pluginId });
    }
    const source = await readFile(path, 'utf8');
    const ext = extname(path);
    if (ext !== '.ts' && ext !== '.mts') return source;
    const key = createHash('sha256').update(CACHE_VERSION).update('\0').update(source).digest('hex');
    const hit = this.memory.get(key) ?? (await this.readCache(key));
    if (hit !== undefined) {
      this.memory.set(key, hit);
      return hit;
    }
    const js = await compileTypeScript(source, path, pluginId);
    this.memory.set(key, js);
    await this.writeCache(key, js);
    return js;
  }

  private async readCache(key: string): Promise<string | undefined> {
    if (!this.cacheDir) return undefined;
    return readFile(join(this.cacheDir, `${key}.js`), 'utf8').catch(() => undefined);
  }

  private async writeCache(key: string, js: string): Promise<void> {
    if (!this.cacheDir) return;
    // Write then rename, so a concurrent reader never sees half a file.
    const tmp = join(this.cacheDir, `${key}.${process.pid}.tmp`);
    try {
      await mkdir(this.cacheDir, { recursive: true });
      await writeFile(tmp, js);
      await rename(tmp, join(this.cacheDir, `${key}.js`));
    } catch {
      // A cache we cannot write is only slower, never wrong.
    }
  }
}

async function compileTypeScript(source: string, fileName: string, pluginId?: string): Promise<string> {
  // TypeScript is large; load it only when a plugin actually ships .ts source.
  const ts = (await import('typescript')).default;
  const out = ts.transpileModule(source, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      useDefineForClassFields: false,
      sourceMap: false,
      inlineSourceMap: false,
    },
  });
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    const text = errors.map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      return `${fileName}${where ? `:${where.line + 1}:${where.character + 1}` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    throw new PluginLoadError(`TypeScript in plugin ${pluginId ?? ''} does not compile:\n${text.join('\n')}`, { pluginId });
  }
  return out.outputText;
}
