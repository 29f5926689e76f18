import { performance } from 'node:perf_hooks';

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
