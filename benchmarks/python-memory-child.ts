// Entry of the child process the Python RSS benchmark runs in (node --expose-gc, started by
// python-memory.ts): `node python-memory-child.js <ours|raw> <tmp> <n>`. Adds one warm-up
// sandbox (for ours: the cold load that makes the process-wide Pyodide snapshot), then n
// more, and sends the RSS growth per sandbox.
import { join } from 'node:path';
import { benchHost } from './bench-host.js';
import { pythonPluginCopy } from './python-fixtures.js';
import { rawPythonWorker } from './raw-python-worker.js';
import type { RawWorker } from './raw-wasm-worker.js';
import { runRssChild } from './sandbox-rss.js';

runRssChild(async (kind, tmp, n) => {
  let add: () => Promise<void>;
  let close: () => Promise<void>;
  if (kind === 'ours') {
    const host = await benchHost(tmp);
    // Copied up front, so the file writes are not inside the measurement.
    const dirs: string[] = [];
    for (let i = 0; i <= n; i++) dirs.push(await pythonPluginCopy(join(tmp, 'plugins'), `py-idle-${i}`));
    let next = 0;
    add = async () => {
      const { id } = await host.load(dirs[next++]);
      await host.start(id);
      if ((await host.call(id, 'upper', 'ok')) !== 'OK') throw new Error(`python-memory: ${id} answered wrongly`);
    };
    close = () => host.close();
  } else {
    const workers: RawWorker[] = [];
    add = async () => {
      const raw = await rawPythonWorker();
      workers.push(raw);
      if ((await raw.call('["ok"]')) !== '"OK"') throw new Error('python-memory: a raw Pyodide worker answered wrongly');
    };
    close = async () => void (await Promise.all(workers.map((w) => w.terminate())));
  }
  return { add, close };
});
