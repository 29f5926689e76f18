import { join } from 'node:path';
import { pino } from 'pino';
import {
  createHostContainer,
  effectiveLimits,
  IApiGateway,
  IEventBus,
  PluginApi,
  type PluginManifest,
  type ServiceCaller,
} from '../lib/index.js';
import { checkRequest } from '../lib/gateway/operations.js';
import { PermissionSet } from '../lib/gateway/permissions.js';
import { TokenBucket } from '../lib/gateway/token-bucket.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, type InterleaveOptions } from './interleave.js';
import { scale, summarize, type Summary } from './stats.js';

const NS_TO_US = 1e-3;
const PLUGIN = 'bench';
const OPERATION = 'bench.echo';
const TOPIC = 'bench.tick';
/** High enough that the token bucket never makes a request wait: only its bookkeeping is timed. */
const UNTHROTTLED = { perSecond: 1e12, burst: 1e12 };
/** The target: what the gateway's checks may add to a permitted call, p50, µs. */
const MAX_OVERHEAD_US = 2;

/** The trivial host service both sides call. */
class BenchEcho {
  @PluginApi(OPERATION)
  echo(args: unknown, _caller: ServiceCaller): unknown {
    return args;
  }
}

/**
 * What the gateway's checks add to a permitted request, in-process (no isolate, so no
 * cross-thread timing): `port.request(...)` (schema check, rate bucket, permission check,
 * audit hook, then the operation) against the operation called directly with the checks
 * off, interleaved in the same run. Two pairs:
 *
 * - `services.call` of a host service method that returns its argument, against
 *   `gateway.services.invoke(...)`; a cumulative breakdown adds the checks back one at a time.
 * - `emit` to a topic nobody subscribes to, against what the gateway does after its checks:
 *   `bus.publish(...)` of the same event, enqueued and not awaited.
 *
 * @example
 * const [service, emit] = await gatewayOverhead(tmp);
 * service.ours - service.raw; // µs the checks add at p50
 */
export async function gatewayOverhead(
  tmp: string,
  options: InterleaveOptions = { warmup: 2000, rounds: 100, batch: 200 },
): Promise<BenchmarkResult[]> {
  const container = createHostContainer({
    logger: pino({ level: 'silent' }),
    dataDir: join(tmp, 'data'),
    gatewayRate: UNTHROTTLED,
    services: [new BenchEcho()],
  });
  const gateway = container.resolve<IApiGateway>(IApiGateway);
  const bus = container.resolve<IEventBus>(IEventBus);
  const manifest: PluginManifest = {
    id: PLUGIN,
    name: 'Gateway overhead benchmark',
    version: '1.0.0',
    entryPoint: 'index.js',
    runtime: 'nodejs',
    apiVersion: '^1.0.0',
    permissions: [
      { type: 'system', scope: [OPERATION] },
      { type: 'events', scope: [TOPIC], level: 'write' },
    ],
  };
  const dir = join(tmp, 'plugins', PLUGIN);
  gateway.register({ pluginId: PLUGIN, manifest, dir, limits: effectiveLimits(manifest) });
  const port = gateway.portFor(PLUGIN);
  try {
    const serviceRequest = { op: 'services.call', operation: OPERATION, args: { x: 1 } };
    const emitRequest = { op: 'emit', topic: TOPIC };
    const caller = { pluginId: PLUGIN };

    // The gateway's checks, re-done by hand for the breakdown: a second bucket and permission
    // set built as register() builds them, so the gateway's own are left untouched.
    const bucket = new TokenBucket(UNTHROTTLED.perSecond, UNTHROTTLED.burst);
    const permissions = PermissionSet.from(manifest, { pluginId: PLUGIN, pluginDir: dir, dataDir: join(tmp, 'data', 'plugins', PLUGIN, 'data') });
    const schema = (req: unknown) => {
      if (!checkRequest(req).ok) throw new Error('gateway-overhead: the request failed its schema');
    };
    const permitted = () => {
      if (!permissions.allowsName('system', OPERATION)) throw new Error('gateway-overhead: the breakdown permission set refuses the call');
    };

    const publish = () => {
      // Exactly what ApiGateway.emit does once its checks pass.
      bus
        .publish({ topic: TOPIC, data: undefined, source: PLUGIN, at: Date.now() })
        .catch((e: unknown) => process.stderr.write(`[bench] gateway-overhead: publish failed: ${String(e)}\n`));
    };

    // Both sides must do the work they are timed for.
    for (const [name, got] of [
      ['ours', await port.request(serviceRequest)],
      ['checks off', await gateway.services.invoke(OPERATION, { x: 1 }, caller)],
    ] as const) {
      if ((got as { x?: unknown })?.x !== 1) throw new Error(`gateway-overhead: ${name} answered ${JSON.stringify(got)}`);
    }
    let published = 0;
    const seen = bus.bus$.subscribe((e) => {
      if (e.topic === TOPIC && e.source === PLUGIN) published++;
    });
    await port.request(emitRequest);
    publish();
    await new Promise((resolve) => setImmediate(resolve));
    seen.unsubscribe(); // nothing observes the bus while timing
    if (published !== 2) throw new Error(`gateway-overhead: expected 2 published events, saw ${published}`);

    const serviceSamples = await interleave(
      [
        { name: 'ours', run: () => port.request(serviceRequest) },
        { name: 'raw', run: () => gateway.services.invoke(OPERATION, { x: 1 }, caller) },
        {
          name: 'raw+schema',
          run: () => {
            schema(serviceRequest);
            return gateway.services.invoke(OPERATION, { x: 1 }, caller);
          },
        },
        {
          name: 'raw+schema+rate',
          run: async () => {
            schema(serviceRequest);
            await bucket.take(1);
            return gateway.services.invoke(OPERATION, { x: 1 }, caller);
          },
        },
        {
          name: 'raw+schema+rate+permission',
          run: async () => {
            schema(serviceRequest);
            await bucket.take(1);
            permitted();
            return gateway.services.invoke(OPERATION, { x: 1 }, caller);
          },
        },
      ],
      options,
    );
    const emitSamples = await interleave(
      [
        { name: 'ours', run: () => port.request(emitRequest) },
        { name: 'raw', run: async () => publish() },
        { name: 'raw (publish awaited)', run: () => bus.publish({ topic: TOPIC, data: undefined, source: PLUGIN, at: Date.now() }) },
      ],
      options,
    );
    const summaries = (samples: Map<string, number[]>) =>
      Object.fromEntries([...samples].map(([name, ns]) => [name, scale(summarize(ns), NS_TO_US)])) as Record<string, Summary>;
    const service = summaries(serviceSamples);
    const emit = summaries(emitSamples);

    const method =
      `in-process, no isolate: interleaved batches, ${options.warmup} warm-up calls per variant, then ${options.rounds} rounds × ${options.batch} calls per variant ` +
      '(each timed alone with process.hrtime.bigint), rotating which variant goes first';
    const setup =
      `createHostContainer with a silent logger and gatewayRate ${UNTHROTTLED.perSecond}/s, burst ${UNTHROTTLED.burst}, so the token bucket never throttles ` +
      '(its bookkeeping is still timed); nothing observes audit$ (the gateway then builds no audit records); the plugin is registered with gateway.register() only';
    const target = { on: 'difference', max: MAX_OVERHEAD_US, text: `≤ +${MAX_OVERHEAD_US} µs over checks off (p50)` } as const;
    const difference = (s: Record<string, Summary>) => s.ours.p50 - s.raw.p50;

    return [
      judge({
        id: 'gateway-overhead-service',
        title: `Gateway checks, permitted services.call('${OPERATION}') vs the same call with checks off`,
        unit: 'µs',
        metric: 'p50',
        ours: service.ours.p50,
        raw: service.raw.p50,
        target,
        details: {
          method,
          setup,
          ours: service.ours,
          raw: service.raw,
          oursRequest: serviceRequest,
          rawCall: `gateway.services.invoke('${OPERATION}', { x: 1 }, { pluginId: '${PLUGIN}' })`,
          differenceP50Us: difference(service),
          note: `p50 difference ${difference(service).toFixed(2)} µs (p99 ${service.ours.p99.toFixed(1)} vs ${service.raw.p99.toFixed(1)} µs). In-process and single-threaded, so unlike the isolate rows these absolute figures are not subject to the cross-thread timing modes.`,
          breakdown: {
            note: `checks off (gateway.services.invoke) plus, cumulatively, the checks ApiGateway.handle runs before it, re-done by hand: checkRequest (schema), TokenBucket.take(1) (rate), PermissionSet.allowsName('system', …); all variants interleaved in the same run`,
            'raw+schema': service['raw+schema'],
            'raw+schema+rate': service['raw+schema+rate'],
            'raw+schema+rate+permission': service['raw+schema+rate+permission'],
          },
        },
      }),
      judge({
        id: 'gateway-overhead-emit',
        title: `Gateway checks, permitted emit('${TOPIC}') with no subscribers vs bus.publish of the same event`,
        unit: 'µs',
        metric: 'p50',
        ours: emit.ours.p50,
        raw: emit.raw.p50,
        target,
        details: {
          method,
          setup,
          ours: emit.ours,
          raw: emit.raw,
          oursRequest: emitRequest,
          rawCall: `bus.publish({ topic: '${TOPIC}', data: undefined, source: '${PLUGIN}', at: Date.now() }).catch(…), not awaited, as ApiGateway.emit does after its checks`,
          differenceP50Us: difference(emit),
          note: `p50 difference ${difference(emit).toFixed(2)} µs (p99 ${emit.ours.p99.toFixed(1)} vs ${emit.raw.p99.toFixed(1)} µs). Raw is what the gateway runs once its checks pass: publish enqueued, not awaited.`,
          breakdown: {
            note: 'for reference, the same publish awaited (it resolves once delivery to the, here zero, subscribers is settled); interleaved in the same run',
            'raw (publish awaited)': emit['raw (publish awaited)'],
          },
        },
      }),
    ];
  } finally {
    await gateway.release(PLUGIN);
    bus.close();
  }
}
