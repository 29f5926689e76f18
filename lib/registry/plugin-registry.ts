/**
 * Plugin discovery and the registry of available plugins: which plugin folders exist,
 * which versions of each id, and whether one can run on this host.
 *
 * @example
 * const registry = new PluginRegistry({});
 * const { errors } = await registry.discover(['plugins']);
 * const latest = registry.getPluginInfo('acme.auth');
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { inject, injectable } from 'tsyringe';
import * as tokens from '../di/tokens.js';
import { InvalidArgumentError, PluginHostError, PluginLoadError, PluginNotFoundError } from '../errors.js';
import { PLUGIN_API_VERSION } from '../version.js';
import { readManifestFile } from './manifest.js';
import type { PluginManifest, PluginRuntimeKind, ResourceLimits } from './manifest-schema.js';

/** Name of the manifest file that marks a plugin folder. */
export const MANIFEST_FILE = 'plugin.json';

/** How deep below a search path plugin folders are looked for (`plugins/auth/1.4.0`). */
const MAX_SCAN_DEPTH = 2;

/** What the registry needs from the host options. */
export interface RegistryOptions {
  /** Maxima manifests' resource limits must stay within (default: HOST_MAXIMUM_LIMITS). */
  hostLimits?: Required<ResourceLimits>;
  /** Plugin API version this host offers (default: PLUGIN_API_VERSION). */
  apiVersion?: string;
  /** Runtimes this host can run (default: all of them). */
  supportedRuntimes?: readonly PluginRuntimeKind[];
}

/** A validated plugin found on disk. */
export interface PluginDescriptor {
  manifest: PluginManifest;
  /** Absolute real path of the plugin folder. */
  dir: string;
  /** Absolute path of its plugin.json. */
  manifestPath: string;
}

/** A folder or manifest that could not be used, and why. */
export interface DiscoveryError {
  path: string;
  error: PluginHostError;
}

/** Everything found under some search paths, in a stable order. */
export interface DiscoveryResult {
  plugins: PluginDescriptor[];
  errors: DiscoveryError[];
}

/** Whether a plugin can run here; `reasons` says why not. */
export interface CompatibilityReport {
  compatible: boolean;
  reasons: string[];
}

/** The catalog of available plugins, by id and version. */
export interface IPluginRegistry {
  /** Discovers plugins under `searchPaths` and registers every valid one. */
  discover(searchPaths: string[]): Promise<DiscoveryResult>;
  /** Registers a descriptor, or reads and validates the plugin folder at the given path. */
  registerPlugin(descriptorOrDir: PluginDescriptor | string): Promise<PluginDescriptor>;
  /** Removes one version, or every version when `version` is omitted; false if none matched. */
  unregisterPlugin(id: string, version?: string): boolean;
  /** The highest version matching `version` (exact or range), or the latest; throws PluginNotFoundError. */
  getPluginInfo(id: string, version?: string): PluginDescriptor;
  /** The latest version of each plugin, sorted by id. */
  listAvailablePlugins(): PluginDescriptor[];
  /** Registered versions of `id`, highest first. */
  getAvailableVersions(id: string): string[];
  /** Whether the plugin's API range, runtime and required dependencies are satisfied here. */
  checkCompatibility(id: string, version?: string): CompatibilityReport;
}
/** Injection token of {@link IPluginRegistry} (the same symbol as in `di/tokens.ts`). */
export const IPluginRegistry: typeof tokens.IPluginRegistry = tokens.IPluginRegistry;

/**
 * Reads and validates the plugin folder `dir`.
 *
 * @example
 * const { manifest, dir } = await readPluginDescriptor('plugins/hello');
 */
export async function readPluginDescriptor(dir: string, options: RegistryOptions = {}): Promise<PluginDescriptor> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (cause) {
    const message = `Plugin folder '${path.resolve(dir)}' does not exist. Pass the folder that holds ${MANIFEST_FILE}.`;
    throw new InvalidArgumentError(message, { cause });
  }
  const manifestPath = path.join(real, MANIFEST_FILE);
  const manifest = await readManifestFile(manifestPath, options);
  return { manifest, dir: real, manifestPath };
}

/**
 * Finds plugin folders (folders holding a plugin.json) under each search path: the path
 * itself, or its subfolders up to two levels deep, skipping `node_modules` and dot-folders
 * and never looking inside a plugin folder. Nothing throws: missing paths and invalid
 * manifests come back in `errors`.
 *
 * @example
 * const { plugins, errors } = await discoverPlugins(['plugins', '/opt/logomesh/plugins']);
 */
export async function discoverPlugins(searchPaths: string[], options: RegistryOptions = {}): Promise<DiscoveryResult> {
  const errors: DiscoveryError[] = [];
  const dirs = new Set<string>();
  for (const searchPath of searchPaths) {
    const absolute = path.resolve(searchPath);
    const real = await realpath(absolute).catch(() => undefined);
    if (!real || !(await isDirectory(real))) {
      const message = `Plugin search path '${absolute}' is not a folder. Create it or remove it from the search paths.`;
      errors.push({ path: absolute, error: new InvalidArgumentError(message) });
      continue;
    }
    await scan(real, 0, dirs, errors);
  }
  const plugins: PluginDescriptor[] = [];
  for (const dir of dirs) {
    try {
      plugins.push(await readPluginDescriptor(dir, options));
    } catch (error) {
      errors.push({ path: path.join(dir, MANIFEST_FILE), error: asHostError(error, dir) });
    }
  }
  return { plugins: plugins.sort(byIdThenVersion), errors: errors.sort(byPath) };
}

/** Collects the real paths of plugin folders at or below `dir`. */
async function scan(dir: string, depth: number, found: Set<string>, errors: DiscoveryError[]): Promise<void> {
  if (await isFile(path.join(dir, MANIFEST_FILE))) {
    found.add(dir);
    return;
  }
  if (depth === MAX_SCAN_DEPTH) return;
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (error) {
    errors.push({ path: dir, error: asHostError(error, dir) });
    return;
  }
  for (const name of names) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    // realpath so a folder reached through a symlink and directly is found once.
    const child = await realpath(path.join(dir, name)).catch(() => undefined);
    if (child && (await isDirectory(child))) await scan(child, depth + 1, found, errors);
  }
}

/**
 * The in-memory registry of available plugins. Several versions of one id may coexist;
 * one id and version may come from one folder only.
 *
 * @example
 * container.register(IHostOptions, { useValue: { apiVersion: '1.0.0' } });
 * const registry = container.resolve(PluginRegistry);
 * await registry.discover(['plugins']);
 * registry.checkCompatibility('acme.auth'); // { compatible: true, reasons: [] }
 */
@injectable()
export class PluginRegistry implements IPluginRegistry {
  readonly #plugins = new Map<string, Map<string, PluginDescriptor>>();

  constructor(@inject(tokens.IHostOptions) private readonly options: RegistryOptions = {}) {}

  async discover(searchPaths: string[]): Promise<DiscoveryResult> {
    const found = await discoverPlugins(searchPaths, this.options);
    const plugins: PluginDescriptor[] = [];
    const errors = [...found.errors];
    for (const descriptor of found.plugins) {
      try {
        plugins.push(this.#add(descriptor));
      } catch (error) {
        errors.push({ path: descriptor.manifestPath, error: asHostError(error, descriptor.dir) });
      }
    }
    return { plugins, errors: errors.sort(byPath) };
  }

  /** A descriptor is trusted as validated (as `discoverPlugins` returns them); a folder path is read and validated. */
  async registerPlugin(descriptorOrDir: PluginDescriptor | string): Promise<PluginDescriptor> {
    const descriptor = typeof descriptorOrDir === 'string'
      ? await readPluginDescriptor(descriptorOrDir, this.options)
      : descriptorOrDir;
    return this.#add(descriptor);
  }

  unregisterPlugin(id: string, version?: string): boolean {
    const versions = this.#plugins.get(id);
    if (!versions) return false;
    if (version === undefined) return this.#plugins.delete(id);
    const removed = versions.delete(version);
    if (versions.size === 0) this.#plugins.delete(id);
    return removed;
  }

  getPluginInfo(id: string, version?: string): PluginDescriptor {
    const versions = this.#plugins.get(id);
    const available = this.getAvailableVersions(id);
    const chosen = version === undefined ? latest(available) : semver.maxSatisfying(available, version);
    if (!versions || !chosen) {
      const what = version === undefined
        ? 'is not registered; run discover() on the folder that holds it'
        : `has no registered version matching '${version}' (available: ${available.join(', ') || 'none'})`;
      throw new PluginNotFoundError(id, what);
    }
    return versions.get(chosen)!;
  }

  listAvailablePlugins(): PluginDescriptor[] {
    return [...this.#plugins.keys()].sort().map((id) => this.getPluginInfo(id));
  }

  getAvailableVersions(id: string): string[] {
    return semver.rsort([...(this.#plugins.get(id)?.keys() ?? [])]);
  }

  checkCompatibility(id: string, version?: string): CompatibilityReport {
    const { manifest } = this.getPluginInfo(id, version);
    const reasons: string[] = [];
    const api = this.options.apiVersion ?? PLUGIN_API_VERSION;
    if (!semver.satisfies(api, manifest.apiVersion)) {
      reasons.push(`needs plugin API ${manifest.apiVersion} but this host offers ${api}`);
    }
    const runtimes = this.options.supportedRuntimes ?? ['nodejs', 'python', 'wasm'];
    if (!runtimes.includes(manifest.runtime)) {
      reasons.push(`runtime '${manifest.runtime}' is not supported by this host (supported: ${runtimes.join(', ')})`);
    }
    for (const dep of manifest.dependencies ?? []) {
      if (dep.optional) continue;
      const available = this.getAvailableVersions(dep.id);
      if (available.length === 0) {
        reasons.push(`needs plugin '${dep.id}' ${dep.version}, which is not available`);
      } else if (!semver.maxSatisfying(available, dep.version)) {
        const only = `${available.join(', ')} ${available.length === 1 ? 'is' : 'are'}`;
        reasons.push(`needs plugin '${dep.id}' ${dep.version}, but only ${only} available`);
      }
    }
    return { compatible: reasons.length === 0, reasons };
  }

  #add(descriptor: PluginDescriptor): PluginDescriptor {
    const { id, version } = descriptor.manifest;
    if (semver.valid(version) !== version) {
      const message = `Plugin '${id}' has version '${version}', which is not a semver version such as 1.0.0.`;
      throw new InvalidArgumentError(message, { pluginId: id });
    }
    const versions = this.#plugins.get(id) ?? new Map<string, PluginDescriptor>();
    const existing = versions.get(version);
    if (existing && existing.dir !== descriptor.dir) {
      throw new PluginLoadError(
        `Plugin '${id}' ${version} is already registered from ${existing.dir}; refusing a second copy in ${descriptor.dir}. ` +
          'Remove one of the folders or give one a different version.',
        { pluginId: id },
      );
    }
    versions.set(version, descriptor);
    this.#plugins.set(id, versions);
    return descriptor;
  }
}

/** The highest release, or the highest prerelease when there is no release. */
function latest(versionsHighestFirst: string[]): string | undefined {
  return versionsHighestFirst.find((v) => semver.prerelease(v) === null) ?? versionsHighestFirst[0];
}

/** Code-unit order, the same on every machine and locale. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byIdThenVersion(a: PluginDescriptor, b: PluginDescriptor): number {
  return compareStrings(a.manifest.id, b.manifest.id)
    || semver.rcompare(a.manifest.version, b.manifest.version)
    || compareStrings(a.dir, b.dir);
}

function byPath(a: DiscoveryError, b: DiscoveryError): number {
  return compareStrings(a.path, b.path);
}

function asHostError(error: unknown, dir: string): PluginHostError {
  if (error instanceof PluginHostError) return error;
  return new PluginLoadError(`Cannot read plugin folder ${dir}: ${(error as Error).message}`, { cause: error });
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}
