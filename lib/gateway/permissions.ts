/**
 * The permission model: what a plugin may touch, computed once from its manifest, and the
 * host's cap on what any manifest may ask for.
 *
 * Least privilege: with no permission of a type nothing of that type is allowed. A
 * permission's `level` defaults to `read`; `readwrite` is read + write. Per type:
 *
 * - **filesystem**: `read`, `write`, `execute`. A relative scope (`.`, `cache`,
 *   `out/reports`) is inside the plugin's data folder; `$plugin` / `$plugin/sub` is the
 *   plugin's installed folder, never writable; an absolute scope needs a host
 *   {@link HostPermissionPolicy.filesystemRoots} root containing it. A path matches a root
 *   when, normalised, it is the root or below it (segment by segment).
 * - **network**: `api.example.com` (http/https/ws/wss on the scheme's default port),
 *   `*.example.com` (subdomains at any depth, not the apex), `host:port` (that port, any of
 *   those schemes), `https://host[:port]` (that scheme only), `127.0.0.1:8080`,
 *   `[::1]:3000`. URLs with user info never match. The level is ignored.
 * - **events**: topic patterns; `read` lets the plugin subscribe (receive), `write` publish.
 * - **plugins**: `id`, `id#*` (every exposed method) or `id#method`; every declared
 *   dependency (required or optional) may be called too. The level is ignored.
 * - **system / storage / ui**: names, with a trailing `.*` (one more segment) or `.**`
 *   (any number, zero included). The level is ignored.
 *
 * @example
 * const violations = policyViolations(manifest, policy, ctx);
 * if (violations.length > 0) throw new ManifestError(violations, 'plugins/x/plugin.json');
 * const permissions = PermissionSet.from(manifest, ctx, policy);
 * permissions.allowsNetwork(new URL('https://api.example.com/v1'));
 */
import path from 'node:path';
import type { ManifestProblem } from '../errors.js';
import type { PermissionType, PluginManifest } from '../registry/manifest-schema.js';
import {
  compileTopicScope,
  isWithin,
  levelGrants,
  matchesParts,
  nameScopeCovers,
  nameScopeMatches,
  networkScopeCovers,
  NETWORK_DEFAULT_PORTS,
  parseNameScope,
  parseNetworkScope,
  parsePluginScope,
  pluginScopeCovers,
  resolveFilesystemScope,
  topicScopeCovers,
  type FileAccess,
  type NameScope,
  type NetworkScope,
  type PermissionLevel,
  type ScopeFolders,
} from './permission-matchers.js';

export type { FileAccess, PermissionLevel } from './permission-matchers.js';

/** Who the permissions are for and the folders their filesystem scopes are resolved against. */
export interface PermissionContext extends ScopeFolders {
  pluginId: string;
}

/** A folder a plugin may use, resolved to an absolute path, with the level granted on it. */
export interface FileRoot {
  path: string;
  level: PermissionLevel;
}

/** `subscribe` needs events `read`, `publish` needs events `write`. */
export type TopicAccess = 'publish' | 'subscribe';

/** Permission types whose scopes are plain names. */
export type NamePermissionType = 'system' | 'storage' | 'ui';

/**
 * The most any manifest may ask for on this host. A manifest asking for more fails to load
 * with every offending scope listed ({@link policyViolations}). Defaults: no filesystem
 * roots beyond each plugin's data and own folders, and no cap on the other types.
 *
 * In a policy, a network scope restricts scheme or port only when it names one:
 * `*.example.com` admits `api.example.com:8443`.
 *
 * @example
 * const policy: HostPermissionPolicy = {
 *   filesystemRoots: [{ path: '/srv/shared', level: 'read' }],
 *   network: ['*.example.com', 'localhost:8080'],
 *   events: ['orders.**', 'audit.*'],
 * };
 */
export interface HostPermissionPolicy {
  /** Absolute folders outside the data folders a manifest may ask for (default none). */
  filesystemRoots?: FileRoot[];
  /** Scopes every manifest network scope must fall within (default `['*']`: any host). */
  network?: string[];
  /** Topic patterns every manifest events scope must fall within (default `['**']`). */
  events?: string[];
  /** Plugin scopes every manifest plugins scope and dependency must fall within (default `['*']`). */
  plugins?: string[];
  /** Names every manifest system scope must fall within (default `['**']`). */
  system?: string[];
  /** Names every manifest storage scope must fall within (default `['**']`). */
  storage?: string[];
  /** Names every manifest ui scope must fall within (default `['**']`). */
  ui?: string[];
}

/** The policy a host has when it configures none. */
export const DEFAULT_HOST_PERMISSION_POLICY: Readonly<Required<HostPermissionPolicy>> = Object.freeze({
  filesystemRoots: [],
  network: ['*'],
  events: ['**'],
  plugins: ['*'],
  system: ['**'],
  storage: ['**'],
  ui: ['**'],
});

type ScopeType = Exclude<PermissionType, 'filesystem'>;

const COVERS: Record<ScopeType, (policyScope: string, manifestScope: string) => boolean> = {
  network: networkScopeCovers,
  events: topicScopeCovers,
  plugins: pluginScopeCovers,
  system: nameScopeCovers,
  storage: nameScopeCovers,
  ui: nameScopeCovers,
};

interface Violation {
  message: string;
  hint: string;
}

/** A policy with its defaults filled in and its roots resolved. */
type FullPolicy = Required<HostPermissionPolicy>;

function fullPolicy(policy: HostPermissionPolicy): FullPolicy {
  const full = { ...DEFAULT_HOST_PERMISSION_POLICY };
  for (const key of Object.keys(full) as (keyof FullPolicy)[]) {
    if (policy[key] !== undefined) (full as Record<string, unknown>)[key] = policy[key];
  }
  full.filesystemRoots = full.filesystemRoots.map((r) => ({ path: path.resolve(r.path), level: r.level }));
  return full;
}

const ACCESSES: Record<PermissionLevel, FileAccess[]> = {
  read: ['read'],
  write: ['write'],
  execute: ['execute'],
  readwrite: ['read', 'write'],
};

function filesystemViolation(scope: string, level: PermissionLevel | undefined, policy: FullPolicy, ctx: ScopeFolders): Violation | undefined {
  const resolved = resolveFilesystemScope(scope, ctx);
  const asked = level ?? 'read';
  if (!resolved) {
    const where = scope.startsWith('$plugin') ? "plugin's own folder" : "plugin's data folder";
    return { message: `filesystem scope '${scope}' leaves the ${where}`, hint: "keep it inside that folder (remove '..'), or use an absolute path the host allows" };
  }
  const inData = resolved.kind === 'data' || isWithin(path.resolve(ctx.dataDir), resolved.path);
  if (inData) return undefined;
  if (resolved.kind === 'plugin' || isWithin(path.resolve(ctx.pluginDir), resolved.path)) {
    if (!levelGrants(asked, 'write')) return undefined;
    return {
      message: `filesystem scope '${scope}' asks to write to the plugin's own folder, which is never writable`,
      hint: "use level read or execute for it, and write under the data folder instead (a relative scope such as 'cache')",
    };
  }
  const roots = policy.filesystemRoots;
  const allowed = ACCESSES[asked].every((a) => roots.some((r) => levelGrants(r.level, a) && isWithin(r.path, resolved.path)));
  if (allowed) return undefined;
  const offered = roots.length ? `this host allows ${roots.map((r) => `${r.path} (${r.level})`).join(', ')}` : 'this host allows none';
  return {
    message: `filesystem scope '${scope}' (${asked}) is outside the plugin's folders and the host's allowed roots; ${offered}`,
    hint: `use a path relative to the data folder such as 'cache', or ask the host to add a filesystemRoots entry containing ${resolved.path} with level ${asked}`,
  };
}

function scopeViolation(type: PermissionType, scope: string, level: PermissionLevel | undefined, policy: FullPolicy, ctx: ScopeFolders): Violation | undefined {
  if (type === 'filesystem') return filesystemViolation(scope, level, policy, ctx);
  if (!Object.hasOwn(COVERS, type)) return { message: `'${type}' is not a permission type`, hint: 'remove the permission' };
  const allowed = policy[type];
  if (allowed.some((p) => COVERS[type](p, scope))) return undefined;
  if (allowed.length === 0) return { message: `${type} scope '${scope}' is not allowed: this host grants no ${type} permissions`, hint: 'remove it' };
  const list = allowed.join(', ');
  return { message: `${type} scope '${scope}' is not within what this host allows (${list})`, hint: `remove it or narrow it to fall within one of: ${list}` };
}

/**
 * Every permission scope (and every dependency, which lets a plugin call that plugin) the
 * host `policy` does not cover, each with its JSON pointer (`/permissions/2/scope/0`,
 * `/dependencies/1/id`). Empty when the manifest asks for nothing more than the host
 * allows. Coverage is conservative: a policy scope covers a manifest scope only if it
 * allows every target the manifest scope could allow.
 *
 * @example
 * policyViolations(manifest, { network: ['*.example.com'] }, ctx);
 * // [{ pointer: '/permissions/0/scope/1', message: "network scope 'evil.net' is not within …", hint: '…' }]
 */
export function policyViolations(manifest: PluginManifest, policy: HostPermissionPolicy, ctx: PermissionContext): ManifestProblem[] {
  const full = fullPolicy(policy);
  const problems: ManifestProblem[] = [];
  (manifest.permissions ?? []).forEach((permission, i) => {
    permission.scope.forEach((scope, j) => {
      const v = scopeViolation(permission.type, scope, permission.level, full, ctx);
      if (v) problems.push({ pointer: `/permissions/${i}/scope/${j}`, ...v });
    });
  });
  (manifest.dependencies ?? []).forEach((dependency, k) => {
    if (full.plugins.some((p) => pluginScopeCovers(p, dependency.id))) return;
    problems.push({
      pointer: `/dependencies/${k}/id`,
      message: `the dependency on '${dependency.id}' would let the plugin call it, but this host allows calls only within: ${full.plugins.join(', ') || 'none'}`,
      hint: `remove the dependency, or ask the host to allow the plugins scope '${dependency.id}'`,
    });
  });
  return problems;
}

interface TopicGrants {
  exact: Set<string>;
  matchers: ((topic: string) => boolean)[];
  scopes: string[];
}

interface NameGrants {
  exact: Set<string>;
  patterns: NameScope[];
}

const newTopicGrants = (): TopicGrants => ({ exact: new Set(), matchers: [], scopes: [] });

function grantTopic(grants: TopicGrants, scope: string): void {
  grants.scopes.push(scope);
  if (scope.includes('*')) grants.matchers.push(compileTopicScope(scope));
  else grants.exact.add(scope);
}

function permissionText(type: string, scope: string, level?: string): string {
  return `{ "type": "${type}", "scope": [${JSON.stringify(scope)}]${level ? `, "level": "${level}"` : ''} }`;
}

/**
 * What one plugin may do, computed once from its manifest. Every `allows*` check runs on
 * every gateway call: each is a few set lookups or string comparisons over scopes parsed
 * in the constructor.
 *
 * @example
 * const p = PermissionSet.from(manifest, { pluginId: 'reporter', pluginDir: '/plugins/reporter', dataDir: '/data/reporter' });
 * p.allowsFile('/data/reporter/cache/x.txt', 'write');
 * p.allowsTopic('orders.created', 'subscribe');
 * if (!p.allowsCall('acme.auth', 'login')) throw new PermissionDeniedError('reporter', 'call', 'acme.auth#login', p.needed('plugins', 'acme.auth#login'));
 */
export class PermissionSet {
  readonly pluginId: string;
  private readonly dataDir: string;
  private readonly pluginDir: string;
  private readonly roots: FileRoot[] = [];
  private readonly fileAccess: Record<FileAccess, string[]> = { read: [], write: [], execute: [] };
  private readonly network: NetworkScope[] = [];
  private readonly publish = newTopicGrants();
  private readonly subscribe = newTopicGrants();
  private readonly wholePlugins = new Set<string>();
  private readonly pluginMethods = new Map<string, Set<string>>();
  private readonly names = new Map<string, NameGrants>([
    ['system', { exact: new Set(), patterns: [] }],
    ['storage', { exact: new Set(), patterns: [] }],
    ['ui', { exact: new Set(), patterns: [] }],
  ]);

  /**
   * Builds the set for `manifest`. Scopes the host `policy` does not cover (see
   * {@link policyViolations}; default {@link DEFAULT_HOST_PERMISSION_POLICY}) grant nothing,
   * so an absolute path is granted only with a policy root that contains it.
   */
  static from(manifest: PluginManifest, ctx: PermissionContext, policy: HostPermissionPolicy = {}): PermissionSet {
    return new PermissionSet(manifest, ctx, fullPolicy(policy));
  }

  private constructor(manifest: PluginManifest, ctx: PermissionContext, policy: FullPolicy) {
    this.pluginId = ctx.pluginId;
    this.dataDir = path.resolve(ctx.dataDir);
    this.pluginDir = path.resolve(ctx.pluginDir);
    const folders = { dataDir: this.dataDir, pluginDir: this.pluginDir };
    for (const { type, scope: scopes, level } of manifest.permissions ?? []) {
      for (const scope of scopes) {
        if (scopeViolation(type, scope, level, policy, folders)) continue;
        this.grant(type, scope, level, folders);
      }
    }
    for (const dependency of manifest.dependencies ?? []) {
      if (policy.plugins.some((p) => pluginScopeCovers(p, dependency.id))) this.wholePlugins.add(dependency.id);
    }
  }

  private grant(type: PermissionType, scope: string, level: PermissionLevel | undefined, folders: ScopeFolders): void {
    switch (type) {
      case 'filesystem': {
        const resolved = resolveFilesystemScope(scope, folders);
        if (!resolved) return;
        const granted = level ?? 'read';
        if (!this.roots.some((r) => r.path === resolved.path && r.level === granted)) this.roots.push({ path: resolved.path, level: granted });
        for (const access of ACCESSES[granted]) this.fileAccess[access].push(resolved.path);
        return;
      }
      case 'network': {
        const parsed = parseNetworkScope(scope);
        if (parsed) this.network.push(parsed);
        return;
      }
      case 'events':
        if (levelGrants(level, 'read')) grantTopic(this.subscribe, scope);
        if (levelGrants(level, 'write')) grantTopic(this.publish, scope);
        return;
      case 'plugins': {
        const parsed = parsePluginScope(scope);
        if (!parsed) return;
        if (parsed.method === undefined) this.wholePlugins.add(parsed.id);
        else {
          let methods = this.pluginMethods.get(parsed.id);
          if (!methods) this.pluginMethods.set(parsed.id, (methods = new Set()));
          methods.add(parsed.method);
        }
        return;
      }
      default: {
        const grants = this.names.get(type);
        const parsed = parseNameScope(scope);
        if (!grants) return;
        if (parsed.kind === 'exact') grants.exact.add(scope);
        else grants.patterns.push(parsed);
      }
    }
  }

  /**
   * Whether the plugin may `access` the absolute path `absPath` (normalised first, so `..`
   * that stays inside a root is fine). Relative paths and paths with a NUL byte are refused;
   * nothing under the plugin's own folder is writable (unless it is also in the data folder).
   */
  allowsFile(absPath: string, access: FileAccess): boolean {
    const roots = access === 'read' ? this.fileAccess.read : access === 'write' ? this.fileAccess.write : access === 'execute' ? this.fileAccess.execute : undefined;
    if (roots === undefined || roots.length === 0 || absPath.includes('\0') || !path.isAbsolute(absPath)) return false;
    const target = path.resolve(absPath);
    // `$plugin` write is never granted; this also keeps a wider root from reaching in (a data
    // folder the host placed inside the plugin folder stays writable).
    if (access === 'write' && isWithin(this.pluginDir, target) && !isWithin(this.dataDir, target)) return false;
    for (const root of roots) if (isWithin(root, target)) return true;
    return false;
  }

  /** The granted folders, absolute, one per distinct scope and level. */
  fileRoots(): FileRoot[] {
    return this.roots.map((r) => ({ ...r }));
  }

  /** Whether the plugin may connect to `url` (http, https, ws or wss; no user info). */
  allowsNetwork(url: URL): boolean {
    if (this.network.length === 0) return false;
    const protocol = url.protocol;
    const defaultPort = NETWORK_DEFAULT_PORTS[protocol];
    if (defaultPort === undefined || url.username !== '' || url.password !== '') return false;
    const portText = url.port;
    const port = portText === '' ? defaultPort : Number(portText);
    const hostname = url.hostname;
    for (const scope of this.network) if (matchesParts(scope, protocol, hostname, portText === '', port)) return true;
    return false;
  }

  /**
   * Whether the plugin may publish to or receive `topic`. For `subscribe`, `topic` may be a
   * pattern (`orders.*`): allowed when one granted scope covers every topic it matches.
   */
  allowsTopic(topic: string, access: TopicAccess): boolean {
    const grants = access === 'publish' ? this.publish : access === 'subscribe' ? this.subscribe : undefined;
    if (!grants) return false;
    if (grants.exact.has(topic)) return true;
    if (topic.includes('*')) return grants.scopes.some((s) => topicScopeCovers(s, topic));
    for (const matches of grants.matchers) if (matches(topic)) return true;
    return false;
  }

  /** Whether the plugin may call `method` on `pluginId`: a plugins scope or a declared dependency. */
  allowsCall(pluginId: string, method: string): boolean {
    return this.wholePlugins.has(pluginId) || (this.pluginMethods.get(pluginId)?.has(method) ?? false);
  }

  /** Whether a system, storage or ui scope allows `name`. */
  allowsName(type: NamePermissionType, name: string): boolean {
    const grants = this.names.get(type);
    if (!grants) return false;
    if (grants.exact.has(name)) return true;
    for (const pattern of grants.patterns) if (nameScopeMatches(pattern, name)) return true;
    return false;
  }

  /**
   * The permission that would allow `target`, for an error message: filesystem paths inside
   * the data folder come out relative to it, inside the plugin's folder as `$plugin/…`.
   *
   * @example
   * p.needed('network', new URL('https://api.example.com/x'));   // '{ "type": "network", "scope": ["api.example.com"] }'
   * p.needed('filesystem', '/data/reporter/cache/x.txt', 'write');
   * // '{ "type": "filesystem", "scope": ["cache/x.txt"], "level": "write" }'
   * p.needed('events', 'orders.created', 'publish');             // '{ "type": "events", "scope": ["orders.created"], "level": "write" }'
   * p.needed('plugins', 'acme.auth#login');                      // '{ "type": "plugins", "scope": ["acme.auth#login"] }'
   */
  needed(type: PermissionType, target: string | URL, access?: FileAccess | TopicAccess): string {
    if (type === 'network') return permissionText(type, networkTarget(target));
    const text = String(target);
    if (type === 'events') return permissionText(type, text, access === 'publish' || access === 'write' ? 'write' : undefined);
    if (type !== 'filesystem') return permissionText(type, text);
    const level = access === 'write' || access === 'execute' ? access : undefined;
    const absolute = path.resolve(this.dataDir, text);
    if (isWithin(this.dataDir, absolute)) return permissionText(type, toScope(path.relative(this.dataDir, absolute)), level);
    if (isWithin(this.pluginDir, absolute)) {
      if (level === 'write') return "a scope under the data folder (the plugin's own folder is never writable)";
      const rest = toScope(path.relative(this.pluginDir, absolute));
      return permissionText(type, rest === '.' ? '$plugin' : `$plugin/${rest}`, level);
    }
    return permissionText(type, absolute, level);
  }
}

function toScope(relative: string): string {
  return relative === '' ? '.' : relative.split(path.sep).join('/');
}

function networkTarget(target: string | URL): string {
  let url: URL;
  try {
    url = typeof target === 'string' ? new URL(target) : target;
  } catch {
    return String(target);
  }
  const host = url.hostname.endsWith('.') ? url.hostname.slice(0, -1) : url.hostname;
  return url.port === '' ? host : `${host}:${url.port}`;
}
