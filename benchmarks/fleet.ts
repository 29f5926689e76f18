import { join } from 'node:path';
import type { PluginHost } from '../lib/index.js';
import { benchHost } from './bench-host.js';
import { copyFixture } from './plugin-copies.js';
import { rawModuleIsolate, type RawModuleIsolate } from './raw-isolate.js';

/** A growing set of idle sandboxes: our plugins, or the raw baseline's bare isolates. */
export interface Fleet {
  readonly kind: 'ours' | 'raw';
  readonly size: number;
  /** Adds `count` more, each loaded (and for ours, started) before this resolves. */
  add(count: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Copies of the JS echo plugin (ids `idle-0`, `idle-1`, …) loaded and started in one host.
 *
 * @example
 * const fleet = await pluginFleet(tmp, 100); await fleet.add(100);
 */
export async function pluginFleet(tmp: string, capacity: number): Promise<Fleet> {
  const host: PluginHost = await benchHost(tmp);
  // Copied up front, so the file writes are not inside any measurement.
  const dirs: string[] = [];
  for (let i = 0; i < capacity; i++) dirs.push(await copyFixture('echo-js', join(tmp, 'plugins'), `idle-${i}`));
  let size = 0;
  return {
    kind: 'ours',
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
