/**
 * V8 CPU profiles as the profiler reads and writes them: the Chrome DevTools
 * `.cpuprofile` shape, normalised from what isolated-vm hands back, plus the two numbers
 * the profiler takes from them (CPU time, hottest function).
 */

/** One frame of the V8 call tree (`Runtime.CallFrame` in the DevTools protocol). */
export interface CpuCallFrame {
  functionName: string;
  url: string;
  scriptId: string | number;
  lineNumber: number;
  columnNumber: number;
}

export interface CpuProfileNode {
  id: number;
  hitCount?: number;
  children?: number[];
  callFrame: CpuCallFrame;
}

/** A V8 CPU profile (times in µs; `timeDeltas[i]` is the time from the previous sample to sample `i`). */
export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The function with the most self time in a profile. */
export interface HotFunction {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
  selfMs: number;
  /** Fraction (0–1) of the profile's CPU time. */
  share: number;
}

const IDLE: CpuCallFrame = { functionName: '(idle)', url: '', scriptId: '0', lineNumber: -1, columnNumber: -1 };

/**
 * Reads whatever a runtime's `cpuProfiler.stop()` returned: one `CpuProfile`, an array of
 * them, or isolated-vm's `ThreadCpuProfile[]` (`{threadId, profile}`), merged into one
 * profile. Anything else gives `undefined`.
 *
 * @example
 * const profile = toCpuProfile(await isolate.stopCpuProfiler('t'));
 */
export function toCpuProfile(raw: unknown): CpuProfile | undefined {
  const list = (Array.isArray(raw) ? (raw as unknown[]) : [raw]).map((p) => {
    const inner = (p as { profile?: unknown } | null)?.profile;
    return isCpuProfile(p) ? p : isCpuProfile(inner) ? inner : undefined;
  });
  if (list.length === 0 || list.some((p) => p === undefined)) return undefined;
  return mergeCpuProfiles(list as CpuProfile[]);
}

/** Whether `value` has the shape of a V8 CPU profile. */
export function isCpuProfile(value: unknown): value is CpuProfile {
  const p = value as CpuProfile | undefined;
  return (
    typeof p === 'object' && p !== null && Array.isArray(p.nodes) && Array.isArray(p.samples) &&
    Array.isArray(p.timeDeltas) && typeof p.startTime === 'number' && typeof p.endTime === 'number'
  );
}

/**
 * Merges profiles into one call tree (frames matched by path from the root), in time
 * order. The gap between two profiles becomes an `(idle)` sample, so DevTools and
 * {@link cpuTimeMs} do not charge it to the last function that ran. isolated-vm returns
 * one profile per isolate entry, so a session with several calls needs this.
 *
 * @example
 * const one = mergeCpuProfiles(threadProfiles.map((t) => t.profile));
 */
export function mergeCpuProfiles(profiles: CpuProfile[]): CpuProfile {
  const sorted = profiles.map(normaliseDeltas).sort((a, b) => a.startTime - b.startTime);
  if (sorted.length === 1) return sorted[0];
  const rootFrame = { ...IDLE, functionName: '(root)', lineNumber: 0, columnNumber: 0 };
  const root: CpuProfileNode = { id: 1, hitCount: 0, children: [], callFrame: rootFrame };
  const nodes = [root];
  const byKey = new Map<string, CpuProfileNode>();
  const childOf = (parent: CpuProfileNode, frame: CpuCallFrame): CpuProfileNode => {
    const key = `${parent.id}|${frameKey(frame)}`;
    let node = byKey.get(key);
    if (!node) {
      node = { id: nodes.length + 1, hitCount: 0, children: [], callFrame: { ...frame } };
      nodes.push(node);
      parent.children!.push(node.id);
      byKey.set(key, node);
    }
    return node;
  };
  const stamped: Array<[time: number, node: CpuProfileNode]> = [];
  let lastEnd = -Infinity;
  for (const p of sorted) {
    const mapped = new Map<number, CpuProfileNode>();
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const childIds = new Set(p.nodes.flatMap((n) => n.children ?? []));
    const stack = p.nodes.filter((n) => !childIds.has(n.id)).map((n) => [n, root] as const);
    for (let top = stack.pop(); top; top = stack.pop()) {
      const [node, mergedParent] = top;
      const merged = mergedParent === root && node.callFrame.functionName === '(root)' ? root : childOf(mergedParent, node.callFrame);
      merged.hitCount = (merged.hitCount ?? 0) + (node.hitCount ?? 0);
      mapped.set(node.id, merged);
      for (const id of node.children ?? []) if (byId.has(id)) stack.push([byId.get(id)!, merged]);
    }
    if (p.startTime > lastEnd && lastEnd > -Infinity) stamped.push([lastEnd, childOf(root, IDLE)]);
    let t = p.startTime;
    p.samples.forEach((id, i) => {
      t += p.timeDeltas[i] ?? 0;
      if (mapped.has(id)) stamped.push([t, mapped.get(id)!]);
    });
    lastEnd = Math.max(lastEnd, p.endTime);
  }
  stamped.sort((a, b) => a[0] - b[0]);
  const startTime = sorted[0].startTime;
  for (const [, n] of stamped) if (n.callFrame.functionName === '(idle)') n.hitCount = (n.hitCount ?? 0) + 1;
  return {
    nodes,
    startTime,
    endTime: lastEnd,
    samples: stamped.map(([, n]) => n.id),
    timeDeltas: stamped.map(([t], i) => t - (i === 0 ? startTime : stamped[i - 1][0])),
  };
}

/**
 * CPU time in a profile, in ms: each sample lasts until the next one (the DevTools
 * convention) and `(idle)` samples do not count; `(program)` and `(garbage collector)` do.
 *
 * @example
 * cpuTimeMs(profile); // 187.4
 */
export function cpuTimeMs(profile: CpuProfile): number {
  let us = 0;
  forEachSample(profile, (node, duration) => {
    if (node.callFrame.functionName !== '(idle)') us += duration;
  });
  return us / 1000;
}

/**
 * The JS function with the most self time (V8's own `(program)`, `(garbage collector)`,
 * `(idle)` entries excluded), or `undefined` when the profile holds no JS samples.
 *
 * @example
 * topSelfTime(profile); // { functionName: 'busyLoop', selfMs: 180, share: 0.96, … }
 */
export function topSelfTime(profile: CpuProfile): HotFunction | undefined {
  const self = new Map<string, { frame: CpuCallFrame; us: number }>();
  let total = 0;
  forEachSample(profile, (node, duration) => {
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') return;
    total += duration;
    if (frame.url === '' && /^\(.*\)$/.test(frame.functionName)) return;
    const key = frameKey(frame);
    const entry = self.get(key) ?? { frame, us: 0 };
    entry.us += duration;
    self.set(key, entry);
  });
  const top = [...self.values()].sort((a, b) => b.us - a.us)[0];
  if (!top || total <= 0) return undefined;
  const { functionName, url, lineNumber, columnNumber } = top.frame;
  return { functionName: functionName || '(anonymous)', url, lineNumber, columnNumber, selfMs: top.us / 1000, share: top.us / total };
}

function forEachSample(profile: CpuProfile, visit: (node: CpuProfileNode, durationUs: number) => void): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let t = profile.startTime;
  const stamps = profile.timeDeltas.map((d) => (t += d));
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const next = i + 1 < stamps.length ? stamps[i + 1] : Math.max(profile.endTime, stamps[i]);
    if (node) visit(node, Math.max(0, next - stamps[i]));
  });
}

/**
 * isolated-vm 5.0.4 fills `timeDeltas` with offsets from `startTime` instead of deltas.
 * Real deltas sum to at most the profile's span; offsets overshoot it, which is how the
 * two are told apart. Also makes `scriptId` a string, as the DevTools protocol has it.
 */
function normaliseDeltas(p: CpuProfile): CpuProfile {
  const sum = p.timeDeltas.reduce((a, b) => a + b, 0);
  const monotonic = p.timeDeltas.every((d, i) => i === 0 || d >= p.timeDeltas[i - 1]);
  const offsets = monotonic && sum > p.endTime - p.startTime + 1000;
  const timeDeltas = offsets ? p.timeDeltas.map((d, i) => d - (i === 0 ? 0 : p.timeDeltas[i - 1])) : [...p.timeDeltas];
  const lastSample = p.startTime + (offsets ? (p.timeDeltas.at(-1) ?? 0) : sum);
  return {
    nodes: p.nodes.map((n) => ({ ...n, callFrame: { ...n.callFrame, scriptId: String(n.callFrame.scriptId) } })),
    startTime: p.startTime,
    // V8 may stamp the last sample a few µs after the profile's end.
    endTime: Math.max(p.endTime, lastSample),
    samples: [...p.samples],
    timeDeltas,
  };
}

function frameKey(f: CpuCallFrame): string {
  return `${f.functionName}|${f.url}|${f.scriptId}|${f.lineNumber}|${f.columnNumber}`;
}
