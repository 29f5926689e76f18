import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { generateKeyPair } from '../../registry/integrity.js';
import { printer, type CliIO } from '../io.js';

export const PRIVATE_KEY_FILE = 'logomesh-private.pem';
export const PUBLIC_KEY_FILE = 'logomesh-public.pem';

/**
 * `logomesh keygen [--out <dir>]`: writes a fresh ed25519 key pair, the private key readable
 * by its owner only. Existing key files are never overwritten.
 *
 * @example
 * await keygenCommand({ out: 'keys' }, processIO()); // key id a1b2c3d4e5f60718
 */
export async function keygenCommand(options: { out?: string; json?: boolean }, io: CliIO): Promise<number> {
  const dir = path.resolve(options.out ?? '.');
  const privatePath = path.join(dir, PRIVATE_KEY_FILE);
  const publicPath = path.join(dir, PUBLIC_KEY_FILE);
  for (const file of [privatePath, publicPath]) {
    if (await stat(file).catch(() => undefined)) {
      throw new InvalidArgumentError(`${file} already exists; refusing to overwrite a key. Move it away or choose another --out folder.`);
    }
  }
  const { privateKeyPem, publicKeyPem, keyId } = generateKeyPair();
  await mkdir(dir, { recursive: true });
  // 'wx' fails if the file appeared since the check above: a key is never silently replaced.
  await writeFile(privatePath, privateKeyPem, { mode: 0o600, flag: 'wx' });
  await writeFile(publicPath, publicKeyPem, { mode: 0o644, flag: 'wx' });
  const p = printer(io);
  if (options.json) {
    p.json({ keyId, privateKey: privatePath, publicKey: publicPath });
  } else {
    p.out(`key id ${keyId}`);
    p.out(`  private key: ${privatePath} (keep it secret; sign with \`logomesh sign <dir> --key ${privatePath}\`)`);
    p.out(`  public key:  ${publicPath} (give it to hosts: \`logomesh run --trusted-key ${publicPath}\`)`);
  }
  return 0;
}
