import type { TSchema } from '@sinclair/typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import { InvalidArgumentError, PluginHostError } from '../errors.js';

const API_META = Symbol.for('logomesh.pluginApi');

interface ApiEntry {
  operation: string;
  method: string;
  schema?: TSchema;
}

export interface PluginApiOptions {
  /** JSON Schema (e.g. TypeBox) the plugin's argument must satisfy; checked before the method runs. */
  args?: TSchema;
}

/** Who is calling a host service: passed as the method's second argument. */
export interface ServiceCaller {
  pluginId: string;
}

/**
 * Makes a method of a host service class callable by plugins as `operation`, through
 * `ctx.services.call(operation, args)`. Only decorated methods are reachable, and only by
 * plugins whose manifest has a `system` permission naming the operation.
 *
 * @example
 * @injectable()
 * class LlmService {
 *   @PluginApi('llm.complete', { args: Type.Object({ prompt: Type.String({ maxLength: 4000 }) }) })
 *   complete(args: { prompt: string }, caller: ServiceCaller) { return { text: '…' }; }
 * }
 */
export function PluginApi(operation: string, options: PluginApiOptions = {}) {
  return (target: object, key: string | symbol, _descriptor?: PropertyDescriptor): void => {
    if (typeof key !== 'string') throw new TypeError('@PluginApi() needs a method with a string name');
    const ctor = target.constructor as { [API_META]?: ApiEntry[] };
    const own = Object.prototype.hasOwnProperty.call(ctor, API_META) ? ctor[API_META]! : [...(ctor[API_META] ?? [])];
    own.push({ operation, method: key, schema: options.args });
    Object.defineProperty(ctor, API_META, { value: own, configurable: true });
  };
}

export class ServiceNotFoundError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_SERVICE_NOT_FOUND';
  constructor(operation: string, pluginId?: string) {
    super(ServiceNotFoundError.code, `No host service offers '${operation}'.`, { pluginId });
  }
}

/**
 * The host services plugins may call: the decorated methods of registered instances.
 *
 * @example
 * const services = new HostServiceRegistry();
 * services.register(new LlmService());
 * await services.invoke('llm.complete', { prompt: 'hi' }, { pluginId: 'chat' });
 */
export class HostServiceRegistry {
  private readonly ops = new Map<string, { instance: Record<string, (a: unknown, c: ServiceCaller) => unknown>; method: string; validate?: ValidateFunction }>();
  private readonly ajv = new Ajv({ allErrors: true, strict: false });

  register(instance: object): string[] {
    const entries = (instance.constructor as { [API_META]?: ApiEntry[] })[API_META] ?? [];
    if (entries.length === 0) throw new InvalidArgumentError(`${instance.constructor.name} has no @PluginApi() methods.`);
    for (const { operation, method, schema } of entries) {
      if (this.ops.has(operation)) throw new InvalidArgumentError(`Host service operation '${operation}' is registered twice.`);
      this.ops.set(operation, {
        instance: instance as Record<string, (a: unknown, c: ServiceCaller) => unknown>,
        method,
        validate: schema ? this.ajv.compile(schema) : undefined,
      });
    }
    return entries.map((e) => e.operation);
  }

  has(operation: string): boolean {
    return this.ops.has(operation);
  }

  list(): string[] {
    return [...this.ops.keys()].sort();
  }

  async invoke(operation: string, args: unknown, caller: ServiceCaller): Promise<unknown> {
    const entry = this.ops.get(operation);
    if (!entry) throw new ServiceNotFoundError(operation, caller.pluginId);
    if (entry.validate && !entry.validate(args)) {
      const why = entry.validate.errors?.map((e) => `${e.instancePath || 'args'} ${e.message}`).join('; ');
      throw new InvalidArgumentError(`Arguments of '${operation}' are invalid: ${why}.`, { pluginId: caller.pluginId });
    }
    return entry.instance[entry.method](args, caller);
  }
}
