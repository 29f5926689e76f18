import { realpathSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { ImportRefusedError } from '../../errors.js';

/** The one bare specifier a plugin may import. */
export const SDK_SPECIFIER = '@logomesh/plugin-host/sdk';

export type ResolvedImport = { kind: 'sdk' } | { kind: 'file'; path: string };

/** Source file extensions a plugin module may have. */
export const MODULE_EXTENSIONS = ['.js', '.mjs', '.ts', '.mts'];

/**
 * Resolves an import inside a plugin. Only the SDK and files inside the plugin's own folder
 * resolve: `node:*`, bare packages, URLs, absolute paths and anything whose real path (after
 * symlinks) leaves the folder are refused with `ImportRefusedError`. TypeScript's convention
 * of importing `./util.js` for `./util.ts` is honoured.
 *
 * @example
 * resolveImport('./util.js', '/plugins/a/index.ts', '/plugins/a'); // { kind: 'file', path: '/plugins/a/util.ts' }
 */
export function resolveImport(specifier: string, importer: string, root: string, pluginId?: string): ResolvedImport {
  const refuse = (reason: string) => new ImportRefusedError(specifier, relative(root, importer) || importer, reason, { pluginId });
  if (specifier === SDK_SPECIFIER) return { kind: 'sdk' };
  if (specifier.includes('\0')) throw refuse('it contains a NUL byte');
  if (specifier.startsWith('node:')) throw refuse('Node.js built-in modules are not available to plugins');
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) {
    throw refuse(isAbsolute(specifier) ? 'absolute paths are not allowed' : 'packages cannot be imported');
  }
  const wanted = resolve(dirname(importer), specifier);
  const candidates = [wanted];
  const ext = extname(wanted);
  if (ext === '.js') candidates.push(wanted.slice(0, -3) + '.ts');
  if (ext === '.mjs') candidates.push(wanted.slice(0, -4) + '.mts');
  if (ext === '') candidates.push(...MODULE_EXTENSIONS.map((e) => wanted + e));
  const found = candidates.find((c) => statSync(c, { throwIfNoEntry: false })?.isFile());
  if (!found) throw refuse('no such file in the plugin folder');
  const real = realpathSync(found);
  if (!isInside(real, root)) throw refuse('it resolves outside the plugin folder');
  if (!MODULE_EXTENSIONS.includes(extname(real))) throw refuse(`'${extname(real)}' files are not modules`);
  return { kind: 'file', path: real };
}

/** True when `path` is `root` or below it (no sibling-prefix confusion: `/a/b` is not inside `/a/bc`). */
export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}
