import type { PluginStatus } from '../host/plugin-host.js';
import { renderTable, type Column } from './table.js';

const MB = 1024 * 1024;

/** A row of the status table: a plugin the host knows, or one it could not even read. */
export type StatusRow = Pick<PluginStatus, 'id' | 'state'> & Partial<PluginStatus>;

const COLUMNS: Column<StatusRow>[] = [
  { header: 'id', value: (s) => s.id },
  { header: 'version', value: (s) => s.version ?? '-' },
  { header: 'runtime', value: (s) => s.runtime ?? '-' },
  { header: 'state', value: (s) => s.state },
  { header: 'load ms', value: (s) => (s.loadTimeMs === undefined ? '-' : s.loadTimeMs.toFixed(1)), right: true },
  { header: 'memory MB', value: (s) => (s.memory?.current ? (s.memory.current / MB).toFixed(1) : '-'), right: true },
];

/**
 * The `logomesh run` status table: id, version, runtime, state, load ms, memory MB.
 *
 * @example
 * statusTable(host.list()).forEach((line) => console.log(line));
 */
export function statusTable(rows: StatusRow[]): string[] {
  return renderTable(COLUMNS, rows);
}
