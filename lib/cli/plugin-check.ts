import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, ManifestError, PluginHostError, PluginLoadError, type ManifestProblem } from '../errors.js';
import { loadTrustedKeys, verifyPlugin, type SignableManifest } from '../registry/integrity.js';
import { effectiveLimits, readManifestFile } from '../registry/manifest.js';
import type { PluginManifest } from '../registry/manifest-schema.js';
import { MANIFEST_FILE } from '../registry/plugin-registry.js';
import { checkImports, type ImportProblem } from '../runtimes/js/import-check.js';
import { readPythonPlugin } from '../runtimes/python/plugin-files.js';
import { checkWasmModule } from '../runtimes/wasm/wasm-validator.js';

/** Who published the plugin, as far as this check could tell. */
export interface TrustCheck {
  /** `unchecked`: signed, but no `trustedKeys` were given to check it against. `refused`: the host would refuse it. */
  status: 'verified' | 'unsigned' | 'unchecked' | 'refused';
  keyId?: string;
  error?: PluginHostError;
}

/** Everything `logomesh validate` found out about one plugin. */
export interface PluginCheck {
  manifestPath: string;
  dir: string;
  id?: string;
  version?: string;
  /** True when the host would load it: no manifest problem, no refused import, trust not refused. */
  valid: boolean;
  manifestProblems: ManifestProblem[];
  importProblems: ImportProblem[];
  trust?: TrustCheck;
  warnings: string[];
}

/**
 * Checks a plugin the way the host would load it, without running it: the manifest (every
 * problem), every import of a JS/TS plugin, and its integrity and signature, reporting
 * instead of throwing. `target` is a plugin folder or its plugin.json.
 *
 * @example
 * const check = await checkPlugin('plugins/hello', { trustedKeys: ['keys/acme.pub.pem'] });
 * check.valid; // true
 */
export async function checkPlugin(target: string, options: { trustedKeys?: string[] } = {}): Promise<PluginCheck> {
  const { dir, manifestPath } = await locate(target);
  const raw = await readJson(manifestPath);
  const check: PluginCheck = {
    manifestPath,
    dir,
    id: typeof raw?.id === 'string' ? raw.id : undefined,
    version: typeof raw?.version === 'string' ? raw.version : undefined,
    valid: false,
    manifestProblems: [],
    importProblems: [],
    warnings: [],
  };
  let manifest: PluginManifest | undefined;
  try {
    manifest = await readManifestFile(manifestPath);
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    check.manifestProblems = error.problems;
  }
  const entry = manifest ?? checkableEntry(raw, check.manifestProblems);
  if (entry?.runtime === 'nodejs') check.importProblems = await checkImports(dir, entry);
  if (entry?.runtime === 'wasm') check.importProblems = await checkWasm(dir, entry);
  if (entry?.runtime === 'python') check.importProblems = await checkPython(dir, entry);
  if (raw) check.trust = await checkTrust(dir, raw, loadTrustedKeys(options.trustedKeys ?? []), check.warnings);
  check.valid = check.manifestProblems.length === 0 && check.importProblems.length === 0 && check.trust?.status !== 'refused';
  return check;
}

/** A WebAssembly entry point gets the checks the runtime makes before instantiating it. */
function checkWasm(dir: string, manifest: PluginManifest): Promise<ImportProblem[]> {
  return problemsOf(manifest, async () => {
    const bytes = await readFile(path.join(dir, manifest.entryPoint));
    checkWasmModule(bytes, { maxMemoryBytes: effectiveLimits(manifest).maxMemoryMB * 2 ** 20, maxTableElements: 10_000 }, manifest.id);
  });
}

/** A Python plugin's folder gets the checks the runtime makes before copying it into the sandbox. */
function checkPython(dir: string, manifest: PluginManifest): Promise<ImportProblem[]> {
  return problemsOf(manifest, () => readPythonPlugin(dir, manifest.entryPoint, manifest.id));
}

/** What a runtime's load-time check threw, as a problem with the entry point. */
async function problemsOf(manifest: PluginManifest, check: () => Promise<unknown>): Promise<ImportProblem[]> {
  try {
    await check();
    return [];
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return [{ code: e.code ?? PluginLoadError.code, file: manifest.entryPoint, message: e.message ?? String(error) }];
  }
}

async function locate(target: string): Promise<{ dir: string; manifestPath: string }> {
  const absolute = path.resolve(target);
  const info = await stat(absolute).catch(() => undefined);
  if (!info) throw new InvalidArgumentError(`'${absolute}' does not exist. Pass a plugin folder or its ${MANIFEST_FILE}.`);
  return info.isDirectory()
    ? { dir: absolute, manifestPath: path.join(absolute, MANIFEST_FILE) }
    : { dir: path.dirname(absolute), manifestPath: absolute };
}

/** The manifest as parsed, before validation: what integrity checks and signatures are over. */
async function readJson(file: string): Promise<SignableManifest | undefined> {
  try {
    const value: unknown = JSON.parse((await readFile(file, 'utf8')).replace(/^\uFEFF/, ''));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as SignableManifest) : undefined;
  } catch {
    return undefined; // readManifestFile reports why.
  }
}

/** An invalid manifest's imports are still worth checking when its entry point and runtime are sound. */
function checkableEntry(raw: SignableManifest | undefined, problems: ManifestProblem[]): PluginManifest | undefined {
  const unsound = problems.some((p) => p.pointer === '/entryPoint' || p.pointer === '/runtime' || p.pointer === '');
  if (!raw || unsound || typeof raw.entryPoint !== 'string') return undefined;
  return raw as unknown as PluginManifest;
}

async function checkTrust(dir: string, raw: SignableManifest, trustedKeys: string[], warnings: string[]): Promise<TrustCheck> {
  const signature = raw.signature as { keyId?: unknown } | undefined;
  const keyId = typeof signature?.keyId === 'string' ? signature.keyId : undefined;
  try {
    if (keyId !== undefined && trustedKeys.length === 0) {
      // Nothing to check the signature against; the files can still be checked against their hashes.
      await verifyPlugin(dir, { ...raw, signature: undefined });
      warnings.push(`signed by key ${keyId}, not checked: pass --trusted-key <public.pem> to verify the signature`);
      return { status: 'unchecked', keyId };
    }
    const result = await verifyPlugin(dir, raw, { trustedKeys });
    warnings.push(...result.warnings);
    return { status: result.status, keyId: result.keyId };
  } catch (error) {
    if (!(error instanceof PluginHostError)) throw error;
    return { status: 'refused', keyId, error };
  }
}
