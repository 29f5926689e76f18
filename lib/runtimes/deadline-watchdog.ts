import { performance } from 'node:perf_hooks';
import { PluginTimeoutError } from '../errors.js';
import type { InvocationOptions } from './runtime.js';

interface Entry {
  at: number;
  onExpire(): void;
}

/**
 * One timer per sandbox for all of its deadlines. A timer per call (set, then cleared) cost
 * more than the rest of the call's bookkeeping; here a call adds an entry and removes it when
 * it settles, and the single timer is only re-armed when it fires or an earlier deadline
 * arrives. The timer keeps the process alive only while some deadline is pending.
 *
 * @example
 * const cancel = watchdog.add(5000, () => isolate.dispose());
 * await work; cancel();
 */
export class DeadlineWatchdog {
  private readonly entries = new Set<Entry>();
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;

  /** Calls `onExpire` once `ms` from now, unless the returned function is called first. */
  add(ms: number, onExpire: () => void): () => void {
    const entry: Entry = { at: performance.now() + ms, onExpire };
    this.entries.add(entry);
    if (entry.at < this.timerAt) this.arm(entry.at);
    else this.timer?.ref();
    return () => {
      if (this.entries.delete(entry) && this.entries.size === 0) this.timer?.unref();
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

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.entries.clear();
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - performance.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    // Timers may fire a little early or late; 1 ms of slack keeps an entry from waiting a whole extra round.
    const now = performance.now() + 1;
    for (const entry of [...this.entries]) {
      // An expiry may dispose the watchdog (the sandbox crashed): what it cleared is gone.
      if (entry.at <= now && this.entries.delete(entry)) entry.onExpire();
    }
    let next = Infinity;
    for (const entry of this.entries) next = Math.min(next, entry.at);
    if (next !== Infinity && this.timer === undefined) this.arm(next);
  }
}
