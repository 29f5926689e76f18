import type { SerializedError } from '../../errors.js';

/** Deepest nesting of arrays and objects accepted in JSON text from a plugin. */
export const MAX_JSON_DEPTH = 128;

/**
 * Nesting depth of JSON text, in one linear pass (brackets inside strings are skipped).
 * The host checks it before `JSON.parse`: text an isolate could stringify may still be
 * too deep for the host's own stack when parsed or printed later.
 *
 * @example
 * jsonDepth('[[1],{"a":[2]}]'); // 3
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 /* [ */ || c === 123 /* { */) max = Math.max(max, ++depth);
    else if (c === 93 /* ] */ || c === 125 /* } */) depth--;
  }
  return max;
}

/** An error as it is sent into an isolate. */
export function errorToWire(e: unknown): SerializedError {
  const err = e as { name?: string; message?: string; code?: string };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), code: err?.code };
}

/**
 * Copies decoded plugin data into objects without a prototype, so `constructor` or
 * `prototype` keys are ordinary data that reach nothing, and drops `__proto__` keys, which
 * would replace the prototype of any object host code copies them into (`Object.assign`,
 * spread into a class instance, naive merges). Primitives (the common case) are returned as
 * they are, at no cost.
 *
 * @example
 * const v = nullPrototype(JSON.parse('{"__proto__":{"polluted":true}}')) as object;
 * Object.getPrototypeOf(v); // null
 */
export function nullPrototype<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(nullPrototype) as T;
  const copy = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    if (key !== '__proto__') copy[key] = nullPrototype((value as Record<string, unknown>)[key]);
  }
  return copy as T;
}
