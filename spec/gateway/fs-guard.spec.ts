import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { InvalidArgumentError, PermissionDeniedError, ResourceLimitError } from '../../lib/errors.js';
import { FsGuard, type FsGuardOptions } from '../../lib/gateway/fs-guard.js';

type ErrorClass<E> = abstract new (...args: never[]) => E;
async function rejection<E extends Error>(p: Promise<unknown>, cls: ErrorClass<E>): Promise<E> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(cls);
    return e as E;
  }
  return expect.fail(`expected a ${cls.name}`);
}
const fdCount = () => readdirSync('/proc/self/fd').length;

// Attack specs: every test runs against real files; the canary lies outside every root and
// afterEach proves it was neither modified nor joined by anything new.
describe('FsGuard', () => {
  const CANARY = `CANARY-${'s3cr3t'.repeat(9)}-must-never-leave-the-host`;
  let box: string;
  let outside: string;
  let data: string;
  let guard: FsGuard;
  let canaryMtime: number;

  const needed = (p: string, access: string) => `fs:${access}:${p}`;
  function make(over: Partial<FsGuardOptions> = {}): FsGuard {
    return new FsGuard({
      pluginId: 'attacker',
      roots: [
        { path: data, level: 'readwrite' },
        { path: join(box, 'ro'), level: 'read' },
        { path: join(box, 'wo'), level: 'write' },
        { path: join(box, 'ex'), level: 'execute' },
      ],
      baseDir: data,
      maxFileHandles: 8,
      needed,
      ...over,
    });
  }
  const inData = (...p: string[]) => join(data, ...p);
  const outsideListing = () => readdirSync(outside).sort();

  beforeEach(async () => {
    box = await mkdtemp(join(tmpdir(), 'fs-guard-'));
    outside = join(box, 'outside');
    data = join(box, 'data');
    for (const d of [outside, data, join(box, 'ro'), join(box, 'wo'), join(box, 'ex'), join(box, 'data-evil')]) await mkdir(d);
    await writeFile(join(outside, 'canary.txt'), CANARY);
    await writeFile(join(outside, 'file.txt'), CANARY);
    await writeFile(join(box, 'data-evil', 'secret.txt'), CANARY);
    await writeFile(join(box, 'ro', 'file.txt'), 'read me');
    await writeFile(join(box, 'ex', 'tool.sh'), 'echo');
    await symlink(join(outside, 'canary.txt'), inData('link-file'));
    await symlink(outside, inData('link-dir'));
    await symlink(join(outside, 'new.txt'), inData('dangling'));
    canaryMtime = statSync(join(outside, 'canary.txt')).mtimeMs;
    guard = make();
  });

  afterEach(async () => {
    await guard.closeAll();
    expect(readFileSync(join(outside, 'canary.txt'), 'utf8')).to.equal(CANARY);
    expect(readFileSync(join(outside, 'file.txt'), 'utf8')).to.equal(CANARY);
    expect(statSync(join(outside, 'canary.txt')).mtimeMs).to.equal(canaryMtime);
    expect(outsideListing()).to.deep.equal(['canary.txt', 'file.txt']);
    await rm(box, { recursive: true, force: true });
  });

  function neverCanary(value: unknown) {
    expect(JSON.stringify(value)).not.to.include('s3cr3t');
  }

  describe('plain use', () => {
    it('writes, appends, reads, lists and stats relative to baseDir, in utf8 and base64', async () => {
      await guard.writeFile('notes.txt', 'héllo');
      await guard.appendFile('notes.txt', Buffer.from(' world').toString('base64'), 'base64');
      expect(await guard.readFile('notes.txt')).to.equal('héllo world');
      expect(await guard.readFile(inData('notes.txt'), 'base64')).to.equal(Buffer.from('héllo world').toString('base64'));
      expect(await readFile(inData('notes.txt'), 'utf8')).to.equal('héllo world');
      const listing = await guard.readdir('.');
      expect(listing).to.deep.include({ name: 'notes.txt', type: 'file' });
      expect(listing).to.deep.include({ name: 'link-dir', type: 'symlink' });
      const st = await guard.stat('notes.txt');
      expect(st).to.include({ size: 12, type: 'file' });
      expect(st.mtimeMs).to.be.a('number');
      expect(await guard.readFile(join(box, 'ro', 'file.txt'))).to.equal('read me');
      expect(guard.stats()).to.deep.equal({ filesOpen: 0, bytesRead: 12 + 12 + 7, bytesWritten: 12 });
    });

    it('makes and removes trees', async () => {
      await guard.mkdir('a/b/c', { recursive: true });
      await guard.mkdir('a/b/c', { recursive: true });
      await rejection(guard.mkdir('a'), Error);
      await guard.writeFile('a/b/c/f.txt', 'x');
      expect((await guard.stat('a/b')).type).to.equal('directory');
      await rejection(guard.rm('a'), Error);
      await guard.rm('a/b/c/f.txt');
      await guard.rm('a', { recursive: true });
      expect(existsSync(inData('a'))).to.equal(false);
      await guard.mkdir('empty');
      await guard.rm('empty');
      expect(existsSync(inData('empty'))).to.equal(false);
    });

    it('reads and writes through handles numbered per guard, at positions', async () => {
      const w = await guard.open('h.txt', 'w');
      expect(w).to.equal(1);
      expect(await guard.write(w, 'abcdef')).to.equal(6);
      expect(await guard.write(w, 'XY', 2)).to.equal(2);
      const r = await guard.open('h.txt', 'r');
      expect(r).to.equal(2);
      expect(guard.stats().filesOpen).to.equal(2);
      expect(await guard.read(r, 3)).to.deep.equal({ data: 'abX', bytesRead: 3 });
      expect(await guard.read(r, 10, 4, 'base64')).to.deep.equal({ data: Buffer.from('ef').toString('base64'), bytesRead: 2 });
      await guard.close(w);
      await guard.close(r);
      const a = await guard.open('h.txt', 'a');
      await guard.write(a, '!');
      const rw = await guard.open('h.txt', 'r+');
      expect([a, rw]).to.deep.equal([3, 4]);
      await guard.write(rw, 'A', 0);
      expect((await guard.read(rw, 10, 0)).data).to.equal('AbXYef!');
      await rejection(guard.open('h.txt', 'wx'), Error);
      await guard.open('h.txt', 'w');
      expect(await guard.readFile('h.txt')).to.equal('');
      await guard.closeAll();
      expect(guard.stats().filesOpen).to.equal(0);
    });

    it('creates baseDir on first write only', async () => {
      const home = join(box, 'homes', 'p1');
      guard = make({ baseDir: home, roots: [{ path: home, level: 'readwrite' }] });
      await rejection(guard.readFile('x.txt'), Error);
      expect(existsSync(home)).to.equal(false);
      await guard.writeFile('x.txt', 'first');
      expect(readFileSync(join(home, 'x.txt'), 'utf8')).to.equal('first');
    });
  });

  describe('attack: path canonicalisation', () => {
    it('refuses non-strings, empty paths and NUL bytes with InvalidArgumentError', async () => {
      const loose = guard as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      const ops: [string, unknown[]][] = [
        ['readFile', []], ['writeFile', ['x']], ['appendFile', ['x']], ['readdir', []],
        ['stat', []], ['mkdir', []], ['rm', []], ['open', ['r']],
      ];
      for (const [op, rest] of ops) {
        for (const bad of [42, null, undefined, {}, ['a'], '', 'ok\0../../outside/canary.txt', 'x'.repeat(5000)]) {
          await rejection(loose[op](bad, ...rest), InvalidArgumentError);
        }
      }
      await rejection(loose.writeFile('x.txt', { toString: () => 'x' }), InvalidArgumentError);
      await rejection(loose.readFile('x.txt', 'latin1'), InvalidArgumentError);
      await rejection(loose.open('x.txt', 'w+'), InvalidArgumentError);
      await rejection(loose.mkdir('x', { recursive: 'yes' }), InvalidArgumentError);
      expect(existsSync(inData('x.txt'))).to.equal(false);
    });

    it('refuses ../ escapes and absolute paths outside every root, naming the permission needed', async () => {
      const escapes = ['../outside/canary.txt', '../'.repeat(12) + outside.slice(1) + '/canary.txt', join(outside, 'canary.txt'), 'sub/../../outside/canary.txt', '/etc/passwd'];
      for (const p of escapes) {
        const e = await rejection(guard.readFile(p), PermissionDeniedError);
        expect(e).to.include({ operation: 'fs.readFile', target: p, code: PermissionDeniedError.code });
        await rejection(guard.writeFile(p, 'pwned'), PermissionDeniedError);
        await rejection(guard.appendFile(p, 'pwned'), PermissionDeniedError);
        await rejection(guard.stat(p), PermissionDeniedError);
        await rejection(guard.open(p, 'r+'), PermissionDeniedError);
        await rejection(guard.rm(p), PermissionDeniedError);
      }
      const e = await rejection(guard.readdir('..'), PermissionDeniedError);
      expect(e.requiredPermission).to.equal(`fs:read:${box}`);
      await rejection(guard.mkdir('../outside/made', { recursive: true }), PermissionDeniedError);
    });

    it('treats a sibling with the same prefix (data vs data-evil) as outside', async () => {
      const p = join(box, 'data-evil', 'secret.txt');
      neverCanary(await Promise.allSettled([guard.readFile(p), guard.readFile('../data-evil/secret.txt'), guard.readdir(data + '-evil')]));
      await rejection(guard.readFile(p), PermissionDeniedError);
      await rejection(guard.writeFile(p, 'x'), PermissionDeniedError);
      expect(readFileSync(p, 'utf8')).to.equal(CANARY);
    });

    it('decodes nothing: %2e%2e and file: URLs are literal names that stay inside', async () => {
      await rejection(guard.readFile('%2e%2e/outside/canary.txt'), Error);
      await rejection(guard.readFile('..%2foutside%2fcanary.txt'), Error);
      await guard.mkdir('%2e%2e/outside', { recursive: true });
      await guard.writeFile('%2e%2e/outside/canary.txt', 'inside');
      expect(readFileSync(inData('%2e%2e', 'outside', 'canary.txt'), 'utf8')).to.equal('inside');
      expect(await guard.readFile('%2e%2e/outside/canary.txt')).to.equal('inside');
      await guard.writeFile('file:%2F%2F%2Foutside%2Fcanary.txt', 'literal');
      expect(readFileSync(inData('file:%2F%2F%2Foutside%2Fcanary.txt'), 'utf8')).to.equal('literal');
    });

    it('treats backslashes as ordinary characters', async () => {
      await rejection(guard.readFile('..\\outside\\canary.txt'), Error);
      await guard.writeFile('..\\outside\\canary.txt', 'inside');
      expect(readFileSync(inData('..\\outside\\canary.txt'), 'utf8')).to.equal('inside');
      expect((await guard.readdir('.')).map((e) => e.name)).to.include('..\\outside\\canary.txt');
    });
  });

  describe('attack: symlinks and links', () => {
    it('never follows a symlinked file: read, write, append and every open flag are refused', async () => {
      await rejection(guard.readFile('link-file'), PermissionDeniedError);
      await rejection(guard.writeFile('link-file', 'pwned'), PermissionDeniedError);
      await rejection(guard.appendFile('link-file', 'pwned'), PermissionDeniedError);
      for (const flags of ['r', 'r+', 'w', 'a'] as const) await rejection(guard.open('link-file', flags), PermissionDeniedError);
      await rejection(guard.open('link-file', 'wx'), Error);
      expect(guard.stats().filesOpen).to.equal(0);
    });

    it('stat reports a symlink as a symlink and reveals nothing of its target', async () => {
      const st = await guard.stat('link-file');
      expect(st.type).to.equal('symlink');
      expect(st.size).to.equal((await readlink(inData('link-file'))).length);
      expect(st.size).not.to.equal(CANARY.length);
      await rejection(guard.stat('link-dir/canary.txt'), PermissionDeniedError);
    });

    it('refuses to create through a dangling symlink', async () => {
      await rejection(guard.writeFile('dangling', 'pwned'), PermissionDeniedError);
      await rejection(guard.open('dangling', 'a'), PermissionDeniedError);
      await rejection(guard.open('dangling', 'wx'), Error);
      expect(existsSync(join(outside, 'new.txt'))).to.equal(false);
    });

    it('refuses every operation through a symlinked directory that leaves the roots', async () => {
      await rejection(guard.readdir('link-dir'), PermissionDeniedError);
      await rejection(guard.readdir('link-dir/'), PermissionDeniedError);
      await rejection(guard.readFile('link-dir/canary.txt'), PermissionDeniedError);
      await rejection(guard.writeFile('link-dir/canary.txt', 'pwned'), PermissionDeniedError);
      await rejection(guard.writeFile('link-dir/new.txt', 'pwned'), PermissionDeniedError);
      await rejection(guard.open('link-dir/new.txt', 'wx'), PermissionDeniedError);
      await rejection(guard.mkdir('link-dir/made'), PermissionDeniedError);
      await rejection(guard.mkdir('link-dir/made/deeper', { recursive: true }), PermissionDeniedError);
      await rejection(guard.rm('link-dir/canary.txt'), PermissionDeniedError);
      await rejection(guard.rm('link-dir/canary.txt', { recursive: true }), PermissionDeniedError);
      await guard.mkdir('real');
      await symlink(join(data, 'link-dir'), inData('real', 'chain'));
      await rejection(guard.readFile('real/chain/canary.txt'), PermissionDeniedError);
    });

    it('follows a directory symlink that stays inside the roots, at the level of where it lands', async () => {
      await symlink(join(box, 'ro'), inData('to-ro'));
      expect(await guard.readFile('to-ro/file.txt')).to.equal('read me');
      const e = await rejection(guard.writeFile('to-ro/file.txt', 'x'), PermissionDeniedError);
      expect(e.requiredPermission).to.equal(`fs:write:${inData('to-ro', 'file.txt')}`);
    });

    it('rm removes a symlink, never its target, also inside a recursive removal', async () => {
      await guard.rm('link-file');
      expect(existsSync(inData('link-file'))).to.equal(false);
      await guard.mkdir('tree/sub', { recursive: true });
      await symlink(outside, inData('tree', 'sub', 'out'));
      await symlink(join(outside, 'canary.txt'), inData('tree', 'c'));
      await guard.rm('tree', { recursive: true });
      await guard.rm('link-dir', { recursive: true });
      expect(existsSync(inData('tree'))).to.equal(false);
      expect(existsSync(inData('link-dir'))).to.equal(false);
    });

    it('rm refuses to remove a root itself', async () => {
      for (const p of ['.', data, data + '/', 'sub/..', join(box, 'wo')]) await rejection(guard.rm(p, { recursive: true }), PermissionDeniedError);
      expect(existsSync(data) && existsSync(join(box, 'wo'))).to.equal(true);
    });

    it('refuses to write a file hard-linked from outside (its other name is invisible to a path check)', async () => {
      linkSync(join(outside, 'canary.txt'), inData('hard'));
      await rejection(guard.writeFile('hard', 'pwned'), PermissionDeniedError);
      await rejection(guard.appendFile('hard', 'pwned'), PermissionDeniedError);
      await rejection(guard.open('hard', 'r+'), PermissionDeniedError);
    });

    it('does not hang on a FIFO inside a root', async () => {
      execFileSync('mkfifo', [inData('fifo')]);
      await rejection(guard.readFile('fifo'), InvalidArgumentError);
      await rejection(guard.open('fifo', 'r'), InvalidArgumentError);
      await rejection(guard.writeFile('fifo', 'x'), Error);
      expect((await guard.stat('fifo')).type).to.equal('other');
      expect(guard.stats().filesOpen).to.equal(0);
    });
  });

  describe('attack: check-then-open race', () => {
    it('a directory swapped for a symlink to outside while the plugin works never reaches the canary', async function () {
      this.timeout(60_000);
      const swap = inData('swap');
      const stash = inData('stash');
      await mkdir(swap);
      await writeFile(join(swap, 'file.txt'), 'inside');
      const flag = new SharedArrayBuffer(8);
      const swapper = new Worker(
        `const { workerData: { swap, stash, outside, flag } } = require('node:worker_threads');
         const fs = require('node:fs');
         const ctl = new Int32Array(flag);
         let swaps = 0;
         while (Atomics.load(ctl, 0) === 0) {
           try { fs.renameSync(swap, stash); fs.symlinkSync(outside, swap); } catch {}
           try { fs.unlinkSync(swap); fs.renameSync(stash, swap); } catch {}
           swaps++;
         }
         try { fs.unlinkSync(swap); } catch {}
         try { fs.renameSync(stash, swap); } catch {}
         Atomics.store(ctl, 1, swaps);`,
        { eval: true, workerData: { swap, stash, outside, flag } },
      );
      const ctl = new Int32Array(flag);
      let denied = 0;
      let succeeded = 0;
      try {
        for (let i = 0; i < 300; i++) {
          const results = await Promise.allSettled([
            guard.readFile('swap/file.txt'),
            guard.writeFile('swap/file.txt', 'inside'),
            guard.appendFile('swap/log.txt', '.'),
            guard.readdir('swap'),
            guard.stat('swap/canary.txt'),
            guard.mkdir('swap/made').then(() => guard.rm('swap/made', { recursive: true })),
            guard.open('swap/file.txt', 'r+').then(async (h) => {
              try {
                return await guard.read(h, 200, 0);
              } finally {
                await guard.close(h);
              }
            }),
          ]);
          neverCanary(results.map((r) => (r.status === 'fulfilled' ? r.value : null)));
          // stat of a name that exists only outside must never succeed.
          expect(results[4].status).to.equal('rejected');
          if (results[3].status === 'fulfilled') expect(results[3].value.map((e) => e.name)).not.to.include('canary.txt');
          for (const r of results) {
            if (r.status === 'fulfilled') succeeded++;
            else if (r.reason instanceof PermissionDeniedError) denied++;
            else expect(r.reason.code, String(r.reason)).to.be.a('string');
          }
        }
      } finally {
        Atomics.store(ctl, 0, 1);
        await new Promise((resolve) => swapper.once('exit', resolve));
      }
      expect(Atomics.load(ctl, 1)).to.be.greaterThan(0);
      expect(denied, 'the race was exercised').to.be.greaterThan(0);
      expect(succeeded).to.be.greaterThan(0);
      expect(guard.stats().filesOpen).to.equal(0);
      expect(lstatSync(swap).isDirectory()).to.equal(true);
    });
  });

  describe('levels', () => {
    it("'read' allows reading only", async () => {
      const ro = join(box, 'ro');
      expect(await guard.readFile(join(ro, 'file.txt'))).to.equal('read me');
      expect(await guard.readdir(ro)).to.deep.equal([{ name: 'file.txt', type: 'file' }]);
      expect((await guard.stat(ro)).type).to.equal('directory');
      await guard.close(await guard.open(join(ro, 'file.txt'), 'r'));
      for (const attempt of [
        guard.writeFile(join(ro, 'file.txt'), 'x'),
        guard.appendFile(join(ro, 'new.txt'), 'x'),
        guard.mkdir(join(ro, 'd')),
        guard.rm(join(ro, 'file.txt')),
        guard.open(join(ro, 'file.txt'), 'a'),
      ]) {
        const e = await rejection(attempt, PermissionDeniedError);
        expect(e.requiredPermission).to.match(/^fs:write:/);
      }
      const e = await rejection(guard.open(join(ro, 'file.txt'), 'r+'), PermissionDeniedError);
      expect(e).to.include({ operation: 'fs.open', requiredPermission: `fs:write:${join(ro, 'file.txt')}` });
      expect(readFileSync(join(ro, 'file.txt'), 'utf8')).to.equal('read me');
    });

    it("'write' allows writing only", async () => {
      const wo = join(box, 'wo');
      await guard.writeFile(join(wo, 'out.txt'), 'written');
      await guard.mkdir(join(wo, 'd'));
      await guard.rm(join(wo, 'd'));
      await guard.close(await guard.open(join(wo, 'out.txt'), 'a'));
      for (const attempt of [guard.readFile(join(wo, 'out.txt')), guard.readdir(wo), guard.stat(join(wo, 'out.txt')), guard.open(join(wo, 'out.txt'), 'r')]) {
        const e = await rejection(attempt, PermissionDeniedError);
        expect(e.requiredPermission).to.match(/^fs:read:/);
      }
      const e = await rejection(guard.open(join(wo, 'out.txt'), 'r+'), PermissionDeniedError);
      expect(e.requiredPermission).to.equal(`fs:read:${join(wo, 'out.txt')}`);
      expect(readFileSync(join(wo, 'out.txt'), 'utf8')).to.equal('written');
    });

    it("'execute' grants nothing through ctx.fs", async () => {
      await rejection(guard.readFile(join(box, 'ex', 'tool.sh')), PermissionDeniedError);
      await rejection(guard.writeFile(join(box, 'ex', 'tool.sh'), 'rm -rf /'), PermissionDeniedError);
      expect(readFileSync(join(box, 'ex', 'tool.sh'), 'utf8')).to.equal('echo');
    });
  });

  describe('limits', () => {
    it('500 concurrent readFile calls with maxFileHandles 4: some refused, none leak', async () => {
      guard = make({ maxFileHandles: 4 });
      await writeFile(inData('f.txt'), 'payload');
      const before = fdCount();
      const results = await Promise.allSettled(Array.from({ length: 500 }, () => guard.readFile('f.txt')));
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused.length).to.be.greaterThan(0);
      for (const r of refused) expect((r as PromiseRejectedResult).reason).to.be.instanceOf(ResourceLimitError).and.include({ resource: 'fileHandles' });
      expect(results.some((r) => r.status === 'fulfilled' && r.value === 'payload')).to.equal(true);
      expect(guard.stats().filesOpen).to.equal(0);
      expect(fdCount()).to.equal(before);
    });

    it('open counts against maxFileHandles until closed', async () => {
      guard = make({ maxFileHandles: 2 });
      const a = await guard.open('a.txt', 'w');
      await guard.open('b.txt', 'w');
      const e = await rejection(guard.open('c.txt', 'w'), ResourceLimitError);
      expect(e).to.include({ resource: 'fileHandles', code: ResourceLimitError.code });
      await rejection(guard.readFile('a.txt'), ResourceLimitError);
      await guard.close(a);
      await guard.close(await guard.open('c.txt', 'w'));
      expect(guard.stats().filesOpen).to.equal(1);
    });

    it('enforces the write quota before writing anything', async () => {
      guard = make({ writeQuotaBytes: 10 });
      await guard.writeFile('q.txt', '12345678');
      const e = await rejection(guard.writeFile('q.txt', '12345'), ResourceLimitError);
      expect(e.resource).to.equal('writeQuotaBytes');
      expect(readFileSync(inData('q.txt'), 'utf8')).to.equal('12345678');
      const h = await guard.open('q.txt', 'a');
      await rejection(guard.write(h, 'abc'), ResourceLimitError);
      await rejection(guard.appendFile('q.txt', 'abc'), ResourceLimitError);
      expect(await guard.write(h, 'ab')).to.equal(2);
      const burst = await Promise.allSettled([guard.appendFile('q.txt', 'x'), guard.write(h, 'y')]);
      expect(burst.every((r) => r.status === 'rejected')).to.equal(true);
      expect(guard.stats().bytesWritten).to.equal(10);
      expect(readFileSync(inData('q.txt'), 'utf8')).to.equal('12345678ab');
    });

    it('caps single reads at maxReadBytes', async () => {
      guard = make({ maxReadBytes: 16 });
      await writeFile(inData('big.txt'), 'x'.repeat(17));
      await writeFile(inData('ok.txt'), 'y'.repeat(16));
      expect((await rejection(guard.readFile('big.txt'), ResourceLimitError)).resource).to.equal('maxReadBytes');
      expect(await guard.readFile('ok.txt')).to.have.length(16);
      const h = await guard.open('big.txt', 'r');
      await rejection(guard.read(h, 17), ResourceLimitError);
      expect((await guard.read(h, 16)).bytesRead).to.equal(16);
      expect(guard.stats().filesOpen).to.equal(1);
    });
  });

  describe('handles', () => {
    it('refuses unknown, closed, foreign and mistyped handles with InvalidArgumentError', async () => {
      const loose = guard as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      const h = await guard.open('x.txt', 'w');
      const other = make();
      for (const bad of [0, 99, -1, 1.5, '1', null, {}]) await rejection(loose.read(bad, 1), InvalidArgumentError);
      await rejection(other.write(h, 'x'), InvalidArgumentError);
      await rejection(guard.read(h, 1), InvalidArgumentError);
      await rejection(loose.read(h, -1), InvalidArgumentError);
      await rejection(loose.write(h, 'x', -5), InvalidArgumentError);
      await rejection(loose.write(h, 42), InvalidArgumentError);
      await guard.close(h);
      await rejection(guard.write(h, 'x'), InvalidArgumentError);
      await rejection(guard.close(h), InvalidArgumentError);
      expect(await guard.open('x.txt', 'r')).to.equal(h + 1);
    });

    it('closeAll closes every descriptor, including an open racing it, and is idempotent', async () => {
      const before = fdCount();
      const handles = await Promise.all(['a', 'b', 'c'].map((n) => guard.open(`${n}.txt`, 'w')));
      expect(fdCount()).to.equal(before + 3);
      const racing = guard.open('d.txt', 'w');
      await guard.closeAll();
      await rejection(racing, Error);
      await guard.closeAll();
      expect(guard.stats().filesOpen).to.equal(0);
      expect(fdCount()).to.equal(before);
      for (const h of handles) await rejection(guard.write(h, 'x'), InvalidArgumentError);
      await guard.writeFile('after.txt', 'still usable');
    });
  });
});
