import { printable } from './cli-logger.js';
import type { BusEvent, HostEvent } from '../events/host-events.js';
import type { PluginStatus } from '../host/plugin-host.js';

/** Longest event payload shown on one line; the rest is elided. */
const MAX_DATA_CHARS = 200;

/**
 * `✔ text-processor@1.2.0 started (4.1 ms)`: load plus start time.
 *
 * @example
 * out(startedLine(host.status('text-processor')));
 */
export function startedLine(status: PluginStatus): string {
  const ms = (status.loadTimeMs ?? 0) + (status.startTimeMs ?? 0);
  return `✔ ${status.id}@${status.version} started (${ms.toFixed(1)} ms)`;
}

/**
 * `✖ broken failed: <message>`; a multi-line message continues indented.
 *
 * @example
 * out(failedLine('broken', 'failed', error));
 */
export function failedLine(id: string, state: string, error: Error | undefined): string {
  const message = (error?.message ?? 'no reason given').replace(/\n/g, '\n    ');
  return `✖ ${id} ${state}: ${message}`;
}

/**
 * One line for a host event, for the live stream of `logomesh run`.
 *
 * @example
 * host.events$.subscribe((e) => out(hostEventLine(e)));
 * // 12:00:01.250 plugin.stopped text-processor (was started)
 */
export function hostEventLine(event: HostEvent): string {
  const at = clock(event.at);
  switch (event.type) {
    case 'plugin.warning':
      return `${at} warning ${event.pluginId}: ${event.message}`;
    case 'event.dropped':
      return `${at} event.dropped ${event.pluginId}: ${event.dropped} × '${event.topic}' (${event.reason === 'too-deep' ? 'event chain too deep' : 'queue full'})`;
    case 'plugin.dependencyDown':
    case 'plugin.dependencyUp':
      return `${at} ${event.type} ${event.pluginId}: ${event.dependency}`;
    case 'plugin.recovering':
      return `${at} plugin.recovering ${event.pluginId}: attempt ${event.attempt} in ${event.delayMs} ms`;
    case 'plugin.circuit':
      return `${at} plugin.circuit ${event.pluginId}: ${event.state}`;
    case 'plugin.suspended':
    case 'plugin.resumed':
      return `${at} ${event.type} ${event.pluginId}${event.reason ? `: ${event.reason}` : ''}`;
    case 'permission.denied':
      return `${at} permission.denied ${event.pluginId}: ${event.operation} ${printable(event.target)} (needs ${event.needed})`;
    default: {
      const was = event.from ? ` (was ${event.from})` : '';
      const why = event.error ? `: ${event.error.message}` : '';
      return `${at} ${event.type} ${event.pluginId}@${event.version}${was}${why}`;
    }
  }
}

/**
 * One line for an event a plugin emitted: `12:00:01.250 [text-processor] indexed {"id":1}`.
 *
 * @example
 * host.plugin(id).events$().subscribe((e) => out(busEventLine(e)));
 */
export function busEventLine(event: BusEvent): string {
  let data: string;
  try {
    data = event.data === undefined ? '' : (JSON.stringify(event.data) ?? String(event.data));
  } catch {
    data = '[unprintable]';
  }
  if (data.length > MAX_DATA_CHARS) data = `${data.slice(0, MAX_DATA_CHARS)}…`;
  return `${clock(event.at)} [${event.source}] ${event.topic}${data ? ` ${data}` : ''}`;
}

function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}
