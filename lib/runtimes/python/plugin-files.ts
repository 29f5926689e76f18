import { lstat, readdir, readFile, realpath } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import { PluginLoadError } from '../../errors.js';

/** Files of a plugin folder copied into the sandbox's in-memory file system. */
export const PYTHON_PLUGIN_FILES = new Set(['.py', '.json', '.txt', '.csv', '.toml', '.cfg']);

export interface PluginFileLimits {
  /** Most files copied (default 512). */
  maxFiles?: number;
  /** Most bytes copied in all (default 8 MiB). */
  maxBytes?: number;
}

/**
 * Reads the text files of a Python plugin's folder (`.py` and data files; dot-files,
 * `__pycache__` and `node_modules` skipped), each resolved through symlinks and refused if it
 * leaves the folder, within file-count and byte caps. The entry point must be a `.py` file
 * among them. Paths come back relative to the folder, with `/`.
 *
 * @example
 * const files = await readPythonPlugin('plugins/data-visualizer', 'main.py', 'data-visualizer');
 * files.map((f) => f.path); // ['chart.py', 'main.py', 'plugin.json', 'stats.py']
 */
export async function readPythonPlugin(
  dir: string,
  entryPoint: string,
  pluginId: string,
  { maxFiles = 512, maxBytes = 8 * 2 ** 20 }: PluginFileLimits = {},
): Promise<{ path: string; text: string }[]> {
  const fail = (why: string, cause?: unknown) => new PluginLoadError(`Plugin '${pluginId}' ${why}.`, { pluginId, cause });
  if (extname(entryPoint) !== '.py') throw fail(`entry point '${entryPoint}' is not a .py file`);
  let root: string;
  try {
    root = await realpath(dir);
  } catch (e) {
    throw fail(`folder cannot be read (${(e as Error).message})`, e);
  }
  const files: { path: string; text: string }[] = [];
  let bytes = 0;
  const walk = async (folder: string, depth: number): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === '__pycache__' || entry.name === 'node_modules') continue;
      const full = join(folder, entry.name);
      const real = await realpath(full).catch(() => undefined);
      if (!real) continue;
      const inside = relative(root, real);
      if (inside.startsWith('..') || isAbsolute(inside)) throw fail(`file '${relative(root, full)}' resolves outside the plugin folder`);
      const info = await lstat(real);
      if (info.isDirectory() && depth < 8) await walk(real, depth + 1);
      if (!info.isFile() || !PYTHON_PLUGIN_FILES.has(extname(entry.name))) continue;
      if (files.length >= maxFiles) throw fail(`has more than ${maxFiles} files`);
      bytes += info.size;
      if (bytes > maxBytes) throw fail(`has more than ${maxBytes} bytes of files`);
      files.push({ path: relative(root, full).split(sep).join('/'), text: await readFile(real, 'utf8') });
    }
  };
  await walk(root, 0);
  const entry = entryPoint.replace(/^\.\//, '');
  if (!files.some((f) => f.path === entry)) throw fail(`entry point '${entryPoint}' does not exist`);
  return files;
}
