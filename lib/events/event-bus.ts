import { Observable, Subject, filter } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { InvalidArgumentError } from '../errors.js';
import { IHostOptions } from '../di/tokens.js';
import { DeliveryQueue, type DeliveryOutcome } from './delivery-queue.js';
import type { BusEvent, HostEvent } from './host-events.js';
import { isValidTopic, topicMatches } from './topic.js';

/** How long after a handler returned its plugin's emissions still continue the handled event's chain, ms. */
const CHAIN_GRACE_MS = 1000;

/** Which plugins an event goes to (the seed's `PluginFilter`). Every given condition must hold. */
export interface PluginFilter {
  /** Only plugins declaring every one of these capabilities. */
  capabilities?: string[];
  /** Never these plugins. */
  excludePlugins?: string[];
  /** Only these plugins. */
  pluginIds?: string[];
}

/** What happened to one published event. */
export interface PublishReport {
  delivered: string[];
  dropped: string[];
  failed: { pluginId: string; error: unknown }[];
}

/** A plugin's subscription: its handler patterns and how to hand it an event. */
export interface Subscriber {
  pluginId: string;
  patterns: readonly string[];
  capabilities: readonly string[];
  /** Whether the subscriber may receive this topic at all (its permissions). */
  accepts?(topic: string): boolean;
  deliver(event: BusEvent, matchedPatterns: string[]): Promise<void>;
}

export interface EventBusOptions {
  /** Events queued per subscribing plugin before new ones are dropped (default 1000). */
  eventQueueLimit?: number;
  /** Longest chain of events emitted from event handlers before the next is dropped (default 8). */
  maxEventDepth?: number;
}

export const IEventBus = Symbol.for('logomesh.IEventBus');
export interface IEventBus {
  readonly hostEvents$: Observable<HostEvent>;
  readonly bus$: Observable<BusEvent>;
  emitHost(event: HostEvent): void;
  /** Bus events matching `pattern`, from `source` or any. */
  select(pattern: string, source?: string): Observable<BusEvent>;
  subscribe(subscriber: Subscriber): void;
  unsubscribe(pluginId: string): void;
  publish(event: BusEvent, filter?: PluginFilter): Promise<PublishReport>;
  queueStats(pluginId: string): { queued: number; delivered: number; dropped: number } | undefined;
  close(): void;
}

/**
 * The host's event bus: RxJS subjects for observers, and a bounded delivery queue per
 * subscribing plugin so one slow plugin delays only itself.
 *
 * @example
 * bus.bus$.subscribe((e) => console.log(e.source, e.topic));
 * await bus.publish({ topic: 'document.saved', data: { id: 1 }, source: 'host', at: Date.now() });
 */
@injectable()
export class EventBus implements IEventBus {
  private readonly host = new Subject<HostEvent>();
  private readonly events = new Subject<BusEvent>();
  private readonly subscribers = new Map<string, { sub: Subscriber; queue: DeliveryQueue<BusEvent> }>();
  private readonly limit: number;
  private readonly maxDepth: number;
  /**
   * Depth of the event each plugin handles now or handled last (deliveries are one at a time),
   * and until when emissions still count as part of that chain: a handler that does not await
   * its emit (`ctx.emit(a).then(() => ctx.emit(b))`) emits just after it returned.
   */
  private readonly handling = new Map<string, { depth: number; until: number }>();
  private readonly tooDeep = new Map<string, number>();
  readonly hostEvents$ = this.host.asObservable();
  readonly bus$ = this.events.asObservable();

  constructor(@inject(IHostOptions) options: EventBusOptions) {
    this.limit = options.eventQueueLimit ?? 1000;
    this.maxDepth = options.maxEventDepth ?? 8;
  }

  emitHost(event: HostEvent): void {
    this.host.next(event);
  }

  /** Events of one topic pattern, from one source or any. */
  select(pattern: string, source?: string): Observable<BusEvent> {
    return this.bus$.pipe(filter((e) => (source === undefined || e.source === source) && topicMatches(pattern, e.topic)));
  }

  subscribe(sub: Subscriber): void {
    this.unsubscribe(sub.pluginId);
    const queue = new DeliveryQueue<BusEvent>(this.limit, async (e) => {
      const chain = { depth: e.depth ?? 0, until: Infinity };
      this.handling.set(sub.pluginId, chain);
      try {
        await sub.deliver(e, sub.patterns.filter((p) => topicMatches(p, e.topic)));
      } finally {
        chain.until = Date.now() + CHAIN_GRACE_MS;
      }
    });
    this.subscribers.set(sub.pluginId, { sub, queue });
  }

  unsubscribe(pluginId: string): void {
    this.subscribers.get(pluginId)?.queue.clear();
    this.subscribers.delete(pluginId);
    this.handling.delete(pluginId);
    this.tooDeep.delete(pluginId);
  }

  async publish(event: BusEvent, only: PluginFilter = {}): Promise<PublishReport> {
    if (!isValidTopic(event.topic)) {
      throw new InvalidArgumentError(
        `'${String(event.topic)}' is not a valid topic: use dot-separated segments of lowercase letters, digits, '_' or '-'.`,
      );
    }
    // An emission made while its source handles an event continues that event's chain.
    const parent = this.handling.get(event.source);
    event = { ...event, depth: parent !== undefined && parent.until >= Date.now() ? parent.depth + 1 : 0 };
    if (event.depth! > this.maxDepth) {
      const dropped = (this.tooDeep.get(event.source) ?? 0) + 1;
      this.tooDeep.set(event.source, dropped);
      this.emitHost({ type: 'event.dropped', reason: 'too-deep', pluginId: event.source, topic: event.topic, dropped, at: Date.now() });
      return { delivered: [], dropped: [], failed: [] };
    }
    this.events.next(event);
    const targets = [...this.subscribers.values()].filter(
      ({ sub }) =>
        sub.pluginId !== event.source &&
        (only.pluginIds === undefined || only.pluginIds.includes(sub.pluginId)) &&
        !(only.excludePlugins ?? []).includes(sub.pluginId) &&
        (only.capabilities ?? []).every((c) => sub.capabilities.includes(c)) &&
        sub.patterns.some((p) => topicMatches(p, event.topic)) &&
        (sub.accepts === undefined || sub.accepts(event.topic)),
    );
    const outcomes = await Promise.all(targets.map(({ queue }) => queue.push(event)));
    const report: PublishReport = { delivered: [], dropped: [], failed: [] };
    outcomes.forEach((o: DeliveryOutcome, i) => {
      const pluginId = targets[i].sub.pluginId;
      if (o.status === 'delivered') report.delivered.push(pluginId);
      else if (o.status === 'failed') report.failed.push({ pluginId, error: o.error });
      else {
        report.dropped.push(pluginId);
        this.emitHost({ type: 'event.dropped', reason: 'queue-full', pluginId, topic: event.topic, dropped: targets[i].queue.dropped, at: Date.now() });
      }
    });
    return report;
  }

  queueStats(pluginId: string) {
    const entry = this.subscribers.get(pluginId);
    return entry && { queued: entry.queue.size, delivered: entry.queue.delivered, dropped: entry.queue.dropped };
  }

  close(): void {
    for (const id of [...this.subscribers.keys()]) this.unsubscribe(id);
    this.host.complete();
    this.events.complete();
  }
}
