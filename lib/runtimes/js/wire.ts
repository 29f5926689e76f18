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
