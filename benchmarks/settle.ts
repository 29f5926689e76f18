import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Collects garbage and lets background threads finish, before a memory or CPU reading.
 * Needs `--expose-gc` (the idle benchmarks run in a child started with it).
 *
 * @example
 * await settle(); const rss = process.memoryUsage().rss;
 */
export async function settle(pauseMs = 100): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('settle() needs node --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(pauseMs);
  }
}
