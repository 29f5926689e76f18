import { InvalidArgumentError } from '../errors.js';

/**
 * Deterministic JSON for hashing and signing: object keys sorted recursively (by UTF-16
 * code unit, as RFC 8785 does), no whitespace. Values equal as JSON give the same string
 * whatever order their keys were written in.
 *
 * Throws `InvalidArgumentError` naming the JSON pointer of anything JSON cannot carry:
 * `undefined`, functions, symbols, bigints, `NaN`/`Infinity`, class instances (`Date`,
 * `Map`, `Buffer`…), sparse array holes and cycles. `JSON.stringify` would drop or coerce
 * these silently, so a signer and a verifier could disagree about what was signed.
 *
 * @example
 * canonicalJson({ b: 1, a: [true, null] }); // '{"a":[true,null],"b":1}'
 * canonicalJson({ a: [true, null], b: 1 }); // the same string
 */
export function canonicalJson(value: unknown): string {
  return encode(value, '', new Set());
}

function encode(value: unknown, pointer: string, ancestors: Set<object>): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return JSON.stringify(value);
    throw refuse(pointer, `${value} is not a JSON number`);
  }
  if (typeof value !== 'object') throw refuse(pointer, `a ${typeof value} has no JSON form`);
  if (ancestors.has(value)) throw refuse(pointer, 'is a circular reference');

  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      // Array.from visits holes as undefined, so a sparse array is refused, not collapsed.
      return `[${Array.from(value, (item, i) => encode(item, `${pointer}/${i}`, ancestors)).join(',')}]`;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw refuse(pointer, `is a ${value.constructor?.name ?? 'non-plain'} instance, not a plain object`);
    }
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${encode(record[key], `${pointer}/${escapePointer(key)}`, ancestors)}`);
    return `{${members.join(',')}}`;
  } finally {
    ancestors.delete(value);
  }
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function refuse(pointer: string, reason: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `canonicalJson: the value at '${pointer || '/'}' ${reason}; only plain objects, arrays, ` +
      `strings, finite numbers, booleans and null can be hashed or signed.`,
  );
}
