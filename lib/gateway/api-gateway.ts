import type { Logger } from 'pino';
import { inject, injectable } from 'tsyringe';
import { ILogger } from '../di/tokens.js';
import { InvalidArgumentError, PermissionDeniedError, ResourceLimitError } from '../errors.js';
import { IEventBus } from '../events/event-bus.js';
import { isValidTopic } from '../events/topic.js';
import type { PluginManifest } from '../registry/manifest-schema.js';
import type { GatewayPort, GatewayRequest, LogLevel } from '../runtimes/protocol.js';

/** What the gateway needs to know from the host about loaded plugins. */
export interface PluginDirectory {
  manifestOf(pluginId: string): PluginManifest | undefined;
  /** Call an exposed method of a started plugin on behalf of `callerId`. */
  invoke(callerId: string, pluginId: string, method: string, args: unknown[]): Promise<unknown>;
}

export const IApiGateway = Symbol.for('logomesh.IApiGateway');
export interface IApiGateway {
  attach(directory: PluginDirectory): void;
  /** The channel a runtime hands its sandbox: every request becomes a named gateway method. */
  portFor(pluginId: string): GatewayPort;
  log(pluginId: string, level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  emit(pluginId: string, topic: string, data: unknown): Promise<void>;
  call(pluginId: string, target: string, method: string, args: unknown[]): Promise<unknown>;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
/** Calls one plugin may have in flight to other plugins at once. */
export const MAX_CALLS_IN_FLIGHT = 32;

/**
 * The one door from a plugin into the host. Runtimes only marshal requests; every decision
 * (argument shape, permission) is taken here.
 *
 * @example
 * const port = gateway.portFor('text-processor');
 * await port.request({ op: 'emit', topic: 'indexed', data: { id: 1 } });
 */
@injectable()
export class ApiGateway implements IApiGateway {
  private directory?: PluginDirectory;
  private readonly loggers = new Map<string, Logger>();
  private readonly callsInFlight = new Map<string, number>();

  constructor(
    @inject(ILogger) private readonly logger: Logger,
    @inject(IEventBus) private readonly bus: IEventBus,
  ) {}

  attach(directory: PluginDirectory): void {
    this.directory = directory;
  }

  portFor(pluginId: string): GatewayPort {
    return {
      request: async (req: GatewayRequest) => {
        switch (req?.op) {
          case 'log':
            return this.log(pluginId, req.level, req.message, req.fields);
          case 'emit':
            return this.emit(pluginId, req.topic, req.data);
          case 'call':
            return this.call(pluginId, req.pluginId, req.method, req.args);
          default:
            throw new InvalidArgumentError(`Unknown host operation '${String((req as { op?: unknown })?.op)}'.`, { pluginId });
        }
      },
    };
  }

  log(pluginId: string, level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!LEVELS.includes(level) || typeof message !== 'string') {
      throw new InvalidArgumentError(`log needs a level (${LEVELS.join(', ')}) and a string message.`, { pluginId });
    }
    let child = this.loggers.get(pluginId);
    if (!child) this.loggers.set(pluginId, (child = this.logger.child({ plugin: pluginId })));
    const safeFields = fields && typeof fields === 'object' && !Array.isArray(fields) ? { fields } : {};
    child[level](safeFields, message.slice(0, 8192));
  }

  async emit(pluginId: string, topic: string, data: unknown): Promise<void> {
    if (!isValidTopic(topic)) throw new InvalidArgumentError(`'${String(topic)}' is not a valid topic.`, { pluginId });
    // The source is stamped here, from the channel the request came in on: a plugin cannot name
    // another. Emitting only enqueues: waiting for delivery would deadlock two plugins whose
    // handlers emit to each other.
    this.bus.publish({ topic, data, source: pluginId, at: Date.now() }).catch((e: unknown) => this.log(pluginId, 'error', `emit '${topic}' failed: ${String(e)}`));
  }

  async call(pluginId: string, target: string, method: string, args: unknown[]): Promise<unknown> {
    if (typeof target !== 'string' || typeof method !== 'string' || !Array.isArray(args)) {
      throw new InvalidArgumentError('call needs a plugin id, a method name and an argument list.', { pluginId });
    }
    const caller = this.directory?.manifestOf(pluginId);
    if (!caller?.dependencies?.some((d) => d.id === target)) {
      throw new PermissionDeniedError(pluginId, 'call', `${target}.${method}`, `a dependency on '${target}'`);
    }
    // A caller flooding its dependency would make the dependency's own calls miss their
    // deadlines (and crash it); calls past the cap fail on the caller's side instead.
    const inFlight = this.callsInFlight.get(pluginId) ?? 0;
    if (inFlight >= MAX_CALLS_IN_FLIGHT) {
      throw new ResourceLimitError(pluginId, 'calls', `Plugin '${pluginId}' already has ${inFlight} calls to other plugins in flight; await some first.`);
    }
    this.callsInFlight.set(pluginId, inFlight + 1);
    try {
      return await this.directory!.invoke(pluginId, target, method, args);
    } finally {
      this.callsInFlight.set(pluginId, (this.callsInFlight.get(pluginId) ?? 1) - 1);
    }
  }
}
