import { performance } from 'node:perf_hooks';
import { PluginTimeoutError } from '../errors.js';
import type { InvocationOptions } from './runtime.js';

interface Entry {
  at: number;
  onExpire(): void;
}

/**
 * One timer for the deadlines of every sandbox in the process. A timer per call (set, then
 * cleared) cost more than the rest of the call's bookkeeping, and a timer per sandbox woke the
 * process once per sandbox after its calls had settled (100 idle plugins: 100 wake-ups a few
 * seconds after loading). Here a call adds an entry to its sandbox's watchdog and removes it
 * when it settles; the shared timer is re-armed only when it fires or an earlier deadline
 * arrives, and keeps the process alive only while some deadline is pending.
 *
 * @example
 * const cancel = watchdog.add(5000, () => isolate.dispose());
 * await work; cancel();
 */
export class DeadlineWatchdog {
  private static timer?: NodeJS.Timeout;
  private static timerAt = Infinity;
  /** Watchdogs that had an entry since the timer last fired. */
  private static readonly active = new Set<DeadlineWatchdog>();
  /** Deadlines pending across all watchdogs. */
  private static pending = 0;

  private readonly entries = new Set<Entry>();
  private listed = false;

  /** Calls `onExpire` once `ms` from now, unless the returned function is called first. */
  add(ms: number, onExpire: () => void): () => void {
    const entry: Entry = { at: performance.now() + ms, onExpire };
    this.entries.add(entry);
    DeadlineWatchdog.pending++;
    if (!this.listed) {
      DeadlineWatchdog.active.add(this);
      this.listed = true;
    }
    if (entry.at < DeadlineWatchdog.timerAt) DeadlineWatchdog.arm(entry.at);
    else DeadlineWatchdog.timer?.ref();
    return () => {
      if (this.entries.delete(entry) && --DeadlineWatchdog.pending === 0) DeadlineWatchdog.timer?.unref();
    };
  }

  /**
   * Settles with `work`, or with a `PluginTimeoutError` at its deadline (`executionTimeoutMs`,
   * or `options.deadlineMs`), calling `onHardTimeout` first so the runtime ends its sandbox. A
   * caller that asks not to crash (a health probe) gets its answer at its own deadline, but the
   * work still ends by `executionTimeoutMs`: every entry into a sandbox has a hard deadline.
   */
  race<T>(
    work: Promise<T>,
    deadline: { pluginId: string; operation: string; limitMs: number; options?: InvocationOptions; onHardTimeout(error: PluginTimeoutError): void },
  ): Promise<T> {
    const { pluginId, operation, limitMs, options = {} } = deadline;
    const probe = options.crashOnTimeout === false;
    const soft = probe ? (options.deadlineMs ?? limitMs) : undefined;
    const hard = probe ? Math.max(limitMs, soft!) : (options.deadlineMs ?? limitMs);
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      const answer = (settle: () => void) => {
        if (answered) return;
        answered = true;
        settle();
      };
      const cancelHard = this.add(hard, () => {
        const error = new PluginTimeoutError(pluginId, operation, hard);
        deadline.onHardTimeout(error);
        answer(() => reject(error));
      });
      const cancelSoft = soft === undefined ? undefined : this.add(soft, () => answer(() => reject(new PluginTimeoutError(pluginId, operation, soft))));
      work.then(
        (value) => {
          cancelHard();
          cancelSoft?.();
          answer(() => resolve(value));
        },
        (error: unknown) => {
          cancelHard();
          cancelSoft?.();
          answer(() => reject(error));
        },
      );
    });
  }

  /** Pending deadlines (for specs and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Drops this sandbox's deadlines (the shared timer goes on for the others). */
  dispose(): void {
    DeadlineWatchdog.pending -= this.entries.size;
    this.entries.clear();
    DeadlineWatchdog.active.delete(this);
    this.listed = false;
    if (DeadlineWatchdog.pending === 0) DeadlineWatchdog.timer?.unref();
  }

  private static arm(at: number): void {
    clearTimeout(DeadlineWatchdog.timer);
    DeadlineWatchdog.timerAt = at;
    DeadlineWatchdog.timer = setTimeout(() => DeadlineWatchdog.fire(), Math.max(0, at - performance.now()));
  }

  private static fire(): void {
    DeadlineWatchdog.timer = undefined;
    DeadlineWatchdog.timerAt = Infinity;
    // Timers may fire a little early or late; 1 ms of slack keeps an entry from waiting a whole extra round.
    const now = performance.now() + 1;
    try {
      for (const watchdog of [...DeadlineWatchdog.active]) {
        for (const entry of [...watchdog.entries]) {
          // An expiry may dispose a watchdog (its sandbox crashed): what it cleared is gone.
          if (entry.at <= now && watchdog.entries.delete(entry)) {
            DeadlineWatchdog.pending--;
            entry.onExpire();
          }
        }
      }
    } finally {
      // One sandbox's throwing expiry does not lose the others' deadlines.
      let next = Infinity;
      for (const watchdog of [...DeadlineWatchdog.active]) {
        if (watchdog.entries.size === 0) {
          DeadlineWatchdog.active.delete(watchdog);
          watchdog.listed = false;
        }
        for (const entry of watchdog.entries) next = Math.min(next, entry.at);
      }
      if (next !== Infinity && DeadlineWatchdog.timer === undefined) DeadlineWatchdog.arm(next);
    }
  }
}
