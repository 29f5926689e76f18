#!/usr/bin/env node
// The `logomesh` launcher. isolated-vm on Node 20 needs V8's startup snapshot turned off,
// which only a command-line flag can do: without it, this re-runs itself with the flag.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const FLAG = '--no-node-snapshot';
const thisFile = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const hasFlag = process.execArgv.includes(FLAG) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(FLAG);

if (!hasFlag) {
  const child = spawn(process.execPath, [FLAG, ...process.execArgv, thisFile, ...args], { stdio: 'inherit' });
  // A terminal's Ctrl-C reaches both processes; `kill <pid>` reaches only this one. The child
  // takes the first signal and ignores repeats, so forwarding is safe in both cases.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`logomesh: cannot start ${process.execPath}: ${error.message}\n`);
    process.exit(2);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
} else {
  // Resolved against this file, not the working directory, so any cwd works.
  const entry = new URL('../dist/lib/cli/main.js', import.meta.url);
  const { main } = await import(entry.href).catch((error) => {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes(fileURLToPath(entry))) throw error;
    process.stderr.write(`logomesh: ${fileURLToPath(entry)} is missing; build the package first (npm run build).\n`);
    process.exit(2);
  });
  const code = await main(args);
  // Let piped output drain before exiting; exiting explicitly ends anything a plugin left behind.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
