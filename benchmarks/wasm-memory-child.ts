// Entry of the child process the Wasm RSS benchmark runs in (node --expose-gc, started by
// wasm-memory.ts): `node wasm-memory-child.js <ours|raw> <tmp> <n>`. Adds one warm-up
// sandbox, then n more, and sends the RSS growth per sandbox.
import { join } from 'node:path';
import { benchHost } from './bench-host.js';
import { rawWorker, type RawWorker } from './raw-wasm-worker.js';
import { settle } from './settle.js';
import { upperModule, wasmPluginCopy } from './wasm-fixtures.js';

const MB = 1024 * 1024;

export interface WasmRssSample {
  kind: 'ours' | 'raw';
  n: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  perSandboxMB: number;
}

export type WasmMemoryMessage = { type: 'rss'; sample: WasmRssSample } | { type: 'error'; message: string };

const send = (message: WasmMemoryMessage) =>
  new Promise<void>((resolve, reject) => process.send!(message, (e: Error | null) => (e ? reject(e) : resolve())));

async function main(kind: 'ours' | 'raw', tmp: string, n: number): Promise<void> {
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
  await add(); // warm-up: lazily initialised code is not counted per sandbox
  await settle();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < n; i++) await add();
  await settle(200);
  const after = process.memoryUsage().rss;
  await send({ type: 'rss', sample: { kind, n, rssBeforeMB: before / MB, rssAfterMB: after / MB, perSandboxMB: (after - before) / MB / n } });
  await close();
}

const [kind, tmp, n] = process.argv.slice(2);
main(kind as 'ours' | 'raw', tmp, Number(n))
  .catch(async (e: unknown) => {
    process.exitCode = 1;
    await send({ type: 'error', message: (e as Error)?.stack ?? String(e) }).catch(() => undefined);
  })
  .finally(() => process.disconnect());
