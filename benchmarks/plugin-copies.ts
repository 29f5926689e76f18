import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fixtureDir } from './paths.js';

/**
 * Copies the fixture plugin `fixture` to `<into>/<id>` under the manifest id `id`, so one
 * fixture can be loaded many times side by side.
 *
 * @example
 * const dir = await copyFixture('echo-js', tmp, 'echo-7'); // host.load(dir) → plugin 'echo-7'
 */
export async function copyFixture(fixture: string, into: string, id: string): Promise<string> {
  const dir = join(into, id);
  await cp(fixtureDir(fixture), dir, { recursive: true });
  const manifestPath = join(dir, 'plugin.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  delete manifest.$schema;
  await writeFile(manifestPath, JSON.stringify({ ...manifest, id }, null, 2));
  return dir;
}
