import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PyodideCodeCache } from './realm.js';

/** What a load gets from the cache: a snapshot to restore, or the job of making one. */
export interface SnapshotLease {
  snapshot?: Uint8Array;
  /** True when this load should boot cold and take the snapshot (`makeSnapshot`). */
  make: boolean;
  /** Hands back the snapshot the load made (or undefined if it failed); waiting loads go on. */
  offer(snapshot: Uint8Array | undefined): void;
}

/** The files whose contents a snapshot depends on, next to this module in the compiled output. */
const SNAPSHOT_INPUTS = ['./realm.js', './realm-inner.js', './sdk.js', './worker.js'];

/**
 * Pyodide memory snapshots, one per Pyodide build and sandbox version: a booted interpreter
 * (sealed realm, SDK, no plugin code) restores in a fraction of a cold boot. The first Python
 * load boots cold and makes the snapshot while other loads wait for it (one cold boot, not one
 * per plugin); later loads restore it. With a directory the snapshot is also kept on disk
 * (`<dataDir>/cache/pyodide/<key>.snapshot`), so a restarted host skips the cold boot too. The
 * key hashes the Pyodide version and the sandbox's own code, so an upgrade never restores a
 * stale snapshot. The snapshot is kept in a SharedArrayBuffer: load tasks hand it to their
 * worker without a copy each.
 *
 * It also keeps V8's code cache of Pyodide's scripts ({@link keepCodeCache}), in memory only:
 * it is bytecode V8 trusts, so it is only ever taken from a realm of this process.
 *
 * @example
 * const lease = await snapshots.acquire();
 * const reply = await boot({ snapshot: lease.snapshot, makeSnapshot: lease.make });
 * lease.offer(reply.snapshot);
 */
export class SnapshotCache {
  /** The snapshot in memory is shared by every host of the process: its key is the same for all. */
  private static snapshot?: Uint8Array;
  private static making?: Promise<void>;
  private static key?: Promise<string>;
  private static code?: PyodideCodeCache;
  /** Bumped by forget(): a cache reads the disk again after it. */
  private static generation = 0;
  private fromDisk?: { generation: number; read: Promise<void> };

  constructor(private readonly dir?: string) {}

  /** Whether the process holds a snapshot in memory. */
  static get held(): boolean {
    return SnapshotCache.snapshot !== undefined;
  }

  /** Drops the in-memory snapshot (≈ 20 MB) and code cache; the next load reads it from disk or makes it again. */
  static forget(): void {
    SnapshotCache.snapshot = undefined;
    SnapshotCache.code = undefined;
    SnapshotCache.generation++;
  }

  /** V8's code cache of Pyodide's scripts, once a load made one. */
  codeCache(): PyodideCodeCache | undefined {
    return SnapshotCache.code;
  }

  /** Keeps the code cache a load made (the first one offered). */
  keepCodeCache(cache: PyodideCodeCache | undefined): void {
    if (!cache || SnapshotCache.code || !(cache.asm?.byteLength > 0) || !(cache.loader?.byteLength > 0)) return;
    SnapshotCache.code = { asm: shared(cache.asm), loader: shared(cache.loader) };
  }

  async acquire(): Promise<SnapshotLease> {
    for (;;) {
      if (!SnapshotCache.snapshot && this.dir) {
        if (this.fromDisk?.generation !== SnapshotCache.generation) this.fromDisk = { generation: SnapshotCache.generation, read: this.readDisk() };
        await this.fromDisk.read;
      }
      if (SnapshotCache.snapshot) return { snapshot: SnapshotCache.snapshot, make: false, offer: () => undefined };
      if (SnapshotCache.making) {
        await SnapshotCache.making;
        continue;
      }
      let done!: () => void;
      SnapshotCache.making = new Promise((resolve) => (done = resolve));
      return {
        make: true,
        offer: (snapshot) => {
          if (snapshot && snapshot.byteLength > 0) {
            SnapshotCache.snapshot = shared(snapshot);
            void this.writeDisk(snapshot);
          }
          SnapshotCache.making = undefined;
          done();
        },
      };
    }
  }

  /** The snapshot's identity: Pyodide's version and the sandbox code it was taken with. */
  keyOf(): Promise<string> {
    return (SnapshotCache.key ??= (async () => {
      const hash = createHash('sha256');
      const pyodide = createRequire(import.meta.url)('pyodide/package.json') as { version: string };
      hash.update(`pyodide@${pyodide.version}\n`);
      for (const file of SNAPSHOT_INPUTS) hash.update(await readFile(fileURLToPath(new URL(file, import.meta.url))));
      return hash.digest('hex').slice(0, 32);
    })());
  }

  private async readDisk(): Promise<void> {
    try {
      const bytes = await readFile(join(this.dir!, `${await this.keyOf()}.snapshot`));
      if (!SnapshotCache.snapshot && bytes.byteLength > 0) SnapshotCache.snapshot = shared(bytes);
    } catch {
      // No snapshot on disk yet: the first load makes one.
    }
  }

  private async writeDisk(snapshot: Uint8Array): Promise<void> {
    if (!this.dir) return;
    try {
      await mkdir(this.dir, { recursive: true });
      const file = join(this.dir, `${await this.keyOf()}.snapshot`);
      // Written aside, then renamed: a reader never sees half a snapshot.
      await writeFile(`${file}.${process.pid}.tmp`, snapshot);
      await rename(`${file}.${process.pid}.tmp`, file);
    } catch {
      // A cache that cannot be written only costs the next process a cold boot.
    }
  }
}

/** A copy of `bytes` in a SharedArrayBuffer (structured clone shares it instead of copying it). */
function shared(bytes: Uint8Array): Uint8Array {
  if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
  const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  out.set(bytes);
  return out;
}
