import { join } from 'node:path';
import type { PluginHost } from '../lib/index.js';
import { benchHost } from './bench-host.js';
import { copyFixture } from './plugin-copies.js';
import { rawModuleIsolate, type RawModuleIsolate } from './raw-isolate.js';

/**
 * A growing set of idle sandboxes: our plugins (in a default host, or in one created with
 * `monitoring: { enabled: false }`: `unmonitored`), or the raw baseline's bare isolates.
 */
export interface Fleet {
  readonly kind: 'ours' | 'unmonitored' | 'raw';
  readonly size: number;
  /** When the host was created (Date.now()): its metrics and heartbeat timers count from here. Ours only. */
  readonly hostCreatedAt?: number;
  /** Adds `count` more, each loaded (and for ours, started) before this resolves. */
  add(count: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Copies of the JS echo plugin (ids `idle-0`, `idle-1`, …) loaded and started in one host,
 * with monitoring at its defaults (metrics sampled every 1 s, health heartbeat every 30 s)
 * or, for `monitoring = false`, created with `monitoring: { enabled: false }`.
 *
 * @example
 * const fleet = await pluginFleet(tmp, 100); await fleet.add(100);
 */
export async function pluginFleet(tmp: string, capacity: number, monitoring = true): Promise<Fleet> {
  const hostCreatedAt = Date.now();
  const host: PluginHost = await benchHost(tmp, monitoring ? {} : { monitoring: { enabled: false } });
  // Copied up front, so the file writes are not inside any measurement.
  const dirs: string[] = [];
  for (let i = 0; i < capacity; i++) dirs.push(await copyFixture('echo-js', join(tmp, 'plugins'), `idle-${i}`));
  let size = 0;
  return {
    kind: monitoring ? 'ours' : 'unmonitored',
    hostCreatedAt,
    get size() {
      return size;
    },
    async add(count) {
      for (let i = 0; i < count; i++) {
        if (size >= capacity) throw new Error(`pluginFleet: only ${capacity} plugin copies were made`);
        const { id } = await host.load(dirs[size]);
        await host.start(id);
        size++;
      }
    },
    close: () => host.close(),
  };
}

/**
 * Bare isolates, each with a context and the trivial module evaluated in it.
 *
 * @example
 * const fleet = rawFleet(); await fleet.add(100);
 */
export function rawFleet(): Fleet {
  const isolates: RawModuleIsolate[] = [];
  return {
    kind: 'raw',
    get size() {
      return isolates.length;
    },
    async add(count) {
      for (let i = 0; i < count; i++) isolates.push(await rawModuleIsolate());
    },
    async close() {
      for (const raw of isolates) if (!raw.isolate.isDisposed) raw.isolate.dispose();
    },
  };
}
