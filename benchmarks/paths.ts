import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root, found by walking up from this compiled file, so the benchmarks run the
 * same from `dist/` (`npm run bench`) and from any other `--outDir`.
 *
 * @example
 * join(packageRoot(), 'benchmarks', 'results'); // where results.json is written
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === '@logomesh/plugin-host') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('benchmarks: cannot find the @logomesh/plugin-host package root above ' + import.meta.url);
    dir = parent;
  }
}

/** A fixture plugin folder in the source tree (`benchmarks/fixtures/<name>`). */
export function fixtureDir(name: string): string {
  return join(packageRoot(), 'benchmarks', 'fixtures', name);
}

/** Where a run writes results.json and RESULTS.md. */
export function resultsDir(): string {
  return join(packageRoot(), 'benchmarks', 'results');
}
