/**
 * Writes `schemas/plugin-manifest.schema.json` from the TypeBox manifest schema.
 * Run after changing `lib/registry/manifest-schema.ts`; a spec fails while the committed
 * file is stale.
 *
 * @example
 * // node dist/scripts/write-schema.js [output-path]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { manifestJsonSchema } from '../lib/registry/manifest-schema.js';

/** Relative to the repository root. */
export const SCHEMA_FILE = 'schemas/plugin-manifest.schema.json';

/**
 * The exact text of the schema file.
 *
 * @example
 * readFileSync(SCHEMA_FILE, 'utf8') === manifestSchemaText(); // true when up to date
 */
export function manifestSchemaText(): string {
  return JSON.stringify(manifestJsonSchema(), null, 2) + '\n';
}

/** The nearest folder at or above `from` holding this package's package.json. */
export function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === '@logomesh/plugin-host') return dir;
    if (path.dirname(dir) === dir) throw new Error(`No @logomesh/plugin-host package.json above ${from}`);
  }
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  const out = process.argv[2] ?? path.join(findRepoRoot(path.dirname(self)), SCHEMA_FILE);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, manifestSchemaText());
  console.log(`wrote ${out}`);
}
