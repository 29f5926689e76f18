import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import type { PluginHostError } from '../../lib/errors.js';
import { createPluginHost, type HostOptions, type PluginHost } from '../../lib/index.js';
import type { PluginManifest, ResourceLimits } from '../../lib/registry/manifest-schema.js';
import type { GatewayPort } from '../../lib/runtimes/protocol.js';
import type { RuntimeInit } from '../../lib/runtimes/runtime.js';

/** A plugin folder written for one spec. */
export interface PluginSpec {
  id: string;
  version?: string;
  /** Source of the entry module (index.js unless `entry` says otherwise). */
  code: string;
  entry?: string;
  dependencies?: { id: string; version: string; optional?: boolean }[];
  resourceLimits?: Record<string, number>;
  capabilities?: string[];
  /** Manifest permissions; default: publish and receive every event topic. */
  permissions?: { type: string; scope: string[]; level?: string }[];
  /** Extra files, path → content. */
  files?: Record<string, string>;
  /** Extra manifest fields. */
  manifest?: Record<string, unknown>;
}

/**
 * What a runtime spec builds a WebAssembly or Python runtime with: plugin `manifest.id` in
 * `dir`, the manifest filled in around the given fields, small limits (16 MB, 5 s) under
 * `limits`, a gateway answering nothing unless one is given, and the crashes `onCrash` reported.
 *
 * @example
 * const { init, crashes } = runtimeInit({ id: 'echo', runtime: 'wasm', entryPoint: 'echo.wasm' }, dir, { limits: { executionTimeoutMs: 500 } });
 */
export function runtimeInit(
  manifest: Partial<PluginManifest> & Pick<PluginManifest, 'id' | 'runtime' | 'entryPoint'>,
  dir: string,
  options: { limits?: Partial<ResourceLimits>; gateway?: GatewayPort } = {},
): { init: RuntimeInit; crashes: PluginHostError[] } {
  const crashes: PluginHostError[] = [];
  const init: RuntimeInit = {
    pluginId: manifest.id,
    dir,
    manifest: { name: manifest.id, version: '1.0.0', apiVersion: '^1.0.0', ...manifest } as PluginManifest,
    limits: { maxMemoryMB: 16, maxCpuPercent: 50, maxNetworkKbps: 1024, maxFileHandles: 16, executionTimeoutMs: 5000, ...options.limits },
    gateway: options.gateway ?? { request: async () => undefined },
    onCrash: (e) => crashes.push(e),
  };
  return { init, crashes };
}

/** A temporary folder holding plugin folders; `cleanup()` removes it. */
export async function tempDir(prefix = 'logomesh-spec-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes a plugin folder under `root` and returns its path. */
export async function writePlugin(root: string, spec: PluginSpec, folder = spec.id): Promise<string> {
  const dir = join(root, folder);
  const entry = spec.entry ?? 'index.js';
  const manifest = {
    id: spec.id,
    name: spec.id,
    version: spec.version ?? '1.0.0',
    entryPoint: entry,
    runtime: 'nodejs',
    apiVersion: '^1.0.0',
    ...(spec.dependencies && { dependencies: spec.dependencies }),
    ...(spec.resourceLimits && { resourceLimits: spec.resourceLimits }),
    ...(spec.capabilities && { capabilities: spec.capabilities }),
    permissions: spec.permissions ?? [{ type: 'events', scope: ['**'], level: 'readwrite' }],
    ...spec.manifest,
  };
  const files: Record<string, string> = { 'plugin.json': JSON.stringify(manifest, null, 2), [entry]: spec.code, ...spec.files };
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/**
 * A JS plugin class body wrapped with SDK decorators applied as functions.
 * `exposed` names the methods to expose; `handlers` maps method → topic pattern.
 */
export function jsPlugin(body: string, exposed: string[], handlers: Record<string, string> = {}): string {
  return [
    `import { Plugin, Expose, OnEvent } from '@logomesh/plugin-host/sdk';`,
    `class P { constructor(ctx) { this.ctx = ctx; } ${body} }`,
    ...exposed.map((m) => `Expose()(P.prototype, ${JSON.stringify(m)});`),
    ...Object.entries(handlers).map(([m, p]) => `OnEvent(${JSON.stringify(p)})(P.prototype, ${JSON.stringify(m)});`),
    `export default Plugin()(P);`,
  ].join('\n');
}

export const silentLogger = pino({ level: 'silent' });

/** A host over `root` with a silent logger and a private data folder. */
export async function hostFor(root: string, options: HostOptions = {}): Promise<PluginHost> {
  return createPluginHost({ pluginDirs: [root], dataDir: join(root, '.data'), logger: silentLogger, ...options });
}

export async function cleanup(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** The error a promise rejects with; fails the spec if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/**
 * Gives each spec of the enclosing `describe` a fresh temporary folder (passed to `setRoot`),
 * and after each closes the spec's host and removes the folder.
 */
export function sandbox(setRoot: (dir: string) => void, host: () => PluginHost | undefined): void {
  let dir = '';
  beforeEach(async () => setRoot((dir = await tempDir())));
  afterEach(async () => {
    await host()?.close();
    await cleanup(dir);
  });
}
