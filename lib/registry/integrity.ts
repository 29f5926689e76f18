import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, InvalidArgumentError, ManifestError, SignatureError } from '../errors.js';
import { canonicalJson } from './canonical-json.js';

/** sha256 of every file in a plugin folder, keyed by posix path relative to the folder. */
export interface PluginIntegrity {
  algorithm: 'sha256';
  files: Record<string, string>;
}

/** An ed25519 signature over {@link signaturePayload}; `keyId` is {@link keyIdOf} the signer. */
export interface PluginSignature {
  algorithm: 'ed25519';
  keyId: string;
  value: string;
}

/**
 * The parts of `plugin.json` this module reads; every other field is signed as is.
 *
 * @example
 * const manifest: SignableManifest = { id: 'hello', version: '1.0.0' };
 */
export type SignableManifest = {
  id?: string;
  integrity?: PluginIntegrity;
  signature?: PluginSignature;
  [key: string]: unknown;
};

/**
 * What the host accepts. `trustedKeys` are PEM public keys (see {@link loadTrustedKeys}).
 *
 * @example
 * const policy: TrustPolicy = { requireSignature: true, trustedKeys: loadTrustedKeys(['keys/acme.pub.pem']) };
 */
export interface TrustPolicy {
  requireSignature?: boolean;
  trustedKeys?: string[];
}

/**
 * Outcome of {@link verifyPlugin} when the plugin may load; refusals throw instead.
 *
 * @example
 * const { status, keyId, warnings } = await verifyPlugin(dir, manifest, policy);
 */
export interface VerificationResult {
  status: 'verified' | 'unsigned';
  keyId?: string;
  warnings: string[];
}

/** The manifest file; it carries the hashes and the signature, so it is not hashed itself. */
export const MANIFEST_FILE = 'plugin.json';
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Hashes every regular file under `dir` (recursively) except the top-level `plugin.json`.
 * `.git` folders are skipped (VCS metadata is not part of what runs); everything else,
 * `node_modules` included, is hashed. Keys are posix relative paths in sorted order.
 * Symbolic links and special files are refused with an `IntegrityError` naming them: a
 * signed plugin must not point outside itself.
 *
 * @example
 * await hashPluginFiles('plugins/hello'); // { 'index.js': '9f86d0…', 'lib/util.js': '2c26b4…' }
 */
export async function hashPluginFiles(dir: string): Promise<Record<string, string>> {
  return hashTree(dir, undefined);
}

/**
 * The bytes that are signed: {@link canonicalJson} of the manifest without `signature`.
 * It includes `integrity`, so a signature covers every file hash.
 *
 * @example
 * sign(null, signaturePayload(manifest), privateKey);
 */
export function signaturePayload(manifest: SignableManifest): Buffer {
  const unsigned: Record<string, unknown> = { ...manifest };
  delete unsigned.signature;
  return Buffer.from(canonicalJson(unsigned), 'utf8');
}

/**
 * A fresh ed25519 key pair as PEM (spki public, pkcs8 private) with its key id.
 *
 * @example
 * const { publicKeyPem, privateKeyPem, keyId } = generateKeyPair();
 */
export function generateKeyPair(): { publicKeyPem: string; privateKeyPem: string; keyId: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey, keyId: keyIdOf(publicKey) };
}

/**
 * Key id: the first 16 hex chars of sha256 over the DER spki public key. A private key
 * (PEM or KeyObject) gives the id of its public half.
 *
 * @example
 * keyIdOf(publicKeyPem); // 'a1b2c3d4e5f60718'
 */
export function keyIdOf(publicKey: string | KeyObject): string {
  const key = typeof publicKey === 'string' || publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/**
 * Hashes the plugin's files, signs the manifest with an ed25519 private key and writes
 * `plugin.json` back (2-space JSON, existing key order kept, `integrity` and `signature`
 * last). Returns the manifest as written.
 *
 * @example
 * const manifest = await signPlugin('plugins/hello', await readFile('private.pem', 'utf8'));
 * manifest.signature?.keyId; // 'a1b2c3d4e5f60718'
 */
export async function signPlugin(dir: string, privateKeyPem: string): Promise<SignableManifest> {
  const key = parsePrivateKey(privateKeyPem);
  const file = path.join(dir, MANIFEST_FILE);
  const manifest = await readManifest(file);
  delete manifest.integrity;
  delete manifest.signature;
  const pluginId = typeof manifest.id === 'string' ? manifest.id : undefined;
  manifest.integrity = { algorithm: 'sha256', files: await hashTree(dir, pluginId) };
  manifest.signature = {
    algorithm: 'ed25519',
    keyId: keyIdOf(key),
    value: sign(null, signaturePayload(manifest), key).toString('base64'),
  };
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Checks a plugin folder against its manifest and the host's trust policy.
 *
 * - `integrity` present: every file is re-hashed; a changed, missing or unlisted file
 *   throws `IntegrityError` with those paths in `files`.
 * - `signature` present: it must come from a key in `trustedKeys`, verify over
 *   {@link signaturePayload} and be accompanied by `integrity`; otherwise `SignatureError`.
 * - no signature: refused with `SignatureError` under `requireSignature`, else
 *   `status: 'unsigned'` with a warning.
 *
 * Pass the manifest exactly as parsed from `plugin.json`: defaults filled in by a
 * validator change the signed payload and the signature will not match.
 *
 * @example
 * const manifest = JSON.parse(await readFile('plugins/hello/plugin.json', 'utf8'));
 * const result = await verifyPlugin('plugins/hello', manifest, { requireSignature: true, trustedKeys: [publicKeyPem] });
 * result.status; // 'verified'
 */
export async function verifyPlugin(
  dir: string,
  manifest: SignableManifest,
  policy: TrustPolicy = {},
): Promise<VerificationResult> {
  const pluginId = typeof manifest.id === 'string' ? manifest.id : undefined;
  const name = describe(dir, pluginId);
  const trusted = new Map<string, KeyObject>();
  (policy.trustedKeys ?? []).forEach((pem, i) => {
    const key = parsePublicKey(pem, `trustedKeys[${i}]`);
    trusted.set(keyIdOf(key), key);
  });

  const warnings: string[] = [];
  let keyId: string | undefined;
  // The signature is checked before any file is read: until it verifies, the hashes in
  // `integrity` are just claims made by whoever wrote plugin.json.
  if (manifest.signature !== undefined) {
    keyId = checkSignature(manifest, trusted, { dir, name, pluginId });
  } else if (policy.requireSignature) {
    throw new SignatureError(`${name}: unsigned plugin refused: host requires signatures; ${signHint(dir)}.`, { pluginId });
  } else {
    warnings.push(
      manifest.integrity === undefined
        ? `${name} is unsigned; it was loaded without checking who published it.`
        : `${name} has file hashes but no signature; anyone could have written them. Its publisher is not verified.`,
    );
  }
  if (manifest.integrity !== undefined) await checkIntegrity(manifest, { dir, name, pluginId });
  return keyId === undefined ? { status: 'unsigned', warnings } : { status: 'verified', keyId, warnings };
}

/**
 * Turns trusted-key entries into PEM public keys. Each entry is a PEM string or a path to
 * a PEM file (relative paths resolve against the working directory). Private keys and
 * non-ed25519 keys are refused with `InvalidArgumentError`.
 *
 * @example
 * const trustedKeys = loadTrustedKeys(['keys/acme.pub.pem', process.env.EXTRA_KEY_PEM!]);
 */
export function loadTrustedKeys(entries: string[]): string[] {
  return entries.map((entry, i) => {
    const isPem = entry.trimStart().startsWith('-----BEGIN');
    let pem = entry;
    if (!isPem) {
      try {
        pem = readFileSync(entry, 'utf8');
      } catch (cause) {
        throw new InvalidArgumentError(
          `Trusted key '${entry}' is neither a PEM string nor a readable file; pass a PEM public key or the path to one.`,
          { cause },
        );
      }
    }
    const key = parsePublicKey(pem, isPem ? `trusted key #${i}` : `trusted key file '${entry}'`);
    return key.export({ type: 'spki', format: 'pem' }) as string;
  });
}

/** The plugin being checked, as error messages name it. */
interface Subject {
  dir: string;
  name: string;
  pluginId?: string;
}

async function hashTree(root: string, pluginId: string | undefined): Promise<Record<string, string>> {
  const found: Array<[string, string]> = [];
  const walk = async (parts: string[]): Promise<void> => {
    for (const entry of await readdir(path.join(root, ...parts), { withFileTypes: true })) {
      const rel = [...parts, entry.name];
      const key = rel.join('/');
      if (entry.isDirectory()) {
        if (entry.name !== '.git') await walk(rel);
      } else if (entry.isSymbolicLink()) {
        throw new IntegrityError(
          `${describe(root, pluginId)} contains the symbolic link '${key}'; a signed plugin must not point ` +
            `outside itself. Replace the link with a copy of its target.`,
          { pluginId, files: [key] },
        );
      } else if (!entry.isFile()) {
        throw new IntegrityError(
          `${describe(root, pluginId)} contains '${key}', which is not a regular file (socket, FIFO or device); remove it.`,
          { pluginId, files: [key] },
        );
      } else if (!(parts.length === 0 && entry.name === MANIFEST_FILE)) {
        found.push([key, await sha256File(path.join(root, ...rel))]);
      }
    }
  };
  await walk([]);
  // Plain code-unit order, the same order canonicalJson writes the keys in.
  found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(found);
}

async function sha256File(file: string): Promise<string> {
  // O_NOFOLLOW: a file swapped for a symlink after the directory scan is not followed.
  const flag = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);
  return createHash('sha256').update(await readFile(file, { flag })).digest('hex');
}

async function checkIntegrity(manifest: SignableManifest, subject: Subject): Promise<void> {
  const { dir, name, pluginId } = subject;
  const expected = listedHashes(manifest.integrity, subject);
  const actual = new Map(Object.entries(await hashTree(dir, pluginId)));
  const changed: string[] = [];
  const missing: string[] = [];
  for (const [file, hash] of expected) {
    const got = actual.get(file);
    if (got === undefined) missing.push(file);
    else if (got !== hash) changed.push(file);
  }
  const unlisted = [...actual.keys()].filter((file) => !expected.has(file));
  if (changed.length + missing.length + unlisted.length === 0) return;

  const parts = [
    changed.length ? `changed: ${changed.join(', ')}` : '',
    missing.length ? `missing: ${missing.join(', ')}` : '',
    unlisted.length ? `not listed in the manifest: ${unlisted.join(', ')}` : '',
  ].filter(Boolean);
  throw new IntegrityError(
    `${name} failed its integrity check (${parts.join('; ')}). If you did not make these changes, ` +
      `reinstall the plugin from a trusted source; if you did, re-${signHint(dir)}.`,
    { pluginId, files: [...changed, ...missing, ...unlisted].sort() },
  );
}

function listedHashes(integrity: unknown, { dir, name, pluginId }: Subject): Map<string, string> {
  const malformed = (files: string[] = []) =>
    new IntegrityError(
      `${name} has a malformed 'integrity' field; it must be { "algorithm": "sha256", "files": ` +
        `{ "<path>": "<lowercase hex sha256>" } }. Re-${signHint(dir)} or reinstall it.`,
      { pluginId, files },
    );
  if (!isRecord(integrity) || integrity.algorithm !== 'sha256' || !isRecord(integrity.files)) throw malformed();
  const listed = new Map<string, string>();
  for (const [file, hash] of Object.entries(integrity.files)) {
    if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) throw malformed([file]);
    listed.set(file, hash);
  }
  return listed;
}

function checkSignature(
  manifest: SignableManifest,
  trusted: Map<string, KeyObject>,
  { dir, name, pluginId }: Subject,
): string {
  const sig: unknown = manifest.signature;
  if (!isRecord(sig) || sig.algorithm !== 'ed25519' || typeof sig.keyId !== 'string' || typeof sig.value !== 'string') {
    throw new SignatureError(
      `${name} has a malformed 'signature' field; it must be { "algorithm": "ed25519", "keyId", "value" }. Re-${signHint(dir)}.`,
      { pluginId },
    );
  }
  if (manifest.integrity === undefined) {
    throw new SignatureError(
      `${name} has a signature but no 'integrity' field, so the signature does not cover its files; re-${signHint(dir)}.`,
      { pluginId },
    );
  }
  const key = trusted.get(sig.keyId);
  if (key === undefined) {
    throw new SignatureError(
      `${name} is signed by unknown key ${sig.keyId}; add its public key to trustedKeys if you trust its publisher.`,
      { pluginId },
    );
  }
  const value = Buffer.from(sig.value, 'base64');
  if (value.length !== 64 || !verify(null, signaturePayload(manifest), key, value)) {
    throw new SignatureError(
      `${name}: signature does not match; the manifest or its files were changed after signing. ` +
        `Reinstall it from a trusted source, or re-${signHint(dir)} if you changed it on purpose.`,
      { pluginId },
    );
  }
  return sig.keyId;
}

async function readManifest(file: string): Promise<SignableManifest> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new ManifestError([{ pointer: '', message, hint: 'make plugin.json a readable JSON object' }], file, { cause });
  }
  if (!isRecord(parsed)) {
    throw new ManifestError([{ pointer: '', message: 'is not a JSON object', hint: 'wrap the manifest in { }' }], file);
  }
  return parsed as SignableManifest;
}

function parsePrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    throw new InvalidArgumentError('The signing key is not a PEM private key; use privateKeyPem from generateKeyPair().', { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new InvalidArgumentError(`The signing key is ${key.asymmetricKeyType}; plugin signatures need an ed25519 key (generateKeyPair()).`);
  }
  return key;
}

function parsePublicKey(pem: string, where: string): KeyObject {
  // createPublicKey would quietly derive a public key from a private one; a private key in
  // a trust list means it has been copied somewhere it should not be.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new InvalidArgumentError(`${where} is a private key; trust the matching public key and keep the private key with its publisher.`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new InvalidArgumentError(`${where} is not a PEM public key (-----BEGIN PUBLIC KEY-----).`, { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new InvalidArgumentError(`${where} is a ${key.asymmetricKeyType} key; plugin signatures use ed25519 keys.`);
  }
  return key;
}

function signHint(dir: string): string {
  return `sign it with \`logomesh sign ${dir} --key <private.pem>\``;
}

function describe(dir: string, pluginId: string | undefined): string {
  return pluginId === undefined ? `Plugin at ${dir}` : `Plugin '${pluginId}' (${dir})`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
