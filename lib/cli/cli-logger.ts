import { pino, type Logger } from 'pino';

/** Fields every pino record has; the rest of a record is shown after its message. */
const RECORD_FIELDS = new Set(['level', 'time', 'msg', 'plugin']);

/**
 * A pino logger that writes one readable line per record, `warn  [plugin] message {fields}`,
 * to `write` instead of JSON to a file descriptor: host warnings and plugin logs in a
 * terminal, and in a spec's captured output.
 *
 * @example
 * const logger = cliLogger('info', (line) => process.stderr.write(line));
 * logger.child({ plugin: 'hello' }).info('ready'); // "info  [hello] ready\n"
 */
export function cliLogger(level: string, write: (text: string) => void): Logger {
  return pino({ level, base: undefined }, { write: (json: string) => write(formatRecord(json)) });
}

function formatRecord(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const label = pino.levels.labels[record.level as number] ?? String(record.level);
  const rest = Object.fromEntries(Object.entries(record).filter(([key]) => !RECORD_FIELDS.has(key)));
  const parts = [
    label.padEnd(5),
    record.plugin === undefined ? '' : `[${String(record.plugin)}]`,
    printable(String(record.msg ?? '')),
    Object.keys(rest).length > 0 ? JSON.stringify(rest) : '',
  ];
  return `${parts.filter(Boolean).join(' ')}\n`;
}

/** Plugin text reaches a terminal: escape control characters so it cannot forge lines or send escape codes. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
