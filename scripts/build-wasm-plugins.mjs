#!/usr/bin/env node
// Compiles the AssemblyScript example plugins: every plugins/<name>/asconfig.json (entries,
// outFile and compiler options are in that file, paths relative to it). Part of `npm run build`.
// The .wasm files are build output (ignored by git): plugin.json's entryPoint names them.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pluginsDir = join(root, 'plugins');

let asc;
try {
  ({ default: asc } = await import('assemblyscript/asc'));
} catch (e) {
  process.stderr.write(`build-wasm-plugins: cannot load the AssemblyScript compiler (a devDependency; run npm install): ${e.message}\n`);
  process.exit(1);
}

let failed = 0;
for (const entry of await readdir(pluginsDir, { withFileTypes: true })) {
  const config = join(pluginsDir, entry.name, 'asconfig.json');
  if (!entry.isDirectory() || !existsSync(config)) continue;
  const { error, stderr } = await asc.main(['--config', config], {});
  const where = relative(root, config);
  if (error) {
    failed++;
    process.stderr.write(`build-wasm-plugins: ${where} failed: ${error.message}\n${stderr.toString()}`);
  } else {
    process.stderr.write(`build-wasm-plugins: built ${where}\n`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
