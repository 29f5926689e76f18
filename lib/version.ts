/**
 * The version of the plugin API this host implements. A manifest's `apiVersion` is a
 * semver range that must be satisfied by it.
 *
 * @example
 * import { PLUGIN_API_VERSION } from '@logomesh/plugin-host';
 * semver.satisfies(PLUGIN_API_VERSION, manifest.apiVersion);
 */
export const PLUGIN_API_VERSION = '1.0.0';
