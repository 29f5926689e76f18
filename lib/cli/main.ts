/**
 * The `logomesh` command. `bin/logomesh.js` runs it with the process's arguments; specs and
 * host applications can call {@link main} in-process with their own writers.
 */
// The package entry first: it loads reflect-metadata, which tsyringe needs before any service module.
import { PluginHostError } from '../index.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { keygenCommand } from './commands/keygen.js';
import { listCommand } from './commands/list.js';
import { runCommand, type RunOptions } from './commands/run.js';
import { signCommand } from './commands/sign.js';
import { validateCommand, type ValidateOptions } from './commands/validate.js';
import { printer, processIO, type CliIO } from './io.js';

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * Runs `logomesh` with `argv` (the arguments after the command name) and resolves to its
 * exit code; it never exits the process. A `PluginHostError` is printed as
 * `error <code>: <message>` (exit 1), anything else with its stack (exit 2).
 *
 * @example
 * const code = await main(['validate', 'plugins/hello']);
 * let out = '';
 * await main(['list', 'plugins'], { stdout: (s) => (out += s), stderr: (s) => (out += s) });
 */
export async function main(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  const streams: CliIO = { ...processIO(), ...io };
  let exitCode = 0;
  const program = buildProgram(streams, (code) => (exitCode = code));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    const p = printer(streams);
    if (error instanceof PluginHostError) {
      p.err(`error ${error.code}: ${error.message}`);
      return 1;
    }
    p.err(error instanceof Error ? (error.stack ?? String(error)) : String(error));
    return 2;
  }
}

function buildProgram(io: CliIO, exit: (code: number) => void): Command {
  const program = new Command('logomesh')
    .description('Load, check and sign LogoMesh plugins.')
    .version(version)
    // Settings made before .command() are inherited by every subcommand.
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run logomesh help for usage)');

  program
    .command('run')
    .description('load and start plugins, print their status, then stream events until Ctrl-C')
    .argument('[dirs...]', 'plugin folders, or folders of plugin folders', ['plugins'])
    .option('--data-dir <dir>', 'where the host keeps its data', '.logomesh')
    .option('--require-signature', 'refuse plugins without a valid signature from a trusted key')
    .option('--trusted-key <pem-or-path...>', 'trusted ed25519 public keys (PEM text or file)')
    .option('--once', 'load, print the status table, close; exit 1 if any plugin failed')
    .option('--log-level <level>', 'host and plugin log level (stderr)', process.env.LOGOMESH_LOG_LEVEL ?? 'info')
    .option('--json', 'print JSON lines instead of text')
    .action(async (dirs: string[], options: RunOptions) => exit(await runCommand(dirs, options, io)));

  program
    .command('validate')
    .description('check a manifest, its imports, integrity and signature without running the plugin')
    .argument('<target>', 'plugin folder or plugin.json')
    .option('--trusted-key <pem-or-path...>', 'public keys to verify the signature with')
    .option('--json', 'print the result as JSON')
    .action(async (target: string, options: ValidateOptions) => exit(await validateCommand(target, options, io)));

  program
    .command('list')
    .description('list the plugins found under the folders, with every version')
    .argument('[dirs...]', 'plugin folders, or folders of plugin folders', ['plugins'])
    .option('--json', 'print the result as JSON')
    .action(async (dirs: string[], options: { json?: boolean }) => exit(await listCommand(dirs, options, io)));

  program
    .command('keygen')
    .description('create an ed25519 key pair for signing plugins')
    .option('--out <dir>', 'folder for logomesh-private.pem and logomesh-public.pem', '.')
    .option('--json', 'print the result as JSON')
    .action(async (options: { out: string; json?: boolean }) => exit(await keygenCommand(options, io)));

  program
    .command('sign')
    .description("hash a plugin's files and sign its manifest")
    .argument('<dir>', 'plugin folder')
    .requiredOption('--key <private.pem>', 'private key from logomesh keygen')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, options: { key: string; json?: boolean }) => exit(await signCommand(dir, options, io)));

  return program;
}
