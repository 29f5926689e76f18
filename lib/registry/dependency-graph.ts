import semver from 'semver';
import { DependencyError } from '../errors.js';

/** One dependency of a plugin: an id and a semver range. */
export interface GraphDependency {
  id: string;
  /** A semver range, e.g. `^2.0.0`. */
  version: string;
  optional?: boolean;
}

/** The part of a manifest the graph needs. One entry per available `id@version`. */
export interface GraphNode {
  id: string;
  version: string;
  dependencies?: GraphDependency[];
}

export interface ResolveOptions {
  /** Ids to load. Default: every id in `available`. Their dependencies are pulled in. */
  roots?: string[];
}

/** The outcome of {@link DependencyGraph.resolve}. Nothing throws: every problem is in here. */
export interface Resolution {
  /** id → chosen version, for the plugins that can load. */
  selected: Map<string, GraphNode>;
  /** Load order of the selected ids: dependencies first, ties broken by id. Stop in reverse. */
  order: string[];
  /** id → why it cannot load (`missing`, `cycle`, `conflict`, or `failed` for a failed dependency). */
  failures: Map<string, DependencyError>;
  /** id → optional dependencies that are absent, unusable or failed; the plugin still loads. */
  missingOptional: Map<string, string[]>;
}

interface Need { by: string; range: string; optional: boolean }

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const deps = (n: GraphNode) => [...(n.dependencies ?? [])].sort((a, b) => byId(a.id, b.id));
const required = (n: GraphNode) => deps(n).filter((d) => !d.optional);

/**
 * Chooses one version per plugin id and a load order.
 *
 * Policy: an id gets the highest version satisfying every required range placed on it by
 * the plugins that load (iterated to a fixpoint). Among those, the version satisfying the
 * most optional ranges wins. An optional dependency that is absent, has no version in its
 * range, fails, or could only be started first by closing a cycle is reported in
 * `missingOptional` and the dependent loads without it. Input order never matters.
 *
 * @example
 * const r = new DependencyGraph().resolve([
 *   { id: 'auth', version: '2.1.0' },
 *   { id: 'workflow', version: '1.0.0', dependencies: [{ id: 'auth', version: '^2' }] },
 * ]);
 * r.order;                 // ['auth', 'workflow']
 * [...r.order].reverse();  // stop order
 */
export class DependencyGraph {
  resolve(available: GraphNode[], options: ResolveOptions = {}): Resolution {
    // Versions are valid semver (the manifest schema enforces it); anything else is skipped.
    const versions = new Map<string, GraphNode[]>();
    for (const n of available.filter((n) => semver.valid(n.version))) {
      versions.set(n.id, [...(versions.get(n.id) ?? []), n]);
    }
    for (const list of versions.values()) list.sort((a, b) => semver.rcompare(a.version, b.version));
    const matching = (d: GraphDependency) => (versions.get(d.id) ?? []).filter((n) => semver.satisfies(n.version, d.version));
    // A node with a required range nothing satisfies can never load, whatever else is chosen.
    const broken = (n: GraphNode) => required(n).some((d) => matching(d).length === 0);
    const roots = [...new Set(options.roots ?? versions.keys())].sort(byId);
    const failures = new Map<string, DependencyError>();

    // Each step re-reads the edges of the previous step's choices; `undefined` = conflict.
    let choice = new Map<string, GraphNode | undefined>();
    let needs = new Map<string, Need[]>();
    for (let i = 0; i <= available.length + 1; i++) {
      const step = this.step(roots, versions, choice, broken, matching);
      const settled = step.choice.size === choice.size && [...step.choice].every(([id, n]) => choice.get(id) === n && choice.has(id));
      [choice, needs] = [step.choice, step.needs];
      if (settled) break;
    }

    for (const id of roots) {
      if (!versions.has(id)) failures.set(id, new DependencyError('missing', `${id} was requested but is not available`, { pluginId: id }));
    }
    const chosen = (id: string) => choice.get(id);
    for (const [id, node] of [...choice].sort(([a], [b]) => byId(a, b))) {
      if (node) continue;
      const by = (needs.get(id) ?? []).filter((n) => !n.optional).sort((a, b) => byId(a.by, b.by));
      const avail = [...versions.get(id)!].reverse().map((n) => n.version).join(', ');
      const who = by.map((n) => `${n.by} needs ${id}@${n.range}`).join(', ');
      failures.set(id, new DependencyError('conflict', `${who}; available: ${avail}`, { pluginId: id }));
    }
    const candidates = [...choice.keys()].filter((id) => chosen(id)).sort(byId);
    const edges = (id: string) => required(chosen(id)!).map((d) => d.id).filter((d) => chosen(d));
    for (const id of candidates) {
      const path = shortestCycle(id, edges);
      if (path) failures.set(id, new DependencyError('cycle', `${id} is part of a dependency cycle: ${path.join(' → ')}`, { pluginId: id, path }));
    }
    for (const id of candidates.filter((id) => !failures.has(id))) {
      for (const d of required(chosen(id)!)) {
        const found = matching(d).map((n) => n.version).reverse();
        const picked = chosen(d.id);
        if (found.length === 0) {
          const avail = versions.has(d.id) ? [...versions.get(d.id)!].reverse().map((n) => n.version).join(', ') : 'none';
          failures.set(id, new DependencyError('missing', `${id} needs ${d.id}@${d.version}, which is not available (available versions: ${avail})`, { pluginId: id }));
        } else if (picked && !semver.satisfies(picked.version, d.version)) {
          // Only reachable when the version choice did not settle within the iteration bound.
          failures.set(id, new DependencyError('conflict', `${id} needs ${d.id}@${d.version}, but ${d.id}@${picked.version} was chosen for another dependent`, { pluginId: id }));
        }
        if (failures.has(id)) break;
      }
    }
    // Propagate: depends-on edges among non-failed candidates are acyclic (cycles failed above).
    const failedDep = (id: string): DependencyError | undefined => {
      if (failures.has(id) || !chosen(id)) return failures.get(id);
      for (const d of required(chosen(id)!)) {
        const cause = failedDep(d.id);
        if (cause) {
          const e = dependencyFailedError(id, d.id, cause.message, 'load');
          failures.set(id, e);
          return e;
        }
      }
      return undefined;
    };
    candidates.forEach(failedDep);

    // Select only what the roots still reach through plugins that load.
    const selected = new Map<string, GraphNode>();
    const usable = (id: string, d?: GraphDependency) => {
      const n = chosen(id);
      return !!n && !failures.has(id) && (!d || semver.satisfies(n.version, d.version));
    };
    const queue = roots.filter((id) => usable(id));
    while (queue.length) {
      const id = queue.shift()!;
      if (selected.has(id)) continue;
      selected.set(id, chosen(id)!);
      queue.push(...deps(chosen(id)!).filter((d) => usable(d.id, d)).map((d) => d.id));
    }
    const ids = [...selected.keys()].sort(byId);
    const before = new Map(ids.map((id) => [id, required(selected.get(id)!).map((d) => d.id)]));
    const missingOptional = new Map<string, string[]>();
    for (const id of ids) {
      for (const d of deps(selected.get(id)!).filter((d) => d.optional)) {
        // An optional edge that would close a cycle is dropped: the dependent loads without it.
        const ok = usable(d.id, d) && !shortestCycle(id, (x) => (x === id ? [d.id] : before.get(x)!).filter((y) => before.has(y)));
        if (ok) before.get(id)!.push(d.id);
        else missingOptional.set(id, [...(missingOptional.get(id) ?? []), d.id]);
      }
    }
    return { selected, order: topologicalOrder(ids, before), failures, missingOptional };
  }

  private step(
    roots: string[],
    versions: Map<string, GraphNode[]>,
    prev: Map<string, GraphNode | undefined>,
    broken: (n: GraphNode) => boolean,
    matching: (d: GraphDependency) => GraphNode[],
  ) {
    const needs = new Map<string, Need[]>();
    const reached = new Set<string>();
    const queue = roots.filter((id) => versions.has(id));
    while (queue.length) {
      const id = queue.shift()!;
      if (reached.has(id)) continue;
      reached.add(id);
      const node = prev.has(id) ? prev.get(id) : versions.get(id)![0];
      if (!node || broken(node)) continue;
      for (const d of deps(node).filter((d) => matching(d).length > 0)) {
        needs.set(d.id, [...(needs.get(d.id) ?? []), { by: id, range: d.version, optional: !!d.optional }]);
        queue.push(d.id);
      }
    }
    const choice = new Map<string, GraphNode | undefined>();
    for (const id of [...reached].sort(byId)) {
      const on = needs.get(id) ?? [];
      const fits = versions.get(id)!.filter((n) => on.every((x) => x.optional || semver.satisfies(n.version, x.range)));
      const score = (n: GraphNode) => on.filter((x) => x.optional && semver.satisfies(n.version, x.range)).length;
      choice.set(id, fits.reduce<GraphNode | undefined>((best, n) => (!best || score(n) > score(best) ? n : best), undefined));
    }
    return { choice, needs };
  }
}

/** Shortest path `from → … → from` along `next` (neighbours visited by id), or undefined. */
function shortestCycle(from: string, next: (id: string) => string[]): string[] | undefined {
  const parent = new Map<string, string>();
  const queue = [from];
  while (queue.length) {
    const id = queue.shift()!;
    for (const n of [...next(id)].sort(byId)) {
      if (n === from) {
        const path = [id, from];
        for (let at = id; at !== from; path.unshift(at)) at = parent.get(at)!;
        return path;
      }
      if (!parent.has(n)) { parent.set(n, id); queue.push(n); }
    }
  }
  return undefined;
}

/** Kahn's algorithm, always taking the smallest ready id. `before` maps id → ids that load first. */
function topologicalOrder(ids: string[], before: Map<string, string[]>): string[] {
  const waiting = new Map(ids.map((id) => [id, new Set(before.get(id))]));
  const order: string[] = [];
  while (waiting.size) {
    const next = [...waiting].filter(([, w]) => w.size === 0).map(([id]) => id).sort(byId)[0];
    if (next === undefined) break; // unreachable: cycles were failed or dropped above
    order.push(next);
    waiting.delete(next);
    for (const w of waiting.values()) w.delete(next);
  }
  return order;
}

/**
 * Ids among `resolution.order` that require `failedId`, directly or transitively, in load
 * order. Optional dependents are not blocked: they already run without the dependency.
 *
 * @example
 * for (const id of blockedBy(resolution, 'auth')) {
 *   host.fail(id, dependencyFailedError(id, 'auth', err.message));
 * }
 */
export function blockedBy(resolution: Resolution, failedId: string): string[] {
  const blocked = new Set([failedId]);
  for (const id of resolution.order) {
    if (required(resolution.selected.get(id)!).some((d) => blocked.has(d.id))) blocked.add(id);
  }
  return resolution.order.filter((id) => id !== failedId && blocked.has(id));
}

/**
 * The error for a plugin that cannot load or start because a required dependency failed.
 *
 * @example
 * dependencyFailedError('workflow', 'auth', 'timed out').message;
 * // "workflow cannot start: its dependency auth failed: timed out"
 */
export function dependencyFailedError(pluginId: string, dependencyId: string, reason: string, phase: 'load' | 'start' = 'start'): DependencyError {
  return new DependencyError('failed', `${pluginId} cannot ${phase}: its dependency ${dependencyId} failed: ${reason}`, { pluginId });
}
