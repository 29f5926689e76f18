/**
 * The LogoMesh WebAssembly ABI as constants shared by the host-side validator and the worker
 * (the prose is in docs/plugins/RUNTIME_SPECIFICATIONS.md). A plugin module exports `memory`,
 * `alloc`, optionally `dealloc`, and `lm_*` functions that take and return JSON text.
 *
 * @example
 * exportFor({ type: 'call', method: 'upper' }); // 'lm_upper'
 */
import type { LifecycleHook } from '../protocol.js';

/** The only import module a plugin may use. */
export const HOST_IMPORT_MODULE = 'logomesh';
/** Prefix of every export the host calls. */
export const EXPORT_PREFIX = 'lm_';
/** `lm_on_<method>(ptr, len)`: an event handler named in `lm_describe`. */
export const HANDLER_PREFIX = 'lm_on_';
/** `lm_hook_<hook>(ptr, len)`: a lifecycle hook such as `lm_hook_onStart`. */
export const HOOK_PREFIX = 'lm_hook_';
/** `lm_describe() -> i64`: optional self-description (event handlers, exposed subset). */
export const DESCRIBE_EXPORT = 'lm_describe';
/** Method names a plugin may expose: an identifier of at most 128 characters. */
export const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Bytes in one WebAssembly memory page. */
export const WASM_PAGE_BYTES = 65536;

/** `log(level, ptr, len)` levels, by the integer the plugin passes. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export const LIFECYCLE_HOOKS: readonly LifecycleHook[] = [
  'onStart',
  'onStop',
  'serializeState',
  'deserializeState',
  'checkHealth',
  'onDependencyDown',
  'onDependencyUp',
];

/** A function signature, as the validator compares it. */
export interface WasmSignature {
  params: string[];
  results: string[];
}

/**
 * What the host offers under module `logomesh`, with the exact signatures the validator
 * requires: `log` and `emit` are fire-and-forget; `request(ptr, len) -> i64` takes any gateway
 * request as JSON text and blocks until the answer (JSON text in memory from `alloc`, packed
 * `ptr << 32 | len`) is there.
 */
export const HOST_IMPORTS: Readonly<Record<string, WasmSignature>> = Object.freeze({
  log: { params: ['i32', 'i32', 'i32'], results: [] },
  emit: { params: ['i32', 'i32', 'i32', 'i32'], results: [] },
  request: { params: ['i32', 'i32'], results: ['i64'] },
});

/** The import that waits for an answer. */
export const REQUEST_IMPORT = 'request';

/** Signatures of the exports the host calls. A JSON result is a packed i64 or two i32s. */
export const ABI_EXPORTS = {
  alloc: [{ params: ['i32'], results: ['i32'] }],
  dealloc: [{ params: ['i32', 'i32'], results: [] }],
  describe: [
    { params: [], results: ['i64'] },
    { params: [], results: ['i32', 'i32'] },
  ],
  json: [
    { params: ['i32', 'i32'], results: ['i64'] },
    { params: ['i32', 'i32'], results: ['i32', 'i32'] },
  ],
} as const satisfies Record<string, readonly WasmSignature[]>;

/** The export that runs one invocation's target. */
export function exportFor(target: { type: 'call'; method: string } | { type: 'event'; method: string } | { type: 'hook'; hook: LifecycleHook }): string {
  if (target.type === 'call') return EXPORT_PREFIX + target.method;
  if (target.type === 'event') return HANDLER_PREFIX + target.method;
  return HOOK_PREFIX + target.hook;
}
