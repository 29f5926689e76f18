// Entry of the child process the Wasm RSS benchmark runs in (node --expose-gc, started by
// wasm-memory.ts): `node wasm-memory-child.js <ours|raw> <tmp> <n>`. Adds one warm-up
// sandbox, then n more, and sends the RSS growth per sandbox.
import { join } from 'node:path';
import { benchHost } from './bench-host.js';
import { rawWorker, type RawWorker } from './raw-wasm-worker.js';
import { runRssChild } from './sandbox-rss.js';
import { upperModule, wasmPluginCopy } from './wasm-fixtures.js';

runRssChild(async (kind, tmp, n) => {
  const bytes = await upperModule();
  let add: () => Promise<void>;
  let close: () => Promise<void>;
  if (kind === 'ours') {
    const host = await benchHost(tmp);
    // Copied up front, so the file writes are not inside the measurement.
    const dirs: string[] = [];
    for (let i = 0; i <= n; i++) dirs.push(await wasmPluginCopy(join(tmp, 'plugins'), `wasm-idle-${i}`));
    let next = 0;
    add = async () => {
      const { id } = await host.load(dirs[next++]);
      await host.start(id);
    };
    close = () => host.close();
  } else {
    const workers: RawWorker[] = [];
    add = async () => void workers.push(await rawWorker({ mode: 'wasm', bytes: bytes.slice() }));
    close = async () => void (await Promise.all(workers.map((w) => w.terminate())));
  }
  return { add, close };
});
