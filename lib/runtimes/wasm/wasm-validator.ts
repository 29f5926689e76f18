import { PluginLoadError } from '../../errors.js';
import type { LifecycleHook } from '../protocol.js';
import {
  ABI_EXPORTS,
  DESCRIBE_EXPORT,
  EXPORT_PREFIX,
  HANDLER_PREFIX,
  HOOK_PREFIX,
  HOST_IMPORT_MODULE,
  HOST_IMPORTS,
  LIFECYCLE_HOOKS,
  METHOD_NAME,
  WASM_PAGE_BYTES,
  type WasmSignature,
} from './wasm-abi.js';
import { readWasmSections, WasmFormatError, type WasmFuncType, type WasmModuleInfo } from './wasm-sections.js';

/** What a module may declare, from the plugin's limits. */
export interface WasmPolicy {
  /** Largest maximum a memory may declare, bytes (`maxMemoryMB` × 1 MiB). */
  maxMemoryBytes: number;
  /** Largest maximum a table may declare, elements. */
  maxTableElements: number;
}

/** What the host may call in a module that passed {@link checkWasmModule}. */
export interface WasmAbi {
  /** Methods from `lm_<name>` exports. */
  exposed: string[];
  /** Event handler methods from `lm_on_<name>` exports. */
  handlers: string[];
  /** Lifecycle hooks from `lm_hook_<hook>` exports. */
  hooks: LifecycleHook[];
  describe: boolean;
  /** Largest memory the module can reach, bytes. */
  maxMemoryBytes: number;
}

/**
 * Checks a plugin's WebAssembly binary before it is compiled or instantiated: imports only
 * from module `logomesh` with the documented signatures; one memory, exported as `memory`,
 * with a declared maximum within `maxMemoryMB`; every table with a maximum within
 * `maxTableElements`; no start function (code runs only under a deadline, through an
 * export); and the ABI exports with their signatures. Every problem is listed in one
 * {@link PluginLoadError}.
 *
 * @example
 * const abi = checkWasmModule(bytes, { maxMemoryBytes: 16 * 2 ** 20, maxTableElements: 10_000 }, 'acme.text');
 * abi.exposed; // ['upper']
 */
export function checkWasmModule(bytes: Uint8Array, policy: WasmPolicy, pluginId: string): WasmAbi {
  let info: WasmModuleInfo;
  try {
    info = readWasmSections(bytes);
  } catch (e) {
    if (!(e instanceof WasmFormatError)) throw e;
    throw new PluginLoadError(`Plugin '${pluginId}' entry point is not a WebAssembly module the host accepts: ${e.message}.`, { pluginId, cause: e });
  }
  const problems: string[] = [];
  const offered = Object.keys(HOST_IMPORTS).map((n) => `${HOST_IMPORT_MODULE}.${n}`).join(', ');

  for (const imp of info.imports) {
    const what = `import '${imp.module}'.'${imp.name}' (${imp.kind})`;
    const signature = Object.hasOwn(HOST_IMPORTS, imp.name) ? HOST_IMPORTS[imp.name] : undefined;
    if (imp.module !== HOST_IMPORT_MODULE || imp.kind !== 'function' || !signature) {
      problems.push(`${what} is not offered by the host; a plugin may import only ${offered}`);
    } else if (!sameSignature(info.types[imp.type!], signature)) {
      problems.push(`${what} has type ${show(info.types[imp.type!])}; the host offers ${show(signature)}`);
    }
  }

  const limitMB = policy.maxMemoryBytes / 2 ** 20;
  info.memories.forEach((m, i) => {
    const what = `memory ${i}`;
    if (m.shared || m.memory64) problems.push(`${what} is ${m.shared ? 'shared' : '64-bit'}; only unshared 32-bit memories are accepted`);
    else if (m.max === undefined) {
      problems.push(`${what} declares no maximum; declare one of at most ${Math.floor(policy.maxMemoryBytes / WASM_PAGE_BYTES)} pages (maxMemoryMB ${limitMB}), e.g. (memory 1 16)`);
    } else if (m.max * WASM_PAGE_BYTES > policy.maxMemoryBytes) {
      problems.push(`${what} declares a maximum of ${m.max} pages (${(m.max * WASM_PAGE_BYTES) / 2 ** 20} MiB), more than maxMemoryMB ${limitMB}`);
    }
  });
  if (info.memories.length > 1) problems.push(`the module defines ${info.memories.length} memories; define one`);
  info.tables.forEach((t, i) => {
    if (t.max === undefined) problems.push(`table ${i} declares no maximum; declare one of at most ${policy.maxTableElements} elements`);
    else if (t.max > policy.maxTableElements) problems.push(`table ${i} declares a maximum of ${t.max} elements, more than ${policy.maxTableElements}`);
  });
  if (info.start !== undefined) {
    problems.push(`the module has a start function (function ${info.start}); do initialisation in an exported lm_hook_onStart instead`);
  }

  const abi: WasmAbi = { exposed: [], handlers: [], hooks: [], describe: false, maxMemoryBytes: (info.memories[0]?.max ?? 0) * WASM_PAGE_BYTES };
  const exported = new Map(info.exports.map((e) => [e.name, e]));
  const memory = exported.get('memory');
  if (!memory || memory.kind !== 'memory' || info.memories.length === 0) problems.push(`the module must define its memory and export it as 'memory'`);
  const typeOf = (name: string) => {
    const e = exported.get(name);
    return e?.kind === 'function' ? info.types[info.functions[e.index]] : undefined;
  };
  const expect = (name: string, allowed: readonly WasmSignature[], required: boolean) => {
    const type = typeOf(name);
    if (!type) {
      if (required || exported.has(name)) problems.push(`the module must export function '${name}' ${allowed.map(show).join(' or ')}`);
      return false;
    }
    if (!allowed.some((s) => sameSignature(type, s))) {
      problems.push(`export '${name}' has type ${show(type)}; the ABI wants ${allowed.map(show).join(' or ')}`);
      return false;
    }
    return true;
  };
  expect('alloc', ABI_EXPORTS.alloc, true);
  expect('dealloc', ABI_EXPORTS.dealloc, false);
  abi.describe = expect(DESCRIBE_EXPORT, ABI_EXPORTS.describe, false);

  for (const { name } of info.exports) {
    if (!name.startsWith(EXPORT_PREFIX) || name === DESCRIBE_EXPORT) continue;
    if (name.startsWith(HOOK_PREFIX)) {
      const hook = name.slice(HOOK_PREFIX.length) as LifecycleHook;
      if (!LIFECYCLE_HOOKS.includes(hook)) problems.push(`export '${name}' names no lifecycle hook (${LIFECYCLE_HOOKS.join(', ')})`);
      else if (expect(name, ABI_EXPORTS.json, true)) abi.hooks.push(hook);
      continue;
    }
    const handler = name.startsWith(HANDLER_PREFIX);
    const method = name.slice(handler ? HANDLER_PREFIX.length : EXPORT_PREFIX.length);
    if (!METHOD_NAME.test(method)) problems.push(`export '${name}': '${method}' is not a method name (letters, digits and _, at most 128)`);
    else if (expect(name, ABI_EXPORTS.json, true)) (handler ? abi.handlers : abi.exposed).push(method);
  }

  if (problems.length > 0) {
    throw new PluginLoadError(
      `Plugin '${pluginId}' WebAssembly module was refused:\n` + problems.map((p) => `  - ${p}`).join('\n') +
        `\nSee docs/plugins/RUNTIME_SPECIFICATIONS.md (WebAssembly ABI).`,
      { pluginId },
    );
  }
  return abi;
}

function sameSignature(type: WasmFuncType | undefined, want: WasmSignature): boolean {
  return type !== undefined && type.params.join() === want.params.join() && type.results.join() === want.results.join();
}

function show(type: WasmSignature | undefined): string {
  return type ? `(${type.params.join(', ')}) -> (${type.results.join(', ')})` : '(unknown type)';
}
