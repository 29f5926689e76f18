/**
 * Where the `logomesh` command writes, and what tells a long-running command to stop.
 * Specs pass their own to capture output and stop `run` without sending a real signal.
 *
 * @example
 * let out = '';
 * await main(['list', 'plugins'], { stdout: (s) => (out += s) });
 */
export interface CliIO {
  /** Receives text for standard output (lines end with '\n'). */
  stdout(text: string): void;
  /** Receives text for standard error. */
  stderr(text: string): void;
  /** Aborted when the user asks a long-running command to stop (default: SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** Line-oriented writers over a {@link CliIO}. */
export interface Printer {
  out(line?: string): void;
  err(line?: string): void;
  /** One JSON value on one line of standard output. */
  json(value: unknown): void;
}

/**
 * The process's own streams.
 *
 * @example
 * const io = processIO(); io.stdout('hello\n');
 */
export function processIO(): CliIO {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  };
}

/**
 * Line writers over `io`.
 *
 * @example
 * printer(processIO()).out('✔ done');
 */
export function printer(io: CliIO): Printer {
  return {
    out: (line = '') => io.stdout(`${line}\n`),
    err: (line = '') => io.stderr(`${line}\n`),
    json: (value) => io.stdout(`${JSON.stringify(value, jsonReplacer)}\n`),
  };
}

/** Errors become `{ code, message }` in JSON output: stacks are for logs, not for scripts. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const { code } = value as { code?: unknown };
    return { code, message: value.message };
  }
  return value;
}

/**
 * Aborted on the first SIGINT or SIGTERM. Later signals are ignored so that a terminal's
 * Ctrl-C, which reaches both the launcher and this process, is taken once. `dispose()`
 * removes the listeners.
 *
 * @example
 * const stop = stopSignal(); await once(stop.signal, 'abort'); stop.dispose();
 */
export function stopSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => controller.abort(name);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
