/**
 * Every failure the host reports is a `PluginHostError` with a stable `code`
 * (`LOGOMESH_ERR_*`). Match on the class or the code, never on the message.
 *
 * @example
 * try { await host.call('x', 'y'); }
 * catch (e) { if (e instanceof PluginTimeoutError) console.log(e.code, e.pluginId); }
 */

export interface PluginHostErrorOptions {
  pluginId?: string;
  cause?: unknown;
}

/** Serialised form of an error, as it crosses an isolate or worker boundary. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export class PluginHostError extends Error {
  readonly code: string;
  readonly pluginId?: string;

  constructor(code: string, message: string, options: PluginHostErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.pluginId = options.pluginId;
  }

  toJSON(): SerializedError & { pluginId?: string } {
    return { name: this.name, message: this.message, code: this.code, pluginId: this.pluginId, stack: this.stack };
  }
}

/** One problem found in a manifest: where (JSON pointer), what, and how to fix it. */
export interface ManifestProblem {
  pointer: string;
  message: string;
  hint: string;
}

export class ManifestError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_MANIFEST_INVALID';
  constructor(
    readonly problems: ManifestProblem[],
    readonly source: string,
    options: PluginHostErrorOptions = {},
  ) {
    super(
      ManifestError.code,
      `Invalid plugin manifest ${source}:\n` +
        problems.map((p) => `  ${p.pointer || '/'}: ${p.message} (fix: ${p.hint})`).join('\n'),
      options,
    );
  }
}

export type DependencyProblemKind = 'missing' | 'cycle' | 'conflict' | 'failed' | 'incompatible';

export class DependencyError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_DEPENDENCY';
  constructor(
    readonly kind: DependencyProblemKind,
    message: string,
    options: PluginHostErrorOptions & { path?: string[] } = {},
  ) {
    super(DependencyError.code, message, options);
    this.path = options.path;
  }
  readonly path?: string[];
}

export class IntegrityError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_INTEGRITY';
  constructor(message: string, options: PluginHostErrorOptions & { files?: string[] } = {}) {
    super(IntegrityError.code, message, options);
    this.files = options.files ?? [];
  }
  readonly files: string[];
}

export class SignatureError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_SIGNATURE';
  constructor(message: string, options: PluginHostErrorOptions = {}) {
    super(SignatureError.code, message, options);
  }
}

export class LifecycleError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_ILLEGAL_TRANSITION';
  constructor(
    readonly from: string,
    readonly to: string,
    options: PluginHostErrorOptions = {},
  ) {
    super(
      LifecycleError.code,
      `Plugin ${options.pluginId ?? '?'} cannot go from '${from}' to '${to}'.`,
      options,
    );
  }
}

export class PluginNotFoundError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_NOT_FOUND';
  constructor(pluginId: string, what = 'is not loaded in this host') {
    super(PluginNotFoundError.code, `Plugin '${pluginId}' ${what}.`, { pluginId });
  }
}

export class PluginStateError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_NOT_RUNNING';
  constructor(pluginId: string, readonly state: string, attempted: string) {
    super(
      PluginStateError.code,
      `Cannot ${attempted} plugin '${pluginId}': it is '${state}'. Start it first (host.start('${pluginId}')).`,
      { pluginId },
    );
  }
}

export class PluginLoadError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_LOAD';
  constructor(message: string, options: PluginHostErrorOptions = {}) {
    super(PluginLoadError.code, message, options);
  }
}

export class ImportRefusedError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_IMPORT_REFUSED';
  constructor(
    readonly specifier: string,
    readonly importer: string,
    reason: string,
    options: PluginHostErrorOptions = {},
  ) {
    super(
      ImportRefusedError.code,
      `Import '${specifier}' from ${importer} refused: ${reason}. Plugins may import only ` +
        `'@logomesh/plugin-host/sdk' and relative files inside their own folder.`,
      options,
    );
  }
}

export class MethodNotExposedError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_METHOD_NOT_EXPOSED';
  constructor(pluginId: string, method: string) {
    super(
      MethodNotExposedError.code,
      `Plugin '${pluginId}' has no exposed method '${method}'. Only methods decorated with @Expose() can be called.`,
      { pluginId },
    );
  }
}

export class PermissionDeniedError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PERMISSION_DENIED';
  constructor(
    pluginId: string,
    readonly operation: string,
    readonly target: string,
    readonly requiredPermission: string,
  ) {
    super(
      PermissionDeniedError.code,
      `Plugin '${pluginId}' may not ${operation} '${target}'. Declare ${requiredPermission} in its manifest.`,
      { pluginId },
    );
  }
}

export class ResourceLimitError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_RESOURCE_LIMIT';
  constructor(
    pluginId: string,
    readonly resource: string,
    message: string,
    options: PluginHostErrorOptions = {},
  ) {
    super(ResourceLimitError.code, message, { ...options, pluginId });
  }
}

export class PluginTimeoutError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_TIMEOUT';
  /**
   * `queued`: the invocation never ran; it waited `timeoutMs` for the plugin to finish earlier
   * ones (a plugin runs one invocation at a time per thread) and the plugin keeps running.
   */
  constructor(
    pluginId: string,
    readonly operation: string,
    readonly timeoutMs: number,
    readonly queued = false,
  ) {
    super(
      PluginTimeoutError.code,
      queued
        ? `Plugin '${pluginId}' was busy: ${operation} waited ${timeoutMs} ms for its turn and did not run; the plugin keeps running. ` +
            `Make fewer concurrent calls, or declare the plugin stateless with more threads.`
        : `Plugin '${pluginId}' did not finish ${operation} within ${timeoutMs} ms; it was stopped. ` +
            `Raise resourceLimits.executionTimeoutMs if the work is legitimately slow.`,
      { pluginId },
    );
  }
}

export class PluginCrashedError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_CRASHED';
  constructor(pluginId: string, message: string, options: PluginHostErrorOptions = {}) {
    super(PluginCrashedError.code, message, { ...options, pluginId });
  }
}

/** An error thrown by plugin code, rebuilt on the host with the plugin-side stack. */
export class PluginError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_THREW';
  constructor(
    pluginId: string,
    readonly operation: string,
    readonly remote: SerializedError,
  ) {
    super(
      PluginError.code,
      `Plugin '${pluginId}' threw in ${operation}: ${remote.name}: ${remote.message}`,
      { pluginId },
    );
    this.pluginStack = remote.stack;
  }
  readonly pluginStack?: string;
}

export class InvalidArgumentError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_INVALID_ARGUMENT';
  constructor(message: string, options: PluginHostErrorOptions = {}) {
    super(InvalidArgumentError.code, message, options);
  }
}

export class PluginSuspendedError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_PLUGIN_SUSPENDED';
  constructor(pluginId: string, readonly reason: string) {
    super(PluginSuspendedError.code, `Plugin '${pluginId}' is suspended (${reason}); calls fail fast until the host resumes it.`, { pluginId });
  }
}

/**
 * A plugin-to-plugin call that would wait on itself: `chain` is the plugins whose invocations
 * wait on this call, outermost first, and `pluginId` is among them and runs one invocation at a
 * time (a WebAssembly or Python plugin), so the call could only start after it ends.
 */
export class CallCycleError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_CALL_CYCLE';
  constructor(
    pluginId: string,
    readonly method: string,
    readonly chain: readonly string[],
  ) {
    super(
      CallCycleError.code,
      `Call ${[...chain, pluginId].join(' → ')} refused: '${pluginId}' runs one invocation at a time and is waiting on this call, so ${method}() could not start before it ends.`,
      { pluginId },
    );
  }
}

export class CircuitOpenError extends PluginHostError {
  static readonly code = 'LOGOMESH_ERR_CIRCUIT_OPEN';
  constructor(pluginId: string, readonly retryAt: number) {
    super(
      CircuitOpenError.code,
      `Plugin '${pluginId}' crashed repeatedly and is quarantined until ${new Date(retryAt).toISOString()}; calls fail fast until a trial restart succeeds.`,
      { pluginId },
    );
  }
}
