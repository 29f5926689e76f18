import { performance } from 'node:perf_hooks';
import semver from 'semver';
import { PluginHostError, PluginLoadError } from '../errors.js';
import { blockedBy, DependencyGraph, dependencyFailedError } from '../registry/dependency-graph.js';
import type { DiscoveryResult, PluginDescriptor } from '../registry/plugin-registry.js';
import type { LoadReport, PluginLoadResult } from './host-types.js';
import type { PluginState } from './lifecycle.js';

/** What `loadAll` needs from the host. */
export interface LoadSteps {
  isLoaded(id: string): boolean;
  /** Record a plugin that never got to load, so `list()` shows it with its reason. */
  recordFailure(descriptor: PluginDescriptor, error: PluginHostError): void;
  load(descriptor: PluginDescriptor): Promise<void>;
  start(id: string): Promise<void>;
  /** The host's record after trying, if it has one. */
  outcome(id: string): { state: PluginState; loadTimeMs?: number; warnings: string[] } | undefined;
}

const graph = new DependencyGraph();

/**
 * Loads and starts discovered plugins in dependency order. A plugin that fails keeps its
 * dependents from starting (each with the reason); the others load. Never throws for a
 * plugin's failure: the report says what happened to each.
 *
 * @example
 * const report = await loadInOrder(await registry.discover(dirs), steps);
 */
export async function loadInOrder(discovery: DiscoveryResult, steps: LoadSteps): Promise<LoadReport> {
  const began = performance.now();
  const results: PluginLoadResult[] = [];
  for (const { path, error } of discovery.errors) {
    results.push({ id: error.pluginId ?? path, dir: path, state: 'failed', error, warnings: [] });
  }
  const candidates = discovery.plugins.filter((d) => !steps.isLoaded(d.manifest.id));
  const resolution = graph.resolve(
    candidates.map((d) => d.manifest),
    { roots: [...new Set(candidates.map((d) => d.manifest.id))] },
  );
  const byKey = new Map(candidates.map((d) => [`${d.manifest.id}@${d.manifest.version}`, d]));
  const failures = new Map<string, PluginHostError>(resolution.failures);

  for (const [id, error] of resolution.failures) {
    const latest = candidates.filter((d) => d.manifest.id === id).sort((a, b) => semver.rcompare(a.manifest.version, b.manifest.version))[0];
    if (latest) steps.recordFailure(latest, error);
    results.push({ id, version: latest?.manifest.version, dir: latest?.dir, state: 'failed', error, warnings: [] });
  }
  for (const id of resolution.order) {
    const node = resolution.selected.get(id)!;
    const descriptor = byKey.get(`${id}@${node.version}`)!;
    const blocker = (descriptor.manifest.dependencies ?? []).find((d) => !d.optional && failures.has(d.id));
    try {
      if (blocker) throw dependencyFailedError(id, blocker.id, failures.get(blocker.id)!.message);
      await steps.load(descriptor);
      await steps.start(id);
    } catch (e) {
      const error = e instanceof PluginHostError ? e : new PluginLoadError(`Plugin '${id}': ${String(e)}`, { pluginId: id, cause: e });
      failures.set(id, error);
      if (!steps.isLoaded(id)) steps.recordFailure(descriptor, error);
      for (const dependent of blockedBy(resolution, id)) {
        if (!failures.has(dependent)) failures.set(dependent, dependencyFailedError(dependent, id, error.message));
      }
    }
    const record = steps.outcome(id);
    results.push({
      id,
      version: node.version,
      dir: descriptor.dir,
      state: record?.state ?? 'failed',
      loadTimeMs: record?.loadTimeMs,
      error: failures.get(id),
      warnings: record?.warnings ?? [],
    });
  }
  return {
    plugins: results,
    started: results.filter((r) => r.state === 'started').map((r) => r.id),
    failed: results.filter((r) => r.state !== 'started').map((r) => r.id),
    durationMs: performance.now() - began,
  };
}
