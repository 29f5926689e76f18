/**
 * Crash recovery policy: restart with exponential backoff and jitter, and a per-plugin
 * circuit breaker (closed → open after `failures` crashes within `windowMs` → half-open
 * trial after `cooldownMs` → closed once the trial has stayed up `stableMs`).
 */

export interface RecoveryOptions {
  /** Restart crashed plugins automatically (the seed's `restartOnCrash`). Default true. */
  restartOnCrash?: boolean;
  backoff?: { initialMs?: number; maxMs?: number; factor?: number; jitter?: number };
  breaker?: { failures?: number; windowMs?: number; cooldownMs?: number; stableMs?: number };
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the handler tells the host about. */
export type RecoveryEvent =
  | { kind: 'scheduled'; pluginId: string; attempt: number; delayMs: number }
  | { kind: 'breaker'; pluginId: string; state: BreakerState; retryAt?: number; crashes: number };

interface PluginRecovery {
  crashes: number[];
  attempt: number;
  state: BreakerState;
  retryAt?: number;
  timer?: NodeJS.Timeout;
}

/**
 * Decides when a crashed plugin is restarted; the host does the restarting.
 *
 * @example
 * const handler = new CrashHandler({ breaker: { failures: 3 } }, (id) => host.restart(id), console.log);
 * handler.crashed('flaky');   // schedules a restart after the backoff delay, or opens the breaker
 */
export class CrashHandler {
  private readonly plugins = new Map<string, PluginRecovery>();
  private readonly backoff: Required<NonNullable<RecoveryOptions['backoff']>>;
  private readonly breaker: Required<NonNullable<RecoveryOptions['breaker']>>;

  constructor(
    private readonly options: RecoveryOptions,
    private readonly restart: (pluginId: string) => Promise<void>,
    private readonly report: (event: RecoveryEvent) => void,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.backoff = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2, ...options.backoff };
    this.breaker = { failures: 3, windowMs: 60_000, cooldownMs: 30_000, stableMs: 5_000, ...options.breaker };
  }

  state(pluginId: string): BreakerState {
    return this.plugins.get(pluginId)?.state ?? 'closed';
  }

  /** When calls may go through again, for a plugin whose breaker is open. */
  retryAt(pluginId: string): number | undefined {
    return this.plugins.get(pluginId)?.retryAt;
  }

  /** A plugin crashed: open the breaker, or schedule a restart. */
  crashed(pluginId: string): void {
    // Without automatic restarts there is nothing to back off from or to trip.
    if (this.options.restartOnCrash === false) return;
    const now = this.now();
    const p = this.entry(pluginId);
    clearTimeout(p.timer);
    p.crashes = [...p.crashes.filter((t) => now - t < this.breaker.windowMs), now];
    if (p.state === 'half-open' || p.crashes.length >= this.breaker.failures) {
      this.open(pluginId, p);
      return;
    }
    p.attempt++;
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** (p.attempt - 1));
    const delayMs = Math.round(base * (1 + this.backoff.jitter * (2 * this.random() - 1)));
    this.report({ kind: 'scheduled', pluginId, attempt: p.attempt, delayMs });
    p.timer = this.later(delayMs, () => this.attempt(pluginId));
  }

  /** A plugin started (by recovery or by hand): a half-open trial closes once it stays up. */
  started(pluginId: string): void {
    const p = this.plugins.get(pluginId);
    if (!p) return;
    clearTimeout(p.timer);
    // Started by hand while open: that is the trial.
    if (p.state === 'open') {
      p.state = 'half-open';
      p.retryAt = undefined;
      this.report({ kind: 'breaker', pluginId, state: 'half-open', crashes: p.crashes.length });
    }
    p.timer = this.later(this.breaker.stableMs, () => {
      if (p.state === 'half-open') {
        p.state = 'closed';
        p.crashes = [];
        this.report({ kind: 'breaker', pluginId, state: 'closed', crashes: 0 });
      }
      p.attempt = 0;
    });
  }

  /** Forget a plugin (unloaded) and cancel what was scheduled for it. */
  forget(pluginId: string): void {
    clearTimeout(this.plugins.get(pluginId)?.timer);
    this.plugins.delete(pluginId);
  }

  dispose(): void {
    for (const id of [...this.plugins.keys()]) this.forget(id);
  }

  private open(pluginId: string, p: PluginRecovery): void {
    p.state = 'open';
    p.retryAt = this.now() + this.breaker.cooldownMs;
    this.report({ kind: 'breaker', pluginId, state: 'open', retryAt: p.retryAt, crashes: p.crashes.length });
    p.timer = this.later(this.breaker.cooldownMs, () => {
      p.state = 'half-open';
      p.retryAt = undefined;
      this.report({ kind: 'breaker', pluginId, state: 'half-open', crashes: p.crashes.length });
      void this.attempt(pluginId);
    });
  }

  private async attempt(pluginId: string): Promise<void> {
    // The host reports a failed restart as a crash of its own (it counts toward the breaker).
    await this.restart(pluginId).catch(() => undefined);
  }

  private entry(pluginId: string): PluginRecovery {
    let p = this.plugins.get(pluginId);
    if (!p) this.plugins.set(pluginId, (p = { crashes: [], attempt: 0, state: 'closed' }));
    return p;
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  }
}
