/**
 * Injection tokens. Each token shares its name with the interface it stands for
 * (`IPluginRegistry` the interface and `IPluginRegistry` the token), so a host
 * application replaces a service with `container.register(IPluginRegistry, …)`.
 */
export const IHostOptions = Symbol.for('logomesh.IHostOptions');
export const ILogger = Symbol.for('logomesh.ILogger');
export const IPluginRegistry = Symbol.for('logomesh.IPluginRegistry');
