import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { signPlugin } from '../../registry/integrity.js';
import { printer, type CliIO } from '../io.js';

/**
 * `logomesh sign <dir> --key <private.pem>`: hashes every file of the plugin and signs its
 * manifest, rewriting `plugin.json`.
 *
 * @example
 * await signCommand('plugins/hello', { key: 'logomesh-private.pem' }, processIO());
 * // signed hello@1.0.0 with key a1b2c3d4e5f60718 (3 files hashed)
 */
export async function signCommand(dir: string, options: { key: string; json?: boolean }, io: CliIO): Promise<number> {
  let pem: string;
  try {
    pem = await readFile(options.key, 'utf8');
  } catch (cause) {
    throw new InvalidArgumentError(`Cannot read the private key '${path.resolve(options.key)}'; create one with \`logomesh keygen\`.`, { cause });
  }
  const manifest = await signPlugin(dir, pem);
  const files = Object.keys(manifest.integrity?.files ?? {}).length;
  const keyId = manifest.signature?.keyId;
  const p = printer(io);
  if (options.json) p.json({ id: manifest.id, version: manifest.version, keyId, files });
  else p.out(`signed ${manifest.id}@${String(manifest.version)} with key ${keyId} (${files} file${files === 1 ? '' : 's'} hashed)`);
  return 0;
}
