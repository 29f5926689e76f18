import { PluginNotFoundError } from '../errors.js';
import type { ManagedPlugin } from './managed-plugin.js';

/**
 * The plugins one host knows, by id (failed ones included), and the order they loaded in:
 * they are stopped in reverse.
 *
 * @example
 * const plugins = new PluginTable();
 * plugins.add(plugin);
 * plugins.loaded(plugin.id);
 * plugins.get('text-processor'); // throws PluginNotFoundError for an id the host does not know
 */
export class PluginTable {
  private readonly byId = new Map<string, ManagedPlugin>();
  /** Ids in the order they were loaded. */
  private order: string[] = [];

  /** The plugin with this id; throws `PluginNotFoundError` when the host has none. */
  get(id: string): ManagedPlugin {
    const plugin = this.byId.get(id);
    if (!plugin) throw new PluginNotFoundError(id);
    return plugin;
  }

  /** The plugin with this id, if the host has one. */
  find(id: string): ManagedPlugin | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  values(): IterableIterator<ManagedPlugin> {
    return this.byId.values();
  }

  /** Records a plugin (not yet in the load order). */
  add(plugin: ManagedPlugin): void {
    this.byId.set(plugin.id, plugin);
  }

  /** The plugin has loaded: it joins the load order. */
  loaded(id: string): void {
    this.order.push(id);
  }

  /** Forgets a plugin and its place in the load order. */
  remove(id: string): void {
    this.byId.delete(id);
    this.order = this.order.filter((o) => o !== id);
  }

  /** Every id: loaded ones in load order, then the ones that never loaded, sorted. */
  ids(): string[] {
    return [...this.order, ...[...this.byId.keys()].filter((id) => !this.order.includes(id)).sort()];
  }

  /** Loaded ids, the last loaded first: the order to stop them in. */
  stopOrder(): string[] {
    return [...this.order].reverse();
  }
}
