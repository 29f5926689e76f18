import { expect } from 'chai';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotCache } from '../../../lib/runtimes/python/snapshot-cache.js';

describe('SnapshotCache (Pyodide snapshots)', () => {
  let dir: string;
  beforeEach(async () => {
    SnapshotCache.forget();
    dir = await mkdtemp(join(tmpdir(), 'logomesh-snap-'));
  });
  afterEach(async () => {
    SnapshotCache.forget();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets the first load make the snapshot while the others wait, then hands it to them', async () => {
    const cache = new SnapshotCache();
    const first = await cache.acquire();
    expect(first.make).to.equal(true);
    expect(first.snapshot).to.equal(undefined);
    let secondDone = false;
    const second = cache.acquire().then((lease) => ((secondDone = true), lease));
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondDone, 'a second load waits for the snapshot being made').to.equal(false);
    first.offer(new Uint8Array([1, 2, 3]));
    const lease = await second;
    expect(lease.make).to.equal(false);
    expect([...lease.snapshot!]).to.deep.equal([1, 2, 3]);
  });

  it('passes the job on when the load making the snapshot failed', async () => {
    const cache = new SnapshotCache();
    const first = await cache.acquire();
    const second = cache.acquire();
    first.offer(undefined);
    const next = await second;
    expect(next.make).to.equal(true);
    next.offer(undefined);
  });

  it('keeps the snapshot on disk under a key of the Pyodide version and sandbox code', async () => {
    const cache = new SnapshotCache(dir);
    (await cache.acquire()).offer(new Uint8Array([9, 8, 7]));
    const key = await cache.keyOf();
    expect(key).to.match(/^[0-9a-f]{32}$/);
    for (let i = 0; i < 50 && !(await readdir(dir)).includes(`${key}.snapshot`); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await readdir(dir)).to.deep.equal([`${key}.snapshot`]);
    SnapshotCache.forget();
    const restarted = await new SnapshotCache(dir).acquire();
    expect(restarted.make).to.equal(false);
    expect([...restarted.snapshot!]).to.deep.equal([9, 8, 7]);
  });
});
