import path from 'node:path';
import { ManifestError, type PluginHostError } from '../../errors.js';
import { discoverPlugins, type PluginDescriptor } from '../../registry/plugin-registry.js';
import { printer, type CliIO } from '../io.js';
import { renderTable } from '../table.js';

/** Every version of one plugin id that was found, highest first. */
interface Listed {
  id: string;
  versions: PluginDescriptor[];
}

/**
 * `logomesh list [dirs...]`: the plugins under `dirs`, one line per id with its versions,
 * runtime and folder, then the invalid ones with their first problem. Exit code 1 when
 * any is invalid.
 *
 * @example
 * await listCommand(['plugins'], {}, processIO());
 */
export async function listCommand(dirs: string[], options: { json?: boolean }, io: CliIO): Promise<number> {
  const { plugins, errors } = await discoverPlugins(dirs);
  const byId = new Map<string, Listed>();
  // discoverPlugins sorts by id, then version highest first.
  for (const d of plugins) {
    const entry = byId.get(d.manifest.id) ?? { id: d.manifest.id, versions: [] };
    entry.versions.push(d);
    byId.set(d.manifest.id, entry);
  }
  const listed = [...byId.values()];
  const p = printer(io);
  if (options.json) {
    p.json({
      plugins: listed.map(({ id, versions }) => ({
        id,
        versions: versions.map((v) => ({ version: v.manifest.version, runtime: v.manifest.runtime, dir: v.dir })),
      })),
      invalid: errors.map((e) => ({ path: e.path, error: e.error })),
    });
  } else {
    if (listed.length === 0) p.out(`no plugins found in ${dirs.join(', ')}`);
    else renderTable(COLUMNS, listed).forEach((line) => p.out(line));
    for (const { path: where, error } of errors) p.out(`✖ ${shortPath(where)}: ${firstProblem(error)}`);
  }
  return errors.length > 0 ? 1 : 0;
}

const COLUMNS = [
  { header: 'id', value: (l: Listed) => l.id },
  { header: 'versions', value: (l: Listed) => l.versions.map((v) => v.manifest.version).join(', ') },
  { header: 'runtime', value: (l: Listed) => [...new Set(l.versions.map((v) => v.manifest.runtime))].join(', ') },
  { header: 'dir', value: (l: Listed) => l.versions.map((v) => shortPath(v.dir)).join(', ') },
];

function firstProblem(error: PluginHostError): string {
  if (error instanceof ManifestError && error.problems[0]) {
    const { pointer, message, hint } = error.problems[0];
    const more = error.problems.length > 1 ? ` (+${error.problems.length - 1} more; run \`logomesh validate\`)` : '';
    return `${pointer || '/'}: ${message} (fix: ${hint})${more}`;
  }
  return error.message.split('\n')[0]!;
}

function shortPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : p;
}
