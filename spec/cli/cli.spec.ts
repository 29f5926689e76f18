// The `logomesh` command: the real launcher spawned as a user runs it, and main() in-process.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { main } from '../../lib/cli/main.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root: the nearest folder up whose package.json is this package's. */
const repoRoot = ((): string => {
  for (let dir = here; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === '@logomesh/plugin-host') return dir;
  }
  throw new Error(`no @logomesh/plugin-host package.json above ${here}`);
})();

/** Absolute path of a fixture under spec/fixtures/cli. */
const fixture = (...parts: string[]) => path.join(repoRoot, 'spec/fixtures/cli', ...parts);

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `main()` in this process, output captured. */
async function cli(...argv: string[]): Promise<CliResult> {
  const result = { code: 0 as number | null, stdout: '', stderr: '' };
  result.code = await main(argv, { stdout: (s) => (result.stdout += s), stderr: (s) => (result.stderr += s) });
  return result;
}

/**
 * A copy of bin/logomesh.js next to a `dist` link to the compiled output these specs run
 * from (dist/ under `npm test`, another outDir otherwise), so the launcher is exercised
 * exactly as installed: it finds `../dist/lib/cli/main.js` relative to itself.
 */
async function installLauncher(): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'logomesh-bin-'));
  await mkdir(path.join(root, 'bin'));
  await copyFile(path.join(repoRoot, 'bin/logomesh.js'), path.join(root, 'bin/logomesh.js'));
  await symlink(path.resolve(here, '../..'), path.join(root, 'dist'), 'dir');
  return path.join(root, 'bin/logomesh.js');
}

/**
 * Runs the launcher as a user would (plain `node`, no flags: it must re-spawn itself with
 * --no-node-snapshot). `onStdout` may send signals to the running process.
 */
function spawnLauncher(
  launcher: string,
  args: string[],
  options: { cwd: string; timeoutMs?: number; onStdout?: (all: string, pid: number) => void },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [launcher, ...args], {
      cwd: options.cwd,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result: CliResult = { code: null, stdout: '', stderr: '' };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`logomesh ${args.join(' ')} did not finish in ${options.timeoutMs ?? 45000} ms\n${result.stdout}\n${result.stderr}`));
    }, options.timeoutMs ?? 45000);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      result.stdout += s;
      options.onStdout?.(result.stdout, child.pid!);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (result.stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ...result, code });
    });
  });
}

/** A fresh temporary folder. */
function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `logomesh-${prefix}-`));
}

describe('cli/logomesh', function () {
  this.timeout(60000);
  let launcher: string;
  let work: string;

  before(async () => {
    launcher = await installLauncher();
    work = await tempDir('cli');
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
    await rm(path.dirname(path.dirname(launcher)), { recursive: true, force: true });
  });

  describe('the launcher (spawned)', () => {
    it('validate: a valid plugin exits 0', async () => {
      const r = await spawnLauncher(launcher, ['validate', fixture('greeter')], { cwd: work });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.contain('greeter@1.0.0').and.contain('✔ valid');
    });

    it('validate: a manifest with several problems exits 1 and names each pointer', async () => {
      const r = await spawnLauncher(launcher, ['validate', fixture('bad-manifest', 'plugin.json')], { cwd: work });
      expect(r.code).to.equal(1);
      for (const pointer of ['/id', '/version', '/runtime', '/colour']) expect(r.stdout).to.contain(`✖ ${pointer}:`);
      expect(r.stdout).to.contain('fix:');
    });

    it('validate: names every refused import (built-in, package, outside the folder), even one module deep', async () => {
      const r = await spawnLauncher(launcher, ['validate', fixture('bad-imports')], { cwd: work });
      expect(r.code).to.equal(1);
      expect(r.stdout).to.contain("import 'node:fs' in index.js");
      expect(r.stdout).to.contain("import '../outside.js' in index.js");
      expect(r.stdout).to.contain(`import 'lodash' in ${path.join('lib', 'util.js')}`);
    });

    it('run --once: one good and one broken plugin exits 1 with a ✔ line, a ✖ line and the table', async () => {
      const data = path.join(work, 'data-mixed');
      const r = await spawnLauncher(launcher, ['run', fixture('greeter'), fixture('broken'), '--once', '--data-dir', data], { cwd: work });
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stdout).to.match(/✔ greeter@1\.0\.0 started \(\d+\.\d ms\)/);
      expect(r.stdout).to.match(/✖ broken failed: /);
      expect(r.stdout).to.match(/id\s+version\s+runtime\s+state\s+load ms\s+memory MB/);
      expect(r.stdout).to.match(/greeter\s+1\.0\.0\s+nodejs\s+started/);
      expect(r.stdout).to.match(/broken\s+1\.0\.0\s+nodejs\s+failed/);
    });

    it('run --once: only good plugins (JS and TS) exits 0', async () => {
      const data = path.join(work, 'data-good');
      const r = await spawnLauncher(launcher, ['run', fixture('greeter'), fixture('shouter'), '--once', '--data-dir', data], { cwd: work });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.contain('✔ greeter@1.0.0 started').and.contain('✔ shouter@0.3.1 started');
    });

    it('run: streams plugin events, and SIGTERM closes the host cleanly with exit 0', async () => {
      let sent = false;
      const r = await spawnLauncher(launcher, ['run', fixture('greeter'), '--data-dir', path.join(work, 'data-live')], {
        cwd: work,
        onStdout: (all, pid) => {
          if (!sent && all.includes('press Ctrl-C')) {
            sent = true;
            process.kill(pid, 'SIGTERM');
          }
        },
      });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.contain('[greeter] greeter.ready');
      expect(r.stdout).to.contain('plugin.stopped greeter').and.contain('closed');
    });
  });

  describe('main() in-process', () => {
    it('keygen, sign, validate --trusted-key: shows the signature verified', async () => {
      const keys = path.join(work, 'keys-sign');
      const plugin = path.join(work, 'signed-greeter');
      await cp(fixture('greeter'), plugin, { recursive: true });

      const keygen = await cli('keygen', '--out', keys);
      expect(keygen.code, keygen.stderr).to.equal(0);
      const keyId = /key id ([0-9a-f]{16})/.exec(keygen.stdout)?.[1];
      expect(keyId).to.be.a('string');
      if (process.platform !== 'win32') expect((await stat(path.join(keys, 'logomesh-private.pem'))).mode & 0o777).to.equal(0o600);

      const sign = await cli('sign', plugin, '--key', path.join(keys, 'logomesh-private.pem'));
      expect(sign.code, sign.stderr).to.equal(0);
      expect(sign.stdout).to.contain(keyId!).and.contain('2 files hashed');

      const validate = await cli('validate', plugin, '--trusted-key', path.join(keys, 'logomesh-public.pem'));
      expect(validate.code, validate.stdout).to.equal(0);
      expect(validate.stdout).to.contain(`signature verified (key ${keyId})`);

      await writeFile(path.join(plugin, 'greeting.js'), 'export const greeting = () => "tampered";\n');
      const tampered = await cli('validate', plugin, '--trusted-key', path.join(keys, 'logomesh-public.pem'));
      expect(tampered.code).to.equal(1);
      expect(tampered.stdout).to.contain('greeting.js');
    });

    it('keygen refuses to overwrite existing keys', async () => {
      const keys = path.join(work, 'keys-twice');
      expect((await cli('keygen', '--out', keys)).code).to.equal(0);
      const before = await readFile(path.join(keys, 'logomesh-private.pem'), 'utf8');
      const again = await cli('keygen', '--out', keys);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.contain('error LOGOMESH_ERR_INVALID_ARGUMENT').and.contain('logomesh-private.pem');
      expect(await readFile(path.join(keys, 'logomesh-private.pem'), 'utf8')).to.equal(before);
    });

    it('list shows both versions of one id', async () => {
      const r = await cli('list', fixture('versions'));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/multi\s+2\.0\.0, 1\.0\.0\s+nodejs/);
    });

    it('list exits 1 and names an invalid plugin with its first problem', async () => {
      const r = await cli('list', fixture('greeter'), fixture('bad-manifest'));
      expect(r.code).to.equal(1);
      expect(r.stdout).to.match(/greeter\s+1\.0\.0/);
      expect(r.stdout).to.match(/✖ .*bad-manifest.*plugin\.json: \/\w+/);
    });

    it('validate --json: a machine-readable result', async () => {
      const r = await cli('validate', fixture('bad-imports'), '--json');
      expect(r.code).to.equal(1);
      const result = JSON.parse(r.stdout);
      expect(result.valid).to.equal(false);
      expect(result.importProblems.map((p: { specifier: string }) => p.specifier)).to.have.members(['node:fs', '../outside.js', 'lodash']);
      expect(result.importProblems.every((p: { code: string }) => p.code === 'LOGOMESH_ERR_IMPORT_REFUSED')).to.equal(true);
    });

    it('run --once --json: one JSON document with every plugin', async () => {
      const r = await cli('run', fixture('greeter'), fixture('broken'), '--once', '--json', '--log-level', 'silent', '--data-dir', path.join(work, 'data-json'));
      expect(r.code).to.equal(1);
      const loaded = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      expect(loaded.started).to.deep.equal(['greeter']);
      expect(loaded.failed).to.deep.equal(['broken']);
      expect(loaded.plugins.find((p: { id: string }) => p.id === 'broken').error.code).to.match(/^LOGOMESH_ERR_/);
    });

    it('run: a folder that is not there is reported as failed', async () => {
      const r = await cli('run', path.join(work, 'no-such-folder'), '--once', '--log-level', 'silent', '--data-dir', path.join(work, 'data-none'));
      expect(r.code).to.equal(1);
      expect(r.stdout).to.contain('✖').and.contain('no-such-folder');
    });

    it('run without --once streams until its stop signal, then closes with exit 0', async () => {
      const stop = new AbortController();
      let stdout = '';
      const code = await main(['run', fixture('greeter'), '--log-level', 'silent', '--data-dir', path.join(work, 'data-abort')], {
        stdout: (s) => {
          stdout += s;
          if (s.includes('press Ctrl-C')) stop.abort();
        },
        stderr: () => {},
        signal: stop.signal,
      });
      expect(code).to.equal(0);
      expect(stdout).to.contain('[greeter] greeter.ready').and.contain('plugin.stopped greeter').and.contain('closed');
    });

    it('a missing target is a PluginHostError: `error <code>: …` and exit 1', async () => {
      const r = await cli('validate', path.join(work, 'nothing-here'));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^error LOGOMESH_ERR_INVALID_ARGUMENT: /);
    });

    it('usage errors return a non-zero code instead of exiting', async () => {
      expect((await cli('no-such-command')).code).to.not.equal(0);
      expect((await cli('sign', fixture('greeter'))).stderr).to.contain('--key');
      const version = await cli('--version');
      expect(version.code).to.equal(0);
      expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);
    });
  });
});
