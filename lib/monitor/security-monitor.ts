import { Subject, type Observable } from 'rxjs';
import type { AuditEvent } from '../gateway/api-gateway.js';
import type { Alert, PluginController } from './types.js';

export interface SecurityMonitorOptions {
  /** Denied operations within `windowMs` that make a burst (default 10). */
  burst?: number;
  /** The sliding window, ms (default 10 000). */
  windowMs?: number;
  /** Suspend a plugin on a burst (default true); when false the alert only logs. */
  isolateOnSecurityThreat?: boolean;
}

/** One denied operation, as `Alert.evidence` of a 'security' alert lists it. */
export interface DenialEvidence {
  operation: AuditEvent['operation'];
  target: string;
  code?: string;
  at: number;
}

/** `Alert.evidence` of a 'security' alert. */
export interface SecurityEvidence {
  denials: DenialEvidence[];
}

interface Suspect {
  denials: DenialEvidence[];
  /** Suspended by this monitor: no further alerts until `forget`. */
  isolated: boolean;
}

/**
 * Watches the gateway's audit stream for bursts of denied operations, the mark of a plugin
 * probing its sandbox. When one plugin has `burst` denials within `windowMs` (by the
 * events' `at`), it raises one 'security' alert listing them and, under
 * `isolateOnSecurityThreat`, suspends the plugin. A suspended plugin raises no more alerts
 * until the host calls {@link SecurityMonitor.forget} (when it resumes, restarts or
 * unloads it). Without isolation, each alert empties the window: the next one takes a
 * fresh burst. Only `denied` outcomes count; `failed` ones are the plugin's own I/O errors.
 *
 * @example
 * const security = new SecurityMonitor({ burst: 10, windowMs: 10_000 }, controller);
 * gateway.audit$.subscribe((e) => security.observe(e));
 * security.alerts$.subscribe((a) => logger.error(a.evidence, a.message));
 */
export class SecurityMonitor {
  private readonly suspects = new Map<string, Suspect>();
  private readonly subject = new Subject<Alert>();
  readonly alerts$: Observable<Alert> = this.subject.asObservable();
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly isolate: boolean;

  constructor(options: SecurityMonitorOptions, private readonly controller: PluginController, private readonly now: () => number = Date.now) {
    this.burst = Math.max(1, options.burst ?? 10);
    this.windowMs = options.windowMs ?? 10_000;
    this.isolate = options.isolateOnSecurityThreat ?? true;
  }

  /** Feed one audit event. */
  observe(event: AuditEvent): void {
    if (event.outcome !== 'denied' || this.subject.closed) return;
    let s = this.suspects.get(event.pluginId);
    if (!s) this.suspects.set(event.pluginId, (s = { denials: [], isolated: false }));
    if (s.isolated) return;
    const { operation, target, code, at } = event;
    s.denials.push(code === undefined ? { operation, target, at } : { operation, target, code, at });
    const start = at - this.windowMs;
    s.denials = s.denials.filter((d) => d.at > start);
    if (s.denials.length >= this.burst) this.raise(event.pluginId, s);
  }

  /** Forget a plugin's denials and re-arm its alert (after the host resumed, restarted or unloaded it). */
  forget(pluginId: string): void {
    this.suspects.delete(pluginId);
  }

  /** Completes `alerts$` and forgets every plugin. */
  dispose(): void {
    this.suspects.clear();
    this.subject.complete();
  }

  private raise(pluginId: string, s: Suspect): void {
    const denials = s.denials;
    s.denials = [];
    const ops = [...new Set(denials.map((d) => `${d.operation} ${d.target}`))];
    const what = `${denials.length} denied operations within ${this.windowMs} ms (${ops.slice(0, 3).join(', ')}${ops.length > 3 ? ', …' : ''})`;
    const alert: Alert = {
      kind: 'security',
      pluginId,
      value: denials.length,
      threshold: this.burst,
      action: this.isolate ? 'suspend' : 'log',
      message: `plugin '${pluginId}': ${what}${this.isolate ? ': suspended' : ''}`,
      evidence: { denials } satisfies SecurityEvidence,
      at: this.now(),
    };
    if (this.isolate) {
      try {
        this.controller.suspend(pluginId, `security threat: ${what}`);
        s.isolated = true;
      } catch (e) {
        alert.message = `plugin '${pluginId}': ${what}; suspend failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    this.subject.next(alert);
  }
}
