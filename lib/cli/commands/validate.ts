import path from 'node:path';
import { printer, type CliIO } from '../io.js';
import { checkPlugin, type PluginCheck } from '../plugin-check.js';

/** Options of `logomesh validate`. */
export interface ValidateOptions {
  trustedKey?: string[];
  json?: boolean;
}

/**
 * `logomesh validate <dir|plugin.json>`: prints every manifest problem (pointer, message,
 * fix), every import the loader would refuse, and the integrity/signature outcome.
 * Exit code 0 when the plugin would load (warnings allowed), 1 otherwise.
 *
 * @example
 * const code = await validateCommand('plugins/hello', { trustedKey: ['acme.pub.pem'] }, processIO());
 */
export async function validateCommand(target: string, options: ValidateOptions, io: CliIO): Promise<number> {
  const check = await checkPlugin(target, { trustedKeys: options.trustedKey });
  const p = printer(io);
  if (options.json) p.json(check);
  else printCheck(check, p.out);
  return check.valid ? 0 : 1;
}

function printCheck(check: PluginCheck, print: (line: string) => void): void {
  // Continuation lines of multi-line messages (compiler diagnostics) stay under their item.
  const out = (line: string) => print(line.replace(/\n/g, '\n      '));
  const name = check.id ? `${check.id}${check.version ? `@${check.version}` : ''}` : path.basename(check.dir);
  out(`${name} (${path.relative(process.cwd(), check.manifestPath) || check.manifestPath})`);
  for (const problem of check.manifestProblems) {
    out(`  ✖ ${problem.pointer || '/'}: ${problem.message}`);
    out(`      fix: ${problem.hint}`);
  }
  for (const problem of check.importProblems) {
    const what = problem.specifier === undefined ? problem.file : `import '${problem.specifier}' in ${problem.file}`;
    out(`  ✖ ${what}: ${problem.message}`);
  }
  const trust = check.trust;
  if (trust?.status === 'refused') out(`  ✖ ${trust.error?.message ?? 'refused'}`);
  if (trust?.status === 'verified') out(`  ✔ signature verified (key ${trust.keyId})`);
  for (const warning of check.warnings) out(`  ⚠ ${warning}`);

  const errors = check.manifestProblems.length + check.importProblems.length + (trust?.status === 'refused' ? 1 : 0);
  const warnings = check.warnings.length ? ` (${plural(check.warnings.length, 'warning')})` : '';
  out(check.valid ? `✔ valid${warnings}` : `✖ invalid: ${plural(errors, 'problem')}${warnings}`);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
