// The raw baselines' Wasm call (raw-wasm-thread.ts, raw-wasm-piscina-task.ts): the module
// instantiated with no-op host imports, each JSON text marshalled as the WasmRuntime worker
// does it (alloc, copy in, call, decode the packed result).

interface Instance {
  exports: Record<string, unknown> & { memory: { buffer: ArrayBuffer }; alloc(len: number): number };
}
const WebAssemblyApi = (globalThis as unknown as {
  WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => Instance };
}).WebAssembly;

/**
 * Instantiates `bytes` and returns the named export as a JSON-text-in, JSON-text-out function.
 *
 * @example
 * const upper = rawWasmCall(bytes, 'lm_upper'); upper('["hi"]'); // '"HI"'
 */
export function rawWasmCall(bytes: Uint8Array, exportName: string): (json: string) => string | null {
  const noop = () => undefined;
  const { exports } = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(bytes), { logomesh: { log: noop, emit: noop } });
  const fn = exports[exportName] as (ptr: number, len: number) => bigint;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return (json) => {
    const input = encoder.encode(json);
    const ptr = exports.alloc(input.length) >>> 0;
    new Uint8Array(exports.memory.buffer, ptr, input.length).set(input);
    const packed = fn(ptr, input.length);
    const at = Number(BigInt.asUintN(32, packed >> 32n));
    const len = Number(BigInt.asUintN(32, packed));
    return len === 0 ? null : decoder.decode(new Uint8Array(exports.memory.buffer, at, len));
  };
}
