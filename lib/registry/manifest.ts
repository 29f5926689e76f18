/**
 * Manifest validation: the JSON Schema (compiled once, at module load) plus the rules a
 * schema cannot express. Every problem is reported at once, each with a JSON pointer and
 * a fix hint, so a plugin author fixes a manifest in one pass.
 *
 * @example
 * const result = validateManifest(JSON.parse(text));
 * if (!result.valid) for (const p of result.problems) console.log(p.pointer, p.message, p.hint);
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import semver from 'semver';
import { HOST_SOURCE } from '../events/host-events.js';
import { ManifestError, type ManifestProblem } from '../errors.js';
import { PLUGIN_API_VERSION } from '../version.js';
import {
  DEFAULT_RESOURCE_LIMITS,
  DEFAULT_THREADS,
  HOST_MAXIMUM_LIMITS,
  PLUGIN_ID_PATTERN,
  manifestJsonSchema,
  type PermissionType,
  type PluginManifest,
  type PluginRuntimeKind,
  type ResourceLimits,
  type Threads,
} from './manifest-schema.js';

/** What the host allows; both default to this host's values. */
export interface ManifestValidationOptions {
  /** Maxima a manifest's `resourceLimits` must stay within (default {@link HOST_MAXIMUM_LIMITS}). */
  hostLimits?: Required<ResourceLimits>;
  /** Plugin API version the host offers (default {@link PLUGIN_API_VERSION}). */
  apiVersion?: string;
}

/** Outcome of {@link validateManifest}: the typed manifest, or every problem found. */
export type ManifestValidation =
  | { valid: true; manifest: PluginManifest; problems: [] }
  | { valid: false; problems: ManifestProblem[] };

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true });
addFormats(ajv);
const validateSchema = ajv.compile<PluginManifest>(manifestJsonSchema());

const PLUGIN_ID = new RegExp(PLUGIN_ID_PATTERN);

/**
 * Checks a parsed `plugin.json` against the schema and the semantic rules.
 *
 * @example
 * const r = validateManifest({ id: 'hello', name: 'Hello', version: '1.0.0',
 *   entryPoint: 'index.js', runtime: 'nodejs', apiVersion: '^1.0.0' });
 * r.valid; // true
 */
export function validateManifest(input: unknown, options: ManifestValidationOptions = {}): ManifestValidation {
  const problems = new Map<string, ManifestProblem>();
  // One problem per pointer: the schema's wins, semantic rules only add to well-typed fields.
  const add = (p: ManifestProblem) => void (problems.has(p.pointer) || problems.set(p.pointer, p));
  if (!validateSchema(input)) condense(validateSchema.errors ?? []).forEach((e) => add(schemaProblem(e)));
  if (isRecord(input)) semanticProblems(input, options).forEach(add);
  if (problems.size > 0) return { valid: false, problems: [...problems.values()] };
  return { valid: true, manifest: structuredClone(input) as PluginManifest, problems: [] };
}

/**
 * Validates and returns the manifest, or throws a {@link ManifestError} listing every problem.
 *
 * @example
 * const manifest = parseManifest(JSON.parse(text), 'plugins/hello/plugin.json');
 */
export function parseManifest(input: unknown, source: string, options?: ManifestValidationOptions): PluginManifest {
  const result = validateManifest(input, options);
  if (result.valid) return result.manifest;
  const pluginId = isRecord(input) && typeof input.id === 'string' ? input.id : undefined;
  throw new ManifestError(result.problems, source, { pluginId });
}

/**
 * Reads, parses and validates a `plugin.json` file.
 *
 * @example
 * const manifest = await readManifestFile('plugins/hello/plugin.json');
 */
export async function readManifestFile(file: string, options?: ManifestValidationOptions): Promise<PluginManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const message = `cannot read the file: ${(cause as Error).message}`;
    throw new ManifestError([{ pointer: '', message, hint: 'check that the file exists and is readable' }], file, { cause });
  }
  let json: unknown;
  try {
    // Editors on Windows may save a byte order mark, which JSON.parse rejects.
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (cause) {
    const message = `not valid JSON: ${(cause as Error).message}`;
    const hint = 'fix the JSON syntax (plain JSON: no comments, no trailing commas)';
    throw new ManifestError([{ pointer: '', message, hint }], file, { cause });
  }
  return parseManifest(json, file, options);
}

/**
 * The limits a plugin runs with: its manifest's requests over {@link DEFAULT_RESOURCE_LIMITS},
 * each capped by `hostLimits` when given.
 *
 * @example
 * effectiveLimits({ ...manifest, resourceLimits: { maxMemoryMB: 128 } }).maxMemoryMB; // 128
 */
export function effectiveLimits(manifest: PluginManifest, hostLimits?: Required<ResourceLimits>): Required<ResourceLimits> {
  const limits = { ...DEFAULT_RESOURCE_LIMITS, ...manifest.resourceLimits };
  if (hostLimits) for (const key of LIMIT_KEYS) limits[key] = Math.min(limits[key], hostLimits[key]);
  return limits;
}

/**
 * The threads a plugin runs on: its manifest's `threads` over {@link DEFAULT_THREADS}.
 *
 * @example
 * effectiveThreads({ ...manifest, stateless: true, threads: { max: 4 } }); // { min: 1, max: 4 }
 */
export function effectiveThreads(manifest: PluginManifest): Required<Threads> {
  return { ...DEFAULT_THREADS, ...manifest.threads };
}

// ---------------------------------------------------------------- schema problems

/** Escapes one JSON pointer segment (RFC 6901). */
function segment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Replaces the noise of a union (`author`) by what matters: the errors of the branch whose
 * shape the data has, or one `anyOf` error when no branch fits.
 */
function condense(errors: ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const unionOf = (e: ErrorObject) => unions.find((u) => e.schemaPath.startsWith(`${u.schemaPath}/`));
  const wrongBranch = (e: ErrorObject) => e.keyword === 'type' && e.instancePath === unionOf(e)?.instancePath;
  const explained = new Set(errors.filter((e) => unionOf(e) && !wrongBranch(e)).map(unionOf));
  return errors.filter((e) => (e.keyword === 'anyOf' ? !explained.has(e) : !wrongBranch(e)));
}

const PATTERN_HINTS: Record<string, string> = {
  [PLUGIN_ID_PATTERN]:
    "use lowercase letters and digits separated by single '-' or '.', starting with a letter, e.g. my-plugin (at most 64 characters)",
  '^[0-9a-f]{64}$': 'use the lowercase hex SHA-256 digest of the file (64 characters)',
  '^[A-Za-z0-9+/]+={0,2}$': 'use standard base64 (A-Z, a-z, 0-9, +, /, with = padding)',
};
const FORMAT_HINTS: Record<string, string> = {
  email: 'use an address such as dev@example.com',
  uri: 'use an absolute URL such as https://example.com',
};

const SCHEMA_HINT = 'see schemas/plugin-manifest.schema.json';

function schemaProblem(e: ErrorObject): ManifestProblem {
  const at = e.instancePath;
  const p = e.params as Record<string, any>;
  const field = label(at);
  const here = (message: string, hint: string) => ({ pointer: at, message, hint });
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const allowed = Object.keys(e.parentSchema?.properties ?? {}).join(', ');
      const hint = at === ''
        ? `remove '${name}': it is not a manifest field`
        : `remove '${name}': allowed fields here are ${allowed}`;
      return { pointer: `${at}/${segment(name)}`, message: `unknown field '${name}'`, hint };
    }
    case 'required': {
      const name = String(p.missingProperty);
      const about = String(e.parentSchema?.properties?.[name]?.description ?? '').replace(/\.$/, '');
      const hint = `add '${name}'${about ? `: ${about}` : ''}`;
      return { pointer: `${at}/${segment(name)}`, message: `missing required field '${name}'`, hint };
    }
    case 'uniqueItems': {
      const [first, duplicate] = [Math.min(p.i, p.j), Math.max(p.i, p.j)];
      return { pointer: `${at}/${duplicate}`, message: `duplicate of item ${first} in ${field}`, hint: 'remove the duplicate item' };
    }
    case 'type':
      return here(`${field} must be ${article(p.type)}`, `use ${article(p.type)} value`);
    case 'enum':
      return here(`${field} has an unsupported value`, `use one of ${p.allowedValues.map((v: unknown) => JSON.stringify(v)).join(', ')}`);
    case 'pattern':
      return here(`${field} has the wrong form`, PATTERN_HINTS[p.pattern] ?? `match the pattern ${p.pattern}`);
    case 'format':
      return here(`${field} is not a valid ${p.format}`, FORMAT_HINTS[p.format] ?? `use a valid ${p.format}`);
    case 'minLength':
      return here(`${field} is too short`, p.limit === 1 ? 'use a non-empty string' : `use at least ${p.limit} characters`);
    case 'maxLength':
      return here(`${field} is too long`, `shorten it to at most ${p.limit} characters`);
    case 'minimum':
      return here(`${field} is below ${p.limit}`, `use a value of at least ${p.limit}`);
    case 'maximum':
      return here(`${field} is above ${p.limit}`, `use a value of at most ${p.limit}`);
    case 'minItems':
      return here(`${field} has too few items`, `list at least ${p.limit} item${p.limit === 1 ? '' : 's'}`);
    case 'minProperties':
      return here(`${field} is empty`, `list at least ${p.limit} entr${p.limit === 1 ? 'y' : 'ies'} or remove ${field}`);
    case 'anyOf':
      return here(`${field} has the wrong shape`, `use one of the allowed shapes: ${e.parentSchema?.description ?? SCHEMA_HINT}`);
    default:
      return here(`${field} ${e.message ?? 'is invalid'}`, SCHEMA_HINT);
  }
}

/** How a message names the value at `pointer`: 'name', item 2 of 'scope', the manifest. */
function label(pointer: string): string {
  const parts = pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.at(-1);
  if (last === undefined) return 'the manifest';
  return /^\d+$/.test(last) && parts.length > 1 ? `item ${last} of '${parts.at(-2)}'` : `'${last}'`;
}

function article(type: string): string {
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

// ---------------------------------------------------------------- semantic problems

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function records(value: unknown): [number, Json][] {
  return Array.isArray(value) ? value.flatMap((v, i): [number, Json][] => (isRecord(v) ? [[i, v]] : [])) : [];
}

function semanticProblems(m: Json, options: ManifestValidationOptions): ManifestProblem[] {
  return [
    ...idProblems(m),
    ...versionProblems(m),
    ...apiVersionProblems(m, options.apiVersion ?? PLUGIN_API_VERSION),
    ...entryPointProblems(m),
    ...permissionProblems(m),
    ...dependencyProblems(m),
    ...limitProblems(m, options.hostLimits ?? HOST_MAXIMUM_LIMITS),
    ...threadProblems(m),
    ...pathMapProblems(m),
  ];
}

/** Ids the host uses for itself: a plugin named `host` could pass its events off as the host's. */
export const RESERVED_IDS: readonly string[] = [HOST_SOURCE, 'logomesh'];

function idProblems(m: Json): ManifestProblem[] {
  if (typeof m.id !== 'string' || !RESERVED_IDS.includes(m.id)) return [];
  return [{ pointer: '/id', message: `'${m.id}' is reserved by the host`, hint: 'choose another id' }];
}

function versionProblems(m: Json): ManifestProblem[] {
  if (typeof m.version !== 'string' || semver.valid(m.version) === m.version) return [];
  const clean = semver.valid(m.version);
  return [{
    pointer: '/version',
    message: `'${m.version}' is not a semver version`,
    hint: clean ? `write it as ${clean}` : 'use a semver version such as 1.0.0',
  }];
}

function apiVersionProblems(m: Json, hostApi: string): ManifestProblem[] {
  if (typeof m.apiVersion !== 'string') return [];
  const suggestion = `use a range that includes ${hostApi}, such as ^${hostApi}`;
  if (semver.validRange(m.apiVersion) === null) {
    const hint = `${suggestion} (this host offers plugin API ${hostApi})`;
    return [{ pointer: '/apiVersion', message: `'${m.apiVersion}' is not a semver range`, hint }];
  }
  if (semver.satisfies(hostApi, m.apiVersion)) return [];
  return [{
    pointer: '/apiVersion',
    message: `needs plugin API ${m.apiVersion} but this host offers ${hostApi}`,
    hint: `${suggestion}, or run the plugin on a host that offers a matching API`,
  }];
}

const ENTRY_EXTENSIONS: Record<PluginRuntimeKind, string[]> = {
  nodejs: ['.js', '.mjs', '.ts'],
  python: ['.py'],
  wasm: ['.wasm'],
};

function entryPointProblems(m: Json): ManifestProblem[] {
  if (typeof m.entryPoint !== 'string') return [];
  const pathProblem = relativePathProblem('/entryPoint', m.entryPoint);
  if (pathProblem) return [pathProblem];
  if (!Object.hasOwn(ENTRY_EXTENSIONS, String(m.runtime))) return [];
  const extensions = ENTRY_EXTENSIONS[m.runtime as PluginRuntimeKind];
  if (extensions.includes(path.posix.extname(m.entryPoint))) return [];
  return [{
    pointer: '/entryPoint',
    message: `'${m.entryPoint}' is not a ${m.runtime} entry file`,
    hint: `point it at a ${extensions.join(' or ')} file, or change 'runtime'`,
  }];
}

/** A file path inside the plugin folder: relative, '/'-separated, normalized, never escaping. */
function relativePathProblem(pointer: string, p: string): ManifestProblem | undefined {
  const problem = (hint: string) => ({ pointer, message: `'${p}' is not a relative path inside the plugin folder`, hint });
  // Control characters (NUL above all) truncate or confuse paths in native APIs.
  if (/[\u0000-\u001f]/.test(p)) return problem('remove the control characters (such as NUL) from the path');
  if (p.includes('\\')) return problem("use '/' as the separator");
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return problem('use a path relative to the plugin folder, such as index.js');
  const bare = p.startsWith('./') ? p.slice(2) : p;
  if (bare.split('/').includes('..')) return problem("keep it inside the plugin folder: remove '..'");
  const normal = path.posix.normalize(bare);
  if (bare === '' || normal === '.' || bare.endsWith('/')) return problem('name a file, such as index.js');
  if (normal !== bare) return problem(`write it normalized, as ${normal}`);
  return undefined;
}

// --- permission scopes: one check per type, returning a fix hint when the scope is malformed

const NETWORK_HINT =
  'use a host such as api.example.com, *.example.com, api.example.com:443 or https://api.example.com (no path or user info)';
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function networkScope(scope: string): string | undefined {
  let rest = scope.toLowerCase();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(rest);
  if (scheme) {
    if (!['http', 'https', 'ws', 'wss'].includes(scheme[1])) return NETWORK_HINT;
    rest = rest.slice(scheme[0].length);
  }
  if (/[/?#@\s]/.test(rest)) return NETWORK_HINT;
  // An IPv6 literal keeps its brackets, as in a URL: [::1] or [::1]:3000.
  const hostPort = /^(\[[0-9a-f:.]+\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(rest);
  if (!hostPort) return NETWORK_HINT;
  const [, host, port] = hostPort;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return NETWORK_HINT;
  if (host.startsWith('[')) return URL.canParse(`http://${host}/`) ? undefined : NETWORK_HINT;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (name.length === 0 || name.length > 253) return NETWORK_HINT;
  if (!name.split('.').every((label) => HOST_LABEL.test(label))) return NETWORK_HINT;
  // The URL parser has the last word: 1.2.3.256 and *.1.2.3.4 look like names but are not hosts.
  return URL.canParse(`http://${host.startsWith('*.') ? `x.${name}` : name}/`) ? undefined : NETWORK_HINT;
}

function eventsScope(scope: string): string | undefined {
  const segments = scope.split('.');
  const ok = segments.every(
    (s, i) => /^(?:[a-z0-9_-]+|\*)$/.test(s) || (s === '**' && i === segments.length - 1),
  );
  return ok
    ? undefined
    : "use dot-separated topic segments of [a-z0-9_-], '*' for one segment or a final '**' for the rest, such as orders.* or orders.**";
}

function pluginsScope(scope: string): string | undefined {
  const [id, method, ...extra] = scope.split('#');
  const ok = extra.length === 0 && id.length <= 64 && PLUGIN_ID.test(id) &&
    (method === undefined || method === '*' || /^[A-Za-z_$][\w$]*$/.test(method));
  return ok ? undefined : 'use a plugin id, optionally with #method or #*, such as acme.auth#login';
}

/** Relative scopes are in the plugin's data folder, `$plugin[/sub]` in its own folder: neither may climb out. */
function filesystemScope(scope: string): string | undefined {
  if (scope.includes('\0')) return 'remove the NUL byte from the path';
  const plugin = /^\$plugin(?:\/|$)/.test(scope);
  if (!plugin && path.isAbsolute(scope)) return undefined;
  if (!plugin && scope.startsWith('$')) return "name the plugin's own folder $plugin or $plugin/<path>";
  const normal = path.posix.normalize(plugin ? scope.slice('$plugin'.length).replace(/^\/+/, '') || '.' : scope);
  if (normal !== '..' && !normal.startsWith('../')) return undefined;
  return plugin
    ? "keep it inside the plugin's folder: remove '..'"
    : "keep it inside the plugin's data folder (remove '..'), or use an absolute path the host allows";
}

function nameScope(scope: string): string | undefined {
  return /\s/.test(scope) ? 'use a name without whitespace' : undefined;
}

const SCOPE_CHECKS: Record<PermissionType, (scope: string) => string | undefined> = {
  filesystem: filesystemScope,
  network: networkScope,
  events: eventsScope,
  plugins: pluginsScope,
  storage: nameScope,
  system: nameScope,
  ui: nameScope,
};

function permissionProblems(m: Json): ManifestProblem[] {
  return records(m.permissions).flatMap(([i, permission]) => {
    const { type, scope: scopes } = permission;
    if (!Object.hasOwn(SCOPE_CHECKS, String(type)) || !Array.isArray(scopes)) return [];
    const check = SCOPE_CHECKS[type as PermissionType];
    return scopes.flatMap((scope: unknown, j) => {
      const hint = typeof scope === 'string' && scope !== '' ? check(scope) : undefined;
      const message = `'${scope}' is not a valid ${type} scope`;
      return hint ? [{ pointer: `/permissions/${i}/scope/${j}`, message, hint }] : [];
    });
  });
}

function dependencyProblems(m: Json): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const seen = new Map<string, number>();
  for (const [i, dep] of records(m.dependencies)) {
    const at = `/dependencies/${i}`;
    if (typeof dep.version === 'string' && semver.validRange(dep.version) === null) {
      const hint = 'use a semver range such as ^1.2.0 or >=1.0.0 <3.0.0';
      problems.push({ pointer: `${at}/version`, message: `'${dep.version}' is not a semver range`, hint });
    }
    if (typeof dep.id !== 'string') continue;
    if (dep.id === m.id) {
      problems.push({ pointer: `${at}/id`, message: 'the plugin depends on itself', hint: `remove the dependency on '${dep.id}'` });
    } else if (seen.has(dep.id)) {
      const message = `'${dep.id}' is already listed at /dependencies/${seen.get(dep.id)}`;
      problems.push({ pointer: `${at}/id`, message, hint: 'list each dependency once, with one combined range' });
    }
    if (!seen.has(dep.id)) seen.set(dep.id, i);
  }
  return problems;
}

const LIMIT_KEYS = Object.keys(DEFAULT_RESOURCE_LIMITS) as (keyof ResourceLimits)[];

function limitProblems(m: Json, hostLimits: Required<ResourceLimits>): ManifestProblem[] {
  if (!isRecord(m.resourceLimits)) return [];
  const limits = m.resourceLimits;
  return LIMIT_KEYS.flatMap((key) => {
    const value = limits[key];
    if (typeof value !== 'number' || value <= hostLimits[key]) return [];
    return [{
      pointer: `/resourceLimits/${key}`,
      message: `${key} ${value} is above the host maximum of ${hostLimits[key]}`,
      hint: `lower ${key} to at most ${hostLimits[key]}, the maximum this host allows`,
    }];
  });
}

/** Runtimes that run a plugin on worker threads, where `threads` applies. */
const THREADED_RUNTIMES: readonly string[] = ['wasm', 'python'];

function threadProblems(m: Json): ManifestProblem[] {
  if (!isRecord(m.threads)) return [];
  if (typeof m.runtime === 'string' && !THREADED_RUNTIMES.includes(m.runtime)) {
    return [{
      pointer: '/threads',
      message: `threads apply to wasm and python plugins, not to ${m.runtime} plugins`,
      hint: `remove 'threads': a ${m.runtime} plugin runs in one sandbox`,
    }];
  }
  const min = typeof m.threads.min === 'number' ? m.threads.min : DEFAULT_THREADS.min;
  const max = typeof m.threads.max === 'number' ? m.threads.max : DEFAULT_THREADS.max;
  if (min > max) {
    return [{
      pointer: '/threads/min',
      message: `threads.min ${min} is above threads.max ${max}`,
      hint: `lower threads.min to at most ${max}, or raise threads.max to at least ${min}`,
    }];
  }
  if (max > 1 && m.stateless !== true) {
    return [{
      pointer: '/threads/max',
      message: `threads.max ${max} needs a stateless plugin`,
      hint: "each thread has its own memory, so in-memory state would differ between threads: set 'stateless': true " +
        'if the plugin keeps no state between calls, or use threads.max 1',
    }];
  }
  return [];
}

/** Paths in `integrity.files` keys and UI contribution entries must stay inside the plugin. */
function pathMapProblems(m: Json): ManifestProblem[] {
  const problems: (ManifestProblem | undefined)[] = [];
  if (isRecord(m.integrity) && isRecord(m.integrity.files)) {
    for (const file of Object.keys(m.integrity.files)) {
      problems.push(relativePathProblem(`/integrity/files/${segment(file)}`, file));
    }
  }
  if (isRecord(m.contributes)) {
    for (const [i, ui] of records(m.contributes.ui)) {
      if (typeof ui.entry === 'string') problems.push(relativePathProblem(`/contributes/ui/${i}/entry`, ui.entry));
    }
  }
  return problems.filter((p): p is ManifestProblem => p !== undefined);
}
