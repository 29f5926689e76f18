import { LifecycleError } from '../errors.js';

/** The states a plugin moves through in a host. */
export type PluginState =
  | 'registered'
  | 'loaded'
  | 'starting'
  | 'started'
  | 'stopping'
  | 'stopped'
  | 'failed'
  | 'crashed'
  | 'unloaded';

/**
 * Legal transitions. `loaded` is reached again (from `loaded`, `stopped`, `failed` and
 * `crashed`) when a restart builds a fresh sandbox; `unloaded` is final.
 */
const TRANSITIONS: Record<PluginState, readonly PluginState[]> = {
  registered: ['loaded', 'failed', 'unloaded'],
  loaded: ['loaded', 'starting', 'failed', 'crashed', 'unloaded'],
  starting: ['started', 'failed', 'crashed'],
  started: ['stopping', 'crashed'],
  stopping: ['stopped', 'failed', 'crashed'],
  stopped: ['starting', 'loaded', 'unloaded', 'crashed'],
  failed: ['loaded', 'unloaded'],
  crashed: ['loaded', 'unloaded'],
  unloaded: [],
};

/** True when a plugin in state `from` may move to `to`. */
export function canTransition(from: PluginState, to: PluginState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * One plugin's state machine. Illegal transitions throw `LifecycleError`; each legal one
 * is reported to `onTransition` (the host turns it into a `plugin.<state>` event).
 *
 * @example
 * const lc = new PluginLifecycle('text-processor', (from, to) => console.log(from, '→', to));
 * lc.transition('loaded');
 */
export class PluginLifecycle {
  private current: PluginState = 'registered';

  constructor(
    readonly pluginId: string,
    private readonly onTransition: (from: PluginState, to: PluginState, error?: unknown) => void,
  ) {}

  get state(): PluginState {
    return this.current;
  }

  transition(to: PluginState, error?: unknown): void {
    const from = this.current;
    if (!canTransition(from, to)) throw new LifecycleError(from, to, { pluginId: this.pluginId });
    this.current = to;
    this.onTransition(from, to, error);
  }
}
