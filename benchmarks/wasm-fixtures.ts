import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { fixtureDir } from './paths.js';
import { copyFixture } from './plugin-copies.js';

const compiled = new Map<string, Promise<Uint8Array>>();

/**
 * The binary of `benchmarks/fixtures/<fixture>/<file>.wat`, compiled once per process with wabt.
 *
 * @example
 * const bytes = await watModule('extism-upper', 'upper.wat');
 */
export function watModule(fixture: string, file: string): Promise<Uint8Array> {
  const key = `${fixture}/${file}`;
  let bytes = compiled.get(key);
  if (!bytes) {
    bytes = (async () => {
      const wabt = await wabtInit();
      const module = wabt.parseWat(file, await readFile(join(fixtureDir(fixture), file), 'utf8'));
      try {
        return new Uint8Array(module.toBinary({}).buffer);
      } finally {
        module.destroy();
      }
    })();
    compiled.set(key, bytes);
  }
  return bytes;
}

/** Our ABI's upper-case plugin, as bytes (the same module the host loads). */
export const upperModule = () => watModule('wasm-upper', 'upper.wat');

/** The Extism-ABI plugin doing the same work. */
export const extismUpperModule = () => watModule('extism-upper', 'upper.wat');

/**
 * A copy of the `wasm-upper` fixture plugin under id `id` in `<into>/<id>`, with its
 * plugin.wasm compiled: ready for `host.load(dir)`.
 *
 * @example
 * await host.load(await wasmPluginCopy(join(tmp, 'plugins'), 'wasm-bench'));
 */
export async function wasmPluginCopy(into: string, id: string): Promise<string> {
  const dir = await copyFixture('wasm-upper', into, id);
  await writeFile(join(dir, 'plugin.wasm'), await upperModule());
  return dir;
}
