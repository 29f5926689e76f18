import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Subject, type Observable } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { IHostOptions, ILogger } from '../di/tokens.js';
import { InvalidArgumentError, PermissionDeniedError, PluginHostError, PluginNotFoundError, PluginSuspendedError, ResourceLimitError } from '../errors.js';
import { IEventBus } from '../events/event-bus.js';
import { isValidTopic } from '../events/topic.js';
import type { HostOptions } from '../host/host-options.js';
import type { PluginManifest, ResourceLimits } from '../registry/manifest-schema.js';
import type { GatewayPort } from '../runtimes/protocol.js';
import { FsGuard } from './fs-guard.js';
import { HostServiceRegistry } from './host-services.js';
import { NetworkGuard, type FetchRequest, type FetchResponse } from './network-guard.js';
import { checkRequest, type GatewayOperation, type GatewayRequestOf } from './operations.js';
import { PermissionSet } from './permissions.js';
import { TokenBucket } from './token-bucket.js';

/** What the gateway needs to know from the host about loaded plugins. */
export interface PluginDirectory {
  /** Why a plugin is suspended, if it is: its requests are refused meanwhile. */
  suspendedReason(pluginId: string): string | undefined;
  /** Call an exposed method of a started plugin on behalf of `callerId`. */
  invoke(callerId: string, pluginId: string, method: string, args: unknown[]): Promise<unknown>;
}

/** One privileged operation a plugin attempted, as the host's audit stream reports it. */
export interface AuditEvent {
  pluginId: string;
  operation: GatewayOperation;
  target: string;
  outcome: 'allowed' | 'denied' | 'failed';
  /** The error code, for `denied` and `failed`. */
  code?: string;
  at: number;
}

/** What the gateway is told about a plugin when its sandbox is built. */
export interface PluginAccessInit {
  pluginId: string;
  manifest: PluginManifest;
  dir: string;
  limits: Required<ResourceLimits>;
}

export const IApiGateway = Symbol.for('logomesh.IApiGateway');
export interface IApiGateway {
  readonly audit$: Observable<AuditEvent>;
  readonly services: HostServiceRegistry;
  attach(directory: PluginDirectory): void;
  /** Builds a plugin's permissions and guards; called before its sandbox starts. */
  register(init: PluginAccessInit): void;
  /** Closes a plugin's file handles and requests; called when its sandbox goes away. */
  release(pluginId: string): Promise<void>;
  /** The channel a runtime hands its sandbox: every request becomes a named gateway method. */
  portFor(pluginId: string): GatewayPort;
  /** Whether `pluginId` may receive events on `topic` (its `events` read permission). */
  mayReceive(pluginId: string, topic: string): boolean;
  usage(pluginId: string): PluginUsage | undefined;
}

/** What a plugin has used through the gateway. */
export interface PluginUsage {
  filesystem: { filesOpen: number; bytesRead: number; bytesWritten: number };
  network: { bytesIn: number; bytesOut: number; requestCount: number };
  denied: number;
  /** Gateway requests by operation. */
  requests?: Record<string, number>;
}

/** The folder a plugin's relative `ctx.fs` paths live in: `<dataDir>/plugins/<id>/data`. */
export function pluginDataDir(options: Pick<HostOptions, 'dataDir'>, pluginId: string): string {
  return resolve(options.dataDir ?? '.logomesh', 'plugins', pluginId, 'data');
}

/** Largest `fields` object of one plugin log line, as JSON. */
export const MAX_LOG_FIELDS_BYTES = 8192;

/** Calls one plugin may have in flight to other plugins at once. */
export const MAX_CALLS_IN_FLIGHT = 32;

class PluginAccess {
  callsInFlight = 0;
  denied = 0;
  /** Requests by operation, for the profiler. */
  readonly requests: Record<string, number> = Object.create(null);
  constructor(
    readonly pluginId: string,
    readonly manifest: PluginManifest,
    readonly permissions: PermissionSet,
    readonly fs: FsGuard,
    readonly net: NetworkGuard,
    readonly bucket: TokenBucket,
  ) {}
}

/**
 * The one door from a plugin into the host. Runtimes only marshal requests; every decision
 * is taken here, in the same order for every operation: the request's shape (schema), the
 * plugin's rate, its permission, its limits; then the operation runs and is audited.
 *
 * @example
 * gateway.register({ pluginId: 'notes', manifest, dir, limits });
 * await gateway.portFor('notes').request({ op: 'fs.readFile', path: 'notes.txt' });
 */
@injectable()
export class ApiGateway implements IApiGateway {
  private directory?: PluginDirectory;
  private readonly plugins = new Map<string, PluginAccess>();
  private readonly loggers = new Map<string, Logger>();
  private readonly audits = new Subject<AuditEvent>();
  readonly audit$ = this.audits.asObservable();
  readonly services = new HostServiceRegistry();

  constructor(
    @inject(IHostOptions) private readonly options: HostOptions,
    @inject(ILogger) private readonly logger: Logger,
    @inject(IEventBus) private readonly bus: IEventBus,
  ) {}

  attach(directory: PluginDirectory): void {
    this.directory = directory;
  }

  register({ pluginId, manifest, dir, limits }: PluginAccessInit): void {
    const dataDir = pluginDataDir(this.options, pluginId);
    const permissions = PermissionSet.from(manifest, { pluginId, pluginDir: dir, dataDir }, this.options.permissionPolicy);
    const fs = new FsGuard({
      pluginId,
      roots: permissions.fileRoots(),
      baseDir: dataDir,
      maxFileHandles: limits.maxFileHandles,
      writeQuotaBytes: this.options.writeQuotaMB === undefined ? undefined : this.options.writeQuotaMB * 1024 * 1024,
      needed: (path, access) => permissions.needed('filesystem', path, access),
    });
    const net = new NetworkGuard({
      pluginId,
      allows: (url) => permissions.allowsNetwork(url),
      needed: (url) => permissions.needed('network', url.href),
      allowAddress: this.options.network?.allowAddress,
      resolve: this.options.network?.resolve,
      kbps: limits.maxNetworkKbps,
    });
    const rate = this.options.gatewayRate ?? { perSecond: 2000, burst: 500 };
    this.plugins.set(pluginId, new PluginAccess(pluginId, manifest, permissions, fs, net, new TokenBucket(rate.perSecond, rate.burst)));
  }

  async release(pluginId: string): Promise<void> {
    const access = this.plugins.get(pluginId);
    if (!access) return;
    this.plugins.delete(pluginId);
    this.loggers.delete(pluginId);
    access.net.close();
    await access.fs.closeAll();
  }

  mayReceive(pluginId: string, topic: string): boolean {
    return this.plugins.get(pluginId)?.permissions.allowsTopic(topic, 'subscribe') ?? false;
  }

  usage(pluginId: string): PluginUsage | undefined {
    const access = this.plugins.get(pluginId);
    if (!access) return undefined;
    const { bytesIn, bytesOut, requestCount } = access.net.stats();
    return { filesystem: access.fs.stats(), network: { bytesIn, bytesOut, requestCount }, denied: access.denied, requests: { ...access.requests } };
  }

  portFor(pluginId: string): GatewayPort {
    return { request: (raw) => this.handle(pluginId, raw) };
  }

  private async handle(pluginId: string, raw: unknown): Promise<unknown> {
    const access = this.plugins.get(pluginId);
    if (!access) throw new PluginNotFoundError(pluginId, 'has no access to the host (it is not loaded)');
    const check = checkRequest(raw);
    if (!check.ok) throw new InvalidArgumentError(check.message, { pluginId });
    const suspended = this.directory?.suspendedReason(pluginId);
    if (suspended !== undefined && check.op !== 'log') throw new PluginSuspendedError(pluginId, suspended);
    // Throttled, not refused: a flooding plugin waits, and its own request budget (inside
    // the isolate) keeps what waits bounded.
    await access.bucket.take(1);
    const req = raw as { op: GatewayOperation };
    access.requests[check.op] = (access.requests[check.op] ?? 0) + 1;
    switch (check.op) {
      case 'log':
        return this.log(access, req as GatewayRequestOf<'log'>);
      case 'emit':
        return this.emit(access, req as GatewayRequestOf<'emit'>);
      case 'call':
        return this.call(access, req as GatewayRequestOf<'call'>);
      case 'net.fetch':
        return this.fetch(access, req as GatewayRequestOf<'net.fetch'>);
      case 'services.call':
        return this.callService(access, req as GatewayRequestOf<'services.call'>);
      default:
        return this.filesystem(access, req as FsRequest);
    }
  }

  private log(access: PluginAccess, { level, message, fields }: GatewayRequestOf<'log'>): void {
    let child = this.loggers.get(access.pluginId);
    if (!child) this.loggers.set(access.pluginId, (child = this.logger.child({ plugin: access.pluginId })));
    // Fields are capped like the message: serialising megabytes per line would stall the host.
    const small = fields !== null && typeof fields === 'object' && !Array.isArray(fields) && JSON.stringify(fields).length <= MAX_LOG_FIELDS_BYTES;
    child[level](small ? { fields } : fields === undefined ? {} : { fieldsDropped: true }, message);
  }

  private async emit(access: PluginAccess, { topic, data }: GatewayRequestOf<'emit'>): Promise<void> {
    if (!isValidTopic(topic)) throw new InvalidArgumentError(`'${topic}' is not a valid topic.`, { pluginId: access.pluginId });
    if (!access.permissions.allowsTopic(topic, 'publish')) this.deny(access, 'emit', topic, access.permissions.needed('events', topic, 'write'));
    this.audit(access, 'emit', topic, 'allowed');
    // The source is stamped here, from the channel the request came in on: a plugin cannot
    // name another. Emitting only enqueues: waiting for delivery would deadlock two plugins
    // whose handlers emit to each other.
    this.bus
      .publish({ topic, data, source: access.pluginId, at: Date.now() })
      .catch((e: unknown) => this.logger.error({ plugin: access.pluginId }, `emit '${topic}' failed: ${String(e)}`));
  }

  private async call(access: PluginAccess, { pluginId: target, method, args }: GatewayRequestOf<'call'>): Promise<unknown> {
    const what = `${target}#${method}`;
    if (!access.permissions.allowsCall(target, method)) this.deny(access, 'call', what, access.permissions.needed('plugins', what));
    // A caller flooding its dependency would make the dependency's own calls miss their
    // deadlines (and crash it); calls past the cap fail on the caller's side instead.
    if (access.callsInFlight >= MAX_CALLS_IN_FLIGHT) {
      throw new ResourceLimitError(access.pluginId, 'calls', `Plugin '${access.pluginId}' already has ${access.callsInFlight} calls to other plugins in flight; await some first.`);
    }
    access.callsInFlight++;
    try {
      return await this.audited(access, 'call', what, () => this.directory!.invoke(access.pluginId, target, method, args));
    } finally {
      access.callsInFlight--;
    }
  }

  private fetch(access: PluginAccess, { url, init }: GatewayRequestOf<'net.fetch'>): Promise<FetchResponse> {
    return this.audited(access, 'net.fetch', url, () => access.net.fetch(url, init as FetchRequest | undefined));
  }

  private callService(access: PluginAccess, { operation, args }: GatewayRequestOf<'services.call'>): Promise<unknown> {
    if (!access.permissions.allowsName('system', operation)) {
      this.deny(access, 'services.call', operation, access.permissions.needed('system', operation));
    }
    return this.audited(access, 'services.call', operation, () => this.services.invoke(operation, args, { pluginId: access.pluginId }));
  }

  private filesystem(access: PluginAccess, req: FsRequest): Promise<unknown> {
    const fs = access.fs;
    const target = 'path' in req ? req.path : `handle ${req.handle}`;
    return this.audited<unknown>(access, req.op, target, (): Promise<unknown> => {
      switch (req.op) {
        case 'fs.readFile':
          return fs.readFile(req.path, req.encoding);
        case 'fs.writeFile':
          return fs.writeFile(req.path, req.data, req.encoding);
        case 'fs.appendFile':
          return fs.appendFile(req.path, req.data, req.encoding);
        case 'fs.readdir':
          return fs.readdir(req.path);
        case 'fs.stat':
          return fs.stat(req.path);
        case 'fs.mkdir':
          return fs.mkdir(req.path, { recursive: req.recursive });
        case 'fs.rm':
          return fs.rm(req.path, { recursive: req.recursive });
        case 'fs.open':
          return fs.open(req.path, req.flags as 'r');
        case 'fs.read':
          return fs.read(req.handle, req.length, req.position, req.encoding);
        case 'fs.write':
          return fs.write(req.handle, req.data, req.position, req.encoding);
        case 'fs.close':
          return fs.close(req.handle);
      }
    });
  }

  /** Runs a privileged operation and reports it on the audit stream, denials included. */
  private async audited<T>(access: PluginAccess, operation: GatewayOperation, target: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.audit(access, operation, target, 'allowed');
      return result;
    } catch (error) {
      if (error instanceof PermissionDeniedError) this.denied(access, operation, target, error);
      else this.audit(access, operation, target, 'failed', (error as PluginHostError)?.code);
      throw error;
    }
  }

  private deny(access: PluginAccess, operation: GatewayOperation, target: string, needed: string): never {
    const error = new PermissionDeniedError(access.pluginId, operation, target, needed);
    this.denied(access, operation, target, error);
    throw error;
  }

  private denied(access: PluginAccess, operation: GatewayOperation, target: string, error: PermissionDeniedError): void {
    access.denied++;
    this.audit(access, operation, target, 'denied', error.code);
    this.bus.emitHost({
      type: 'permission.denied',
      pluginId: access.pluginId,
      operation,
      target,
      needed: error.requiredPermission,
      at: Date.now(),
    });
  }

  private audit(access: PluginAccess, operation: GatewayOperation, target: string, outcome: AuditEvent['outcome'], code?: string): void {
    if (this.audits.observed) this.audits.next({ pluginId: access.pluginId, operation, target, outcome, code, at: Date.now() });
  }
}

type FsRequest = GatewayRequestOf<Extract<GatewayOperation, `fs.${string}`>>;
