import path from 'node:path';
import { Subscription } from 'rxjs';
import { createPluginHost, type LoadReport, type PluginHost, type PluginLoadResult } from '../../index.js';
import { cliLogger } from '../cli-logger.js';
import { busEventLine, failedLine, hostEventLine, startedLine } from '../event-lines.js';
import { printer, stopSignal, type CliIO, type Printer } from '../io.js';
import { statusTable, type StatusRow } from '../status-table.js';

/** Options of `logomesh run`. */
export interface RunOptions {
  dataDir: string;
  requireSignature?: boolean;
  trustedKey?: string[];
  /** Load, print, close: no live stream. */
  once?: boolean;
  json?: boolean;
  logLevel: string;
}

/**
 * `logomesh run [dirs...]`: loads every plugin under `dirs`, prints a line as each starts
 * or fails and then a status table; unless `once`, streams host events and plugin emissions
 * until `io.signal` (default: SIGINT/SIGTERM) aborts, then closes the host.
 * Exit code with `once`: 0 when every plugin started, else 1; otherwise 0 after a clean close.
 *
 * @example
 * const code = await runCommand(['plugins'], { dataDir: '.logomesh', once: true, logLevel: 'warn' }, processIO());
 */
export async function runCommand(dirs: string[], options: RunOptions, io: CliIO): Promise<number> {
  // Listen before loading, so Ctrl-C during a slow load still closes the host cleanly.
  const stop = options.once || io.signal ? undefined : stopSignal();
  const subscriptions = new Subscription();
  let host: PluginHost | undefined;
  try {
    host = await createPluginHost({
      pluginDirs: dirs,
      dataDir: options.dataDir,
      requireSignature: options.requireSignature,
      trustedKeys: options.trustedKey,
      logger: cliLogger(options.logLevel, io.stderr),
    });
    const p = printer(io);
    const progress = follow(host, options, p, subscriptions);
    const report = await host.loadAll();
    printLoaded(host, report, dirs, options, p, progress.announced);
    if (options.once) return report.failed.length > 0 ? 1 : 0;

    progress.goLive();
    if (!options.json) p.out(`watching ${plural(report.started.length, 'plugin')}; press Ctrl-C to stop`);
    await aborted((io.signal ?? stop?.signal)!);
    if (!options.json) p.out('closing…');
    await host.close();
    if (!options.json) p.out('closed');
    return 0;
  } finally {
    await host?.close();
    subscriptions.unsubscribe();
    stop?.dispose();
  }
}

/**
 * While loading: a ✔/✖ line per plugin reaching started/failed/crashed. Once live: every
 * host event. Throughout (unless `once`): every event each loaded plugin emits.
 */
function follow(host: PluginHost, options: RunOptions, p: Printer, subscriptions: Subscription) {
  const announced = new Set<string>();
  const watched = new Set<string>();
  let live = false;
  const watch = (id: string) => {
    if (options.once || watched.has(id)) return;
    watched.add(id);
    subscriptions.add(host.plugin(id).events$().subscribe((e) => (options.json ? p.json({ kind: 'bus', ...e }) : p.out(busEventLine(e)))));
  };
  subscriptions.add(
    host.events$.subscribe((event) => {
      // Subscribed at `loaded`, so what a plugin emits in onStart is seen too.
      if (event.type === 'plugin.loaded') watch(event.pluginId);
      if (live) {
        if (options.json) p.json({ kind: 'host', ...event });
        // The CLI logger already prints every warning the host logs.
        else if (event.type !== 'plugin.warning') p.out(hostEventLine(event));
      } else if (!options.json && (event.type === 'plugin.started' || event.type === 'plugin.failed' || event.type === 'plugin.crashed')) {
        announced.add(event.pluginId);
        p.out(event.type === 'plugin.started' ? startedLine(host.status(event.pluginId)) : failedLine(event.pluginId, event.type.slice('plugin.'.length), event.error));
      }
    }),
  );
  return { announced, goLive: () => void (live = true) };
}

function printLoaded(host: PluginHost, report: LoadReport, dirs: string[], options: RunOptions, p: Printer, announced: Set<string>): void {
  // Folders the host could not even read never became plugins, so no event announced them.
  const known = new Set(host.list().map((s) => s.id));
  const unread = report.plugins.filter((r) => r.state !== 'started' && !known.has(r.id));
  const rows: StatusRow[] = [...host.list(), ...unread.map(unreadRow)];
  if (options.json) {
    p.json({ kind: 'loaded', plugins: rows, started: report.started, failed: report.failed, durationMs: report.durationMs });
    return;
  }
  for (const r of unread) if (!announced.has(r.id)) p.out(failedLine(displayId(r), 'failed', r.error));
  if (rows.length === 0) p.out(`no plugins found in ${dirs.join(', ')}`);
  else statusTable(rows).forEach((line) => p.out(line));
}

function unreadRow(r: PluginLoadResult): StatusRow {
  return { id: displayId(r), version: r.version, state: r.state, dir: r.dir, error: r.error };
}

/** A folder with an unreadable manifest has no id; it is named by its path. */
function displayId(r: PluginLoadResult): string {
  if (r.error?.pluginId) return r.error.pluginId;
  const rel = path.relative(process.cwd(), r.id);
  return rel && !rel.startsWith('..') ? rel : r.id;
}

/** Resolves when `signal` aborts. A timer keeps Node running meanwhile: signal listeners and idle isolates do not. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const keepAlive = setInterval(() => {}, 2 ** 30);
    signal.addEventListener('abort', () => (clearInterval(keepAlive), resolve()), { once: true });
  });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
