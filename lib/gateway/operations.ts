import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Ajv, type ValidateFunction } from 'ajv';

// Every plugin → host request, as a schema: the wire format of the one door. The protocol
// types are derived from these, and each request is checked against its schema (compiled
// once) before the gateway looks at it.

const Path = Type.String({ minLength: 1, maxLength: 4096 });
const Encoding = Type.Union([Type.Literal('utf8'), Type.Literal('base64')]);
const Level = Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]);
const Int = (min = 0) => Type.Integer({ minimum: min, maximum: Number.MAX_SAFE_INTEGER });
const op = <K extends string, P extends Record<string, TSchema>>(name: K, props: P) =>
  Type.Object({ op: Type.Literal(name), ...props }, { additionalProperties: false });

export const GatewayOperationSchemas = {
  log: op('log', { level: Level, message: Type.String({ maxLength: 8192 }), fields: Type.Optional(Type.Unknown()) }),
  emit: op('emit', { topic: Type.String({ minLength: 1, maxLength: 256 }), data: Type.Optional(Type.Unknown()) }),
  call: op('call', {
    pluginId: Type.String({ minLength: 1, maxLength: 64 }),
    method: Type.String({ minLength: 1, maxLength: 128 }),
    args: Type.Array(Type.Unknown(), { maxItems: 64 }),
  }),
  'fs.readFile': op('fs.readFile', { path: Path, encoding: Type.Optional(Encoding) }),
  'fs.writeFile': op('fs.writeFile', { path: Path, data: Type.String(), encoding: Type.Optional(Encoding) }),
  'fs.appendFile': op('fs.appendFile', { path: Path, data: Type.String(), encoding: Type.Optional(Encoding) }),
  'fs.readdir': op('fs.readdir', { path: Path }),
  'fs.stat': op('fs.stat', { path: Path }),
  'fs.mkdir': op('fs.mkdir', { path: Path, recursive: Type.Optional(Type.Boolean()) }),
  'fs.rm': op('fs.rm', { path: Path, recursive: Type.Optional(Type.Boolean()) }),
  'fs.open': op('fs.open', {
    path: Path,
    flags: Type.Union(['r', 'r+', 'w', 'wx', 'a'].map((f) => Type.Literal(f))),
  }),
  'fs.read': op('fs.read', { handle: Int(1), length: Int(), position: Type.Optional(Int()), encoding: Type.Optional(Encoding) }),
  'fs.write': op('fs.write', { handle: Int(1), data: Type.String(), position: Type.Optional(Int()), encoding: Type.Optional(Encoding) }),
  'fs.close': op('fs.close', { handle: Int(1) }),
  'net.fetch': op('net.fetch', {
    url: Type.String({ minLength: 1, maxLength: 8192 }),
    init: Type.Optional(
      Type.Object(
        {
          method: Type.Optional(Type.String({ maxLength: 16 })),
          headers: Type.Optional(Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 8192 }))),
          body: Type.Optional(Type.String()),
          bodyEncoding: Type.Optional(Encoding),
          responseEncoding: Type.Optional(Encoding),
        },
        { additionalProperties: false },
      ),
    ),
  }),
  'services.call': op('services.call', { operation: Type.String({ minLength: 1, maxLength: 128 }), args: Type.Optional(Type.Unknown()) }),
} as const;

type Schemas = typeof GatewayOperationSchemas;
export type GatewayOperation = keyof Schemas;
/** One request of each operation, as it arrives from a sandbox. */
export type GatewayRequestOf<K extends GatewayOperation> = Static<Schemas[K]>;
export type GatewayRequest = { [K in GatewayOperation]: GatewayRequestOf<K> }[GatewayOperation];

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = Object.fromEntries(
  Object.entries(GatewayOperationSchemas).map(([name, schema]) => [name, ajv.compile(schema)]),
) as Record<GatewayOperation, ValidateFunction>;

/**
 * Checks a decoded request against its operation's schema.
 * Returns the operation name, or a message saying what is wrong.
 *
 * @example
 * checkRequest({ op: 'emit', topic: 'a.b' }); // { ok: true, op: 'emit' }
 */
export function checkRequest(request: unknown): { ok: true; op: GatewayOperation } | { ok: false; message: string } {
  const name = (request as { op?: unknown } | null)?.op;
  if (typeof name !== 'string' || !Object.hasOwn(validators, name)) return { ok: false, message: `unknown host operation '${String(name)}'` };
  const validate = validators[name as GatewayOperation];
  if (validate(request)) return { ok: true, op: name as GatewayOperation };
  const e = validate.errors?.[0];
  return { ok: false, message: `${name}: ${e?.instancePath || 'request'} ${e?.message ?? 'is invalid'}` };
}
