// What the RSS benchmarks (wasm-memory, python-memory) share: the child adds one warm-up
// sandbox, then n more, and sends the parent the RSS growth per sandbox.
import { fork } from 'node:child_process';
import { settle } from './settle.js';

const MB = 1024 * 1024;

export interface RssSample {
  kind: 'ours' | 'raw';
  n: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  perSandboxMB: number;
}

export type RssMessage = { type: 'rss'; sample: RssSample } | { type: 'error'; message: string };

const send = (message: RssMessage) =>
  new Promise<void>((resolve, reject) => process.send!(message, (e: Error | null) => (e ? reject(e) : resolve())));

/** How a child adds one sandbox of its kind, and closes them all. */
export interface SandboxKind {
  add(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs a child: `node <child>.js <ours|raw> <tmp> <n>` (argv), builds its sandboxes with
 * `setUp`, measures and reports, then disconnects.
 *
 * @example
 * runRssChild(async (kind, tmp, n) => ({ add: …, close: … }));
 */
export function runRssChild(setUp: (kind: 'ours' | 'raw', tmp: string, n: number) => Promise<SandboxKind>): void {
  const [kind, tmp, n] = process.argv.slice(2) as ['ours' | 'raw', string, string];
  const count = Number(n);
  (async () => {
    const { add, close } = await setUp(kind, tmp, count);
    await add(); // warm-up: lazily initialised code (and shared caches) are not counted per sandbox
    await settle();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < count; i++) await add();
    await settle(200);
    const after = process.memoryUsage().rss;
    await send({ type: 'rss', sample: { kind, n: count, rssBeforeMB: before / MB, rssAfterMB: after / MB, perSandboxMB: (after - before) / MB / count } });
    await close();
  })()
    .catch(async (e: unknown) => {
      process.exitCode = 1;
      await send({ type: 'error', message: (e as Error)?.stack ?? String(e) }).catch(() => undefined);
    })
    .finally(() => process.disconnect());
}

/**
 * The parent side: runs `childFile` (`--no-node-snapshot --expose-gc`) for one kind and
 * resolves with the sample it reports.
 *
 * @example
 * const sample = await measureRssIn(CHILD, 'wasm', 'ours', join(tmp, 'r0'), 20);
 */
export function measureRssIn(childFile: string, label: string, kind: RssSample['kind'], tmp: string, n: number): Promise<RssSample> {
  return new Promise((resolve, reject) => {
    const child = fork(childFile, [kind, tmp, String(n)], { execArgv: ['--no-node-snapshot', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let sample: RssSample | undefined;
    child.on('message', (m: RssMessage) => (m.type === 'rss' ? (sample = m.sample) : reject(new Error(`${label} memory child (${kind}) failed:\n${m.message}`))));
    child.on('error', reject);
    child.on('exit', (code, signal) => (sample ? resolve(sample) : reject(new Error(`${label} memory child (${kind}) exited with ${signal ?? `code ${code}`} before reporting`))));
  });
}
