import type { PluginHostError } from '../errors.js';
import type { PluginMetrics } from '../monitor/types.js';
import type { VerificationResult } from '../registry/integrity.js';
import type { PluginManifest, ResourceLimits } from '../registry/manifest-schema.js';
import type { PluginDescriptor } from '../registry/plugin-registry.js';
import type { PluginDescription } from '../runtimes/protocol.js';
import type { PluginRuntime } from '../runtimes/runtime.js';
import type { PluginLifecycle, PluginState } from './lifecycle.js';

/** One finished call, kept for crash reports. */
export interface RecentCall {
  operation: string;
  durationMs: number;
  ok: boolean;
  at: number;
}

/** What the host knows about a crash: `host.crashes(id)`. */
export interface CrashReport {
  pluginId: string;
  at: number;
  error: { name: string; code: string; message: string; stack?: string };
  /** Metrics at the time of the crash. */
  metrics?: PluginMetrics;
  /** The last calls, oldest first. */
  recentCalls: RecentCall[];
  /** What it was doing when it crashed. */
  inFlight: { operation: string; forMs: number }[];
}

const RECENT_CALLS = 20;
const NO_CHAIN: readonly string[] = Object.freeze([]);
const CRASH_REPORTS = 20;

/** The host's record of one plugin: its sandbox, its state machine and its bookkeeping. */
export class ManagedPlugin {
  runtime?: PluginRuntime;
  description?: PluginDescription;
  verification?: VerificationResult;
  loadTimeMs?: number;
  startTimeMs?: number;
  error?: PluginHostError;
  warnings: string[] = [];
  /** Delay added before each call (CPU throttling), ms. */
  throttleMs = 0;
  /** Who holds the plugin suspended (the host's operator, the governor, the security monitor) and why. */
  private readonly holds = new Map<string, string>();
  /** The last good `serializeState()` result, restored after a restart. */
  snapshot?: { state: unknown; at: number };
  lastSnapshotAt = 0;
  readonly crashes: CrashReport[] = [];
  /** The lifecycle operation running now; the next one waits for it. */
  pending: Promise<void> = Promise.resolve();
  private readonly inFlight = new Map<number, { operation: string; since: number; chain: readonly string[] }>();
  private nextToken = 0;
  private readonly recent: RecentCall[] = [];

  constructor(
    readonly descriptor: PluginDescriptor,
    readonly lifecycle: PluginLifecycle,
    /** Shared with the runtime, which reads it on every invocation: changes apply live where they can. */
    readonly limits: Required<ResourceLimits>,
  ) {}

  get id(): string {
    return this.descriptor.manifest.id;
  }
  get manifest(): PluginManifest {
    return this.descriptor.manifest;
  }
  get state(): PluginState {
    return this.lifecycle.state;
  }
  hasHook(hook: string): boolean {
    return this.description?.hooks.includes(hook as never) ?? false;
  }

  /** `chain`: the plugins whose invocations wait on this operation (a call one of them made), outermost first. */
  begin(operation: string, chain: readonly string[] = NO_CHAIN): number {
    const token = ++this.nextToken;
    this.inFlight.set(token, { operation, since: Date.now(), chain });
    return token;
  }

  end(token: number, durationMs: number, ok: boolean): void {
    const entry = this.inFlight.get(token);
    this.inFlight.delete(token);
    if (this.recent.length >= RECENT_CALLS) this.recent.shift();
    this.recent.push({ operation: entry?.operation ?? '?', durationMs, ok, at: Date.now() });
  }

  /** Why the plugin is suspended, when anyone holds it suspended. */
  get suspended(): string | undefined {
    return this.holds.size === 0 ? undefined : [...this.holds.values()].join('; ');
  }

  /** `holder` suspends the plugin; true when it was not suspended before. */
  hold(holder: string, reason: string): boolean {
    const was = this.holds.size > 0;
    this.holds.set(holder, reason);
    return !was;
  }

  /** `holder` lets go (all holders when omitted); true when nothing holds it any more. */
  release(holder?: string): boolean {
    const was = this.holds.size > 0;
    if (holder === undefined) this.holds.clear();
    else this.holds.delete(holder);
    return was && this.holds.size === 0;
  }

  /**
   * The chain a call this plugin makes now is made for: the plugins waiting on its one running
   * operation, then itself. Undefined while several operations run (the call cannot be told
   * apart) or none does.
   */
  callChain(): readonly string[] | undefined {
    if (this.inFlight.size !== 1) return undefined;
    const [only] = this.inFlight.values();
    return [...only.chain, this.id];
  }

  /** Whether any operation is running now. */
  get busy(): boolean {
    return this.inFlight.size > 0;
  }

  /** Operations running now, and for how long. */
  running(now = Date.now()): { operation: string; forMs: number }[] {
    return [...this.inFlight.values()].map((f) => ({ operation: f.operation, forMs: now - f.since }));
  }

  recordCrash(error: PluginHostError, metrics?: PluginMetrics): CrashReport {
    const report: CrashReport = {
      pluginId: this.id,
      at: Date.now(),
      error: { name: error.name, code: error.code, message: error.message, stack: error.stack },
      metrics,
      recentCalls: [...this.recent],
      inFlight: this.running(),
    };
    if (this.crashes.length >= CRASH_REPORTS) this.crashes.shift();
    this.crashes.push(report);
    this.inFlight.clear();
    return report;
  }
}
