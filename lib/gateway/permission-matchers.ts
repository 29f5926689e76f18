/**
 * One matching function per permission type, and one coverage function per type for the
 * host's permission policy. Matchers answer "does this granted scope allow this target";
 * `*Covers(policyScope, manifestScope)` answer "does the policy scope allow everything the
 * manifest scope could allow" and err on the side of "no".
 *
 * Every scope `validateManifest` accepts parses here. Each type also has a `compile*`
 * form, done once per scope, so the checks on every gateway call allocate nothing and
 * compile no regular expression.
 *
 * @example
 * matchNetworkScope('*.example.com', new URL('https://api.example.com/v1'));   // true
 * matchFilesystemScope('/data/p', 'readwrite', '/data/p/cache/x', 'write');     // true
 * matchTopicScope('orders.*', 'orders.created');                               // true
 * matchPluginScope('acme.auth#login', 'acme.auth', 'logout');                  // false
 * matchNameScope('llm.*', 'llm.complete');                                     // true
 */
import path from 'node:path';
import { topicMatches } from '../events/topic.js';

/** The `level` of a permission; omitted means `'read'`. */
export type PermissionLevel = 'read' | 'write' | 'execute' | 'readwrite';
/** What a file operation needs. */
export type FileAccess = 'read' | 'write' | 'execute';

/**
 * Whether a permission `level` grants `access`: `readwrite` is read + write, an omitted
 * level is `read`, and nothing else implies anything (write does not imply read, execute
 * is separate).
 *
 * @example
 * levelGrants(undefined, 'read');     // true
 * levelGrants('readwrite', 'execute'); // false
 */
export function levelGrants(level: PermissionLevel | undefined, access: FileAccess): boolean {
  const granted = level ?? 'read';
  return granted === access || (granted === 'readwrite' && access !== 'execute');
}

// --- filesystem ---------------------------------------------------------------------------

/**
 * Whether the absolute, normalised path `target` is `root` or below it. Path-segment
 * aware: `/data/a` contains `/data/a/b` but not `/data/ab`.
 *
 * @example
 * isWithin('/data/a', '/data/a/b.txt');  // true
 * isWithin('/data/a', '/data/ab');       // false
 */
export function isWithin(root: string, target: string): boolean {
  if (target.length === root.length) return target === root;
  if (target.length < root.length || !target.startsWith(root)) return false;
  // `root` ends with the separator only when it is the filesystem root itself.
  return root.endsWith(path.sep) || target.startsWith(path.sep, root.length);
}

/**
 * Whether a filesystem root granted at `level` allows `access` to `target`. Both paths must
 * be absolute; they are normalised with `path.resolve` (so `..` that stays inside matches).
 * Paths holding a NUL byte never match.
 *
 * @example
 * matchFilesystemScope('/data/p', undefined, '/data/p/a/../b.txt', 'read');  // true
 * matchFilesystemScope('/data/p', 'read', '/data/p/b.txt', 'write');         // false
 * matchFilesystemScope('/data/a', 'read', '/data/ab', 'read');               // false
 */
export function matchFilesystemScope(
  root: string,
  level: PermissionLevel | undefined,
  target: string,
  access: FileAccess,
): boolean {
  if (!levelGrants(level, access)) return false;
  if (root.includes('\0') || target.includes('\0')) return false;
  if (!path.isAbsolute(root) || !path.isAbsolute(target)) return false;
  return isWithin(path.resolve(root), path.resolve(target));
}

/** The folders a filesystem scope is resolved against. */
export interface ScopeFolders {
  /** The plugin's installed folder, what `$plugin` names. */
  pluginDir: string;
  /** The plugin's data folder, what relative scopes are relative to. */
  dataDir: string;
}

/** Where a filesystem scope points: `data` (relative), `plugin` (`$plugin…`) or `absolute`. */
export interface ResolvedFilesystemScope {
  kind: 'data' | 'plugin' | 'absolute';
  /** Absolute, normalised path. */
  path: string;
}

/** The prefix naming the plugin's own installed folder in a filesystem scope. */
export const PLUGIN_DIR_SCOPE = '$plugin';

/**
 * Resolves a filesystem scope to an absolute path: relative scopes against the data folder,
 * `$plugin` / `$plugin/sub` against the plugin's folder, absolute ones as they are. Returns
 * `undefined` for a scope that holds a NUL byte or climbs out of its folder with `..`:
 * such a scope grants nothing.
 *
 * @example
 * resolveFilesystemScope('cache', { pluginDir: '/p', dataDir: '/d' });       // { kind: 'data', path: '/d/cache' }
 * resolveFilesystemScope('$plugin/assets', { pluginDir: '/p', dataDir: '/d' }); // { kind: 'plugin', path: '/p/assets' }
 * resolveFilesystemScope('../other', { pluginDir: '/p', dataDir: '/d' });    // undefined
 */
export function resolveFilesystemScope(scope: string, folders: ScopeFolders): ResolvedFilesystemScope | undefined {
  if (scope.length === 0 || scope.includes('\0')) return undefined;
  const plugin = scope === PLUGIN_DIR_SCOPE || scope.startsWith(`${PLUGIN_DIR_SCOPE}/`);
  if (!plugin && path.isAbsolute(scope)) return { kind: 'absolute', path: path.resolve(scope) };
  const base = path.resolve(plugin ? folders.pluginDir : folders.dataDir);
  // `$plugin//x` means `$plugin/x`: strip the slashes so the rest cannot read as absolute.
  const rest = plugin ? scope.slice(PLUGIN_DIR_SCOPE.length).replace(/^\/+/, '') : scope;
  const resolved = path.resolve(base, rest === '' ? '.' : rest);
  return isWithin(base, resolved) ? { kind: plugin ? 'plugin' : 'data', path: resolved } : undefined;
}

// --- network ------------------------------------------------------------------------------

/** Schemes a network permission can grant, with their default ports. */
export const NETWORK_DEFAULT_PORTS: Readonly<Record<string, number>> = Object.freeze({
  'http:': 80,
  'https:': 443,
  'ws:': 80,
  'wss:': 443,
});

/** A parsed network scope. */
export interface NetworkScope {
  /** `'https:'` etc. when the scope names a scheme; otherwise any of http/https/ws/wss. */
  protocol?: string;
  /** Normalised (lowercase, IDNA, no trailing dot) hostname; for a wildcard, the suffix after `*.`. */
  host: string;
  /** `*.host`: any subdomain at any depth, never `host` itself. */
  wildcard: boolean;
  /** The only port allowed; when absent, only the scheme's default port. */
  port?: number;
}

const SCOPE_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//;
const PORT = /^\d{1,5}$/;
const NOT_IN_HOST = /[/?#@\\\s*]/;

/**
 * Parses a network scope (`api.example.com`, `*.example.com`, `host:8080`,
 * `https://host[:port]`, `127.0.0.1:8080`, `[::1]:3000`). The hostname goes through the
 * WHATWG URL parser, so it is compared in the same form as a request URL's. Returns
 * `undefined` when the scope is not one this module can match.
 *
 * @example
 * parseNetworkScope('HTTPS://API.Example.com.:8443');
 * // { protocol: 'https:', host: 'api.example.com', wildcard: false, port: 8443 }
 */
export function parseNetworkScope(scope: string): NetworkScope | undefined {
  let rest = scope.toLowerCase();
  let protocol: string | undefined;
  const scheme = SCOPE_SCHEME.exec(rest);
  if (scheme) {
    protocol = `${scheme[1]}:`;
    if (!Object.hasOwn(NETWORK_DEFAULT_PORTS, protocol)) return undefined;
    rest = rest.slice(scheme[0].length);
  }
  const wildcard = rest.startsWith('*.');
  if (wildcard) rest = rest.slice(2);
  let host = rest;
  let portText: string | undefined;
  const colon = rest.startsWith('[') ? rest.indexOf(':', rest.indexOf(']')) : rest.indexOf(':');
  if (colon !== -1) {
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
  }
  if (host.length === 0 || NOT_IN_HOST.test(host)) return undefined;
  if (host.startsWith('[') ? !host.endsWith(']') || wildcard : host.includes(':')) return undefined;
  let port: number | undefined;
  if (portText !== undefined) {
    if (!PORT.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  const normal = normaliseHost(wildcard ? `x.${host}` : host);
  if (normal === undefined) return undefined;
  return { protocol, host: wildcard ? normal.slice(2) : normal, wildcard, port };
}

function normaliseHost(host: string): string | undefined {
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname.startsWith('[')) return hostname;
  return hostname.length === 0 || hostname.startsWith('.') || hostname.includes('..') ? undefined : hostname;
}

/**
 * Whether a parsed network scope allows a request to `url`. Only http, https, ws and wss
 * URLs match, never a URL with user info; without a port in the scope only the scheme's
 * default port matches.
 *
 * @example
 * networkScopeMatches(parseNetworkScope('api.example.com')!, new URL('https://api.example.com:8443/'));  // false
 */
export function networkScopeMatches(scope: NetworkScope, url: URL): boolean {
  const protocol = url.protocol;
  const defaultPort = NETWORK_DEFAULT_PORTS[protocol];
  if (defaultPort === undefined) return false;
  if (url.username !== '' || url.password !== '') return false;
  const portText = url.port;
  const port = portText === '' ? defaultPort : Number(portText);
  return matchesParts(scope, protocol, url.hostname, portText === '', port);
}

/** The check itself, on URL parts read once by the caller. Allocates nothing. */
export function matchesParts(scope: NetworkScope, protocol: string, hostname: string, defaultPort: boolean, port: number): boolean {
  if (scope.protocol !== undefined && scope.protocol !== protocol) return false;
  if (scope.port === undefined ? !defaultPort : scope.port !== port) return false;
  const end = hostname.endsWith('.') ? hostname.length - 1 : hostname.length;
  const host = scope.host;
  if (!scope.wildcard) return end === host.length && hostname.startsWith(host);
  const dot = end - host.length - 1;
  // At least one non-empty label before the suffix, and no empty label anywhere.
  return (
    dot > 0 &&
    hostname.charCodeAt(dot) === DOT &&
    hostname.startsWith(host, dot + 1) &&
    hostname.charCodeAt(0) !== DOT &&
    !hostname.includes('..')
  );
}

const DOT = 0x2e;

/**
 * Whether the network `scope` allows a request to `url` (already normalised by the URL
 * parser: `http://2130706433/` arrives as `127.0.0.1`).
 *
 * @example
 * matchNetworkScope('*.example.com', new URL('https://a.b.example.com/'));  // true
 * matchNetworkScope('*.example.com', new URL('https://example.com/'));      // false
 * matchNetworkScope('localhost:8080', new URL('ws://localhost:8080/'));     // true
 */
export function matchNetworkScope(scope: string, url: URL): boolean {
  const parsed = parseNetworkScope(scope);
  return parsed !== undefined && networkScopeMatches(parsed, url);
}

/**
 * Whether a policy network scope covers everything `manifestScope` could match. `*` covers
 * all. A policy scope restricts scheme or port only when it names one: `*.example.com`
 * covers `api.example.com:8443` and `https://api.example.com`, `https://api.example.com`
 * does not cover `api.example.com` (which also allows http).
 *
 * @example
 * networkScopeCovers('*.example.com', '*.a.example.com');    // true
 * networkScopeCovers('*.example.com', 'example.com');        // false
 * networkScopeCovers('api.example.com:443', 'https://api.example.com');  // true
 */
export function networkScopeCovers(policyScope: string, manifestScope: string): boolean {
  if (policyScope === '*') return true;
  const p = parseNetworkScope(policyScope);
  const m = parseNetworkScope(manifestScope);
  if (!p || !m) return false;
  const hostCovered = p.wildcard
    ? m.host === p.host ? m.wildcard : m.host.endsWith(`.${p.host}`)
    : !m.wildcard && m.host === p.host;
  if (!hostCovered) return false;
  if (p.protocol !== undefined && m.protocol !== p.protocol) return false;
  if (p.port === undefined) return true;
  if (m.port !== undefined) return m.port === p.port;
  return m.protocol !== undefined && NETWORK_DEFAULT_PORTS[m.protocol] === p.port;
}

// --- events -------------------------------------------------------------------------------

/**
 * Whether the topic pattern `scope` matches `topic` (`*` one segment, a trailing `**` zero
 * or more): {@link topicMatches}.
 *
 * @example
 * matchTopicScope('orders.**', 'orders');          // true
 * matchTopicScope('orders.*', 'orders.a.b');       // false
 */
export function matchTopicScope(scope: string, topic: string): boolean {
  return topicMatches(scope, topic);
}

/**
 * Compiles a topic pattern once into a matcher that agrees with {@link topicMatches} and
 * walks the topic in place, without splitting it.
 *
 * @example
 * const m = compileTopicScope('orders.*');
 * m('orders.created');   // true
 */
export function compileTopicScope(scope: string): (topic: string) => boolean {
  if (!scope.includes('*')) return (topic) => topic === scope;
  const segments = scope.split('.');
  const last = segments.length - 1;
  return (topic) => {
    let pos = 0;
    for (let i = 0; i <= last; i++) {
      const segment = segments[i];
      if (segment === '**' && i === last) return true;
      if (pos > topic.length) return false;
      let end = topic.indexOf('.', pos);
      if (end === -1) end = topic.length;
      if (segment !== '*' && (end - pos !== segment.length || !topic.startsWith(segment, pos))) return false;
      pos = end + 1;
    }
    return pos === topic.length + 1;
  };
}

/**
 * Whether the topic pattern `policyScope` matches every topic `manifestScope` matches.
 * `**` covers everything; `orders.**` covers `orders`, `orders.*` and `orders.a.**`;
 * `*` covers any one concrete segment or `*`.
 *
 * @example
 * topicScopeCovers('orders.**', 'orders.*');   // true
 * topicScopeCovers('orders.*', 'orders.**');   // false
 */
export function topicScopeCovers(policyScope: string, manifestScope: string): boolean {
  const p = policyScope.split('.');
  const m = manifestScope.split('.');
  for (let i = 0; ; i++) {
    if (i < p.length && p[i] === '**' && i === p.length - 1) return true;
    if (i >= p.length || i >= m.length) return i >= p.length && i >= m.length;
    // A manifest `**` matches topics of any length from here on: only a policy `**` covers it.
    if (m[i] === '**' && i === m.length - 1) return false;
    if (p[i] !== '*' && p[i] !== m[i]) return false;
  }
}

// --- plugins ------------------------------------------------------------------------------

/** A parsed plugins scope: a plugin id and one method, or every method when `method` is absent. */
export interface PluginScope {
  id: string;
  method?: string;
}

/**
 * Parses `id`, `id#*` (both: every method the plugin exposes) or `id#method`.
 *
 * @example
 * parsePluginScope('acme.auth#login');   // { id: 'acme.auth', method: 'login' }
 * parsePluginScope('acme.auth#*');       // { id: 'acme.auth' }
 */
export function parsePluginScope(scope: string): PluginScope | undefined {
  const hash = scope.indexOf('#');
  if (hash === -1) return scope.length > 0 ? { id: scope } : undefined;
  const id = scope.slice(0, hash);
  const method = scope.slice(hash + 1);
  if (id.length === 0 || method.length === 0 || method.includes('#')) return undefined;
  return method === '*' ? { id } : { id, method };
}

/**
 * Whether a plugins scope allows calling `method` on plugin `pluginId`.
 *
 * @example
 * matchPluginScope('acme.auth', 'acme.auth', 'login');           // true
 * matchPluginScope('acme.auth#login', 'acme.auth', 'logout');    // false
 */
export function matchPluginScope(scope: string, pluginId: string, method: string): boolean {
  const parsed = parsePluginScope(scope);
  return parsed !== undefined && parsed.id === pluginId && (parsed.method === undefined || parsed.method === method);
}

/**
 * Whether a policy plugins scope covers a manifest one: `*` covers all, `id` and `id#*`
 * cover every scope of that id, `id#m` covers only `id#m`.
 *
 * @example
 * pluginScopeCovers('acme.auth', 'acme.auth#login');   // true
 * pluginScopeCovers('acme.auth#login', 'acme.auth');   // false
 */
export function pluginScopeCovers(policyScope: string, manifestScope: string): boolean {
  if (policyScope === '*') return true;
  const p = parsePluginScope(policyScope);
  const m = parsePluginScope(manifestScope);
  if (!p || !m || p.id !== m.id) return false;
  return p.method === undefined || p.method === m.method;
}

// --- system / storage / ui names ----------------------------------------------------------

/**
 * A parsed name scope: `exact` (`clock`), `one` (`llm.*`: one more segment) or `many`
 * (`llm.**`: `llm` itself or any number of further segments, as with topics). Bare `*` is
 * any name without a dot, bare `**` any name. A `*` anywhere else is a literal character.
 */
export interface NameScope {
  kind: 'exact' | 'one' | 'many';
  /** The exact name, or for wildcards the part before `.*` / `.**` (`''` when bare). */
  base: string;
  /** `base + '.'`, or `''` for bare `*` / `**`. */
  prefix: string;
}

/**
 * Parses a system, storage or ui scope.
 *
 * @example
 * parseNameScope('llm.*');   // { kind: 'one', base: 'llm', prefix: 'llm.' }
 */
export function parseNameScope(scope: string): NameScope {
  if (scope === '*') return { kind: 'one', base: '', prefix: '' };
  if (scope === '**') return { kind: 'many', base: '', prefix: '' };
  if (scope.endsWith('.**')) return { kind: 'many', base: scope.slice(0, -3), prefix: scope.slice(0, -2) };
  if (scope.endsWith('.*')) return { kind: 'one', base: scope.slice(0, -2), prefix: scope.slice(0, -1) };
  return { kind: 'exact', base: scope, prefix: '' };
}

/**
 * Whether a parsed name scope allows `name`. Allocates nothing.
 *
 * @example
 * nameScopeMatches(parseNameScope('llm.**'), 'llm.chat.stream');   // true
 */
export function nameScopeMatches(scope: NameScope, name: string): boolean {
  const { kind, base, prefix } = scope;
  if (kind === 'exact') return name === base;
  if (name.length === 0) return false;
  if (kind === 'one') {
    return name.length > prefix.length && name.startsWith(prefix) && name.indexOf('.', prefix.length) === -1;
  }
  return prefix === '' || name === base || (name.length > prefix.length && name.startsWith(prefix));
}

/**
 * Whether the name scope `scope` allows `name`: exact names, a trailing `.*` for one more
 * segment, a trailing `.**` for any number (zero included).
 *
 * @example
 * matchNameScope('llm.*', 'llm.complete');      // true
 * matchNameScope('llm.*', 'llm.chat.stream');   // false
 * matchNameScope('llm.**', 'llm');              // true
 */
export function matchNameScope(scope: string, name: string): boolean {
  return nameScopeMatches(parseNameScope(scope), name);
}

/**
 * Whether a policy name scope covers every name a manifest name scope allows.
 *
 * @example
 * nameScopeCovers('llm.**', 'llm.chat.*');   // true
 * nameScopeCovers('llm.*', 'llm.**');        // false
 */
export function nameScopeCovers(policyScope: string, manifestScope: string): boolean {
  const p = parseNameScope(policyScope);
  const m = parseNameScope(manifestScope);
  if (m.kind === 'exact') return nameScopeMatches(p, m.base);
  if (p.kind === 'exact') return false;
  if (p.kind === 'one') return m.kind === 'one' && m.prefix === p.prefix;
  if (p.prefix === '') return true;
  // `m` is a wildcard under a non-empty base: every name it allows starts with its base.
  return m.prefix !== '' && nameScopeMatches(p, m.base);
}
