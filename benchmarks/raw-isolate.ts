import ivm from 'isolated-vm';
import { DEFAULT_RESOURCE_LIMITS } from '../lib/registry/manifest-schema.js';

/** Same heap limit as a plugin that sets none, so raw and ours size their isolates alike. */
const MEMORY_LIMIT_MB = DEFAULT_RESOURCE_LIMITS.maxMemoryMB;

/** The trivial module the raw baselines evaluate: the echo fixture without the SDK. */
export const TRIVIAL_MODULE = 'class Echo { echo(value) { return value; } }\nexport default Echo;\n';

const ECHO_FUNCTION = '(async (json) => JSON.stringify({ ok: true, value: JSON.parse(json).args[0] }))';

/** A bare isolate holding one async JSON-in/JSON-out function: the transport JsRuntime uses, and nothing else. */
export interface RawEchoChannel {
  readonly isolate: ivm.Isolate;
  /** One round trip: JSON text in, JSON text out, as `JsRuntime.invoke` sends it. */
  call(json: string, options?: { timeout?: number }): Promise<string>;
  dispose(): void;
}

/**
 * Opens the raw call baseline: `Reference.apply` with copied arguments and a copied,
 * awaited promise result, in an isolate with no bootstrap, SDK or plugin.
 *
 * @example
 * const raw = await rawEchoChannel();
 * JSON.parse(await raw.call('{"args":["x"]}')).value; // 'x'
 */
export async function rawEchoChannel(): Promise<RawEchoChannel> {
  const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB });
  const context = await isolate.createContext();
  const fn = (await context.eval(ECHO_FUNCTION, { reference: true })) as ivm.Reference<(json: string) => Promise<string>>;
  return {
    isolate,
    call: async (json, options = {}) => {
      const out: unknown = await fn.apply(undefined, [json], {
        arguments: { copy: true },
        result: { promise: true, copy: true },
        ...(options.timeout !== undefined && { timeout: options.timeout }),
      });
      return out as string;
    },
    dispose: () => {
      fn.release();
      if (!isolate.isDisposed) isolate.dispose();
    },
  };
}

/** A bare isolate with one context and the trivial module evaluated in it. */
export interface RawModuleIsolate {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly module: ivm.Module;
}

/**
 * The raw load baseline: new Isolate, createContext, compileModule, instantiate, evaluate.
 * Dispose with `handle.isolate.dispose()`.
 *
 * @example
 * const raw = await rawModuleIsolate(); raw.isolate.dispose();
 */
export async function rawModuleIsolate(): Promise<RawModuleIsolate> {
  const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB });
  const context = await isolate.createContext();
  const module = await isolate.compileModule(TRIVIAL_MODULE, { filename: 'file:///raw/index.js' });
  await module.instantiate(context, () => {
    throw new Error('the trivial module imports nothing');
  });
  await module.evaluate();
  return { isolate, context, module };
}
