import { constants as C, realpathSync, type Dirent, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { posix as path } from 'node:path';
import {
  InvalidArgumentError,
  PermissionDeniedError,
  PluginHostError,
  PluginStateError,
  ResourceLimitError,
} from '../errors.js';

/** How far a root lets a plugin in. `execute` grants nothing through `ctx.fs`. */
export type FileLevel = 'read' | 'write' | 'readwrite' | 'execute';
/** What `stat`/`readdir` report; a symlink is reported as itself, never as its target. */
export type FileType = 'file' | 'directory' | 'symlink' | 'other';
/** How file content crosses the boundary as a string; use `base64` for binary. */
export type FsEncoding = 'utf8' | 'base64';
/** `r` needs read, `w`/`wx`/`a` need write, `r+` needs both. */
export type OpenFlags = 'r' | 'r+' | 'w' | 'wx' | 'a';
type Access = 'read' | 'write';

/** What one plugin's `ctx.fs` may reach; see the {@link FsGuard} example. */
export interface FsGuardOptions {
  pluginId: string;
  /** Absolute roots the plugin may use and at which level (already resolved from its permissions). */
  roots: { path: string; level: FileLevel }[];
  /** Relative paths from the plugin resolve against this (its data folder; created on first write). */
  baseDir: string;
  maxFileHandles: number;
  /** Total bytes the plugin may write over the guard's life (default 100 MiB). */
  writeQuotaBytes?: number;
  /** Largest single read/readFile result (default 8 MiB). */
  maxReadBytes?: number;
  /** How to phrase the permission that would allow an access, for PermissionDeniedError. */
  needed(path: string, access: 'read' | 'write'): string;
}

const PROC_FD = '/proc/self/fd';
const MiB = 1024 * 1024;
const MAX_PATH_CHARS = 4096;
const READ_CHUNK = 64 * 1024;
const READ: readonly Access[] = ['read'];
const WRITE: readonly Access[] = ['write'];
const GRANTS: Record<FileLevel, readonly Access[]> = { read: READ, write: WRITE, readwrite: ['read', 'write'], execute: [] };
// No O_TRUNC: 'w' truncates only after the opened file is verified.
const FLAGS: Record<OpenFlags, { bits: number; access: readonly Access[]; truncate?: true }> = {
  r: { bits: C.O_RDONLY, access: READ },
  'r+': { bits: C.O_RDWR, access: ['read', 'write'] },
  w: { bits: C.O_WRONLY | C.O_CREAT, access: WRITE, truncate: true },
  wx: { bits: C.O_WRONLY | C.O_CREAT | C.O_EXCL, access: WRITE },
  a: { bits: C.O_WRONLY | C.O_CREAT | C.O_APPEND, access: WRITE },
};
// The last component is never followed, and a FIFO must not park a libuv thread forever.
const FILE_BITS = C.O_NOFOLLOW | C.O_NONBLOCK;
const DIR_BITS = C.O_RDONLY | C.O_DIRECTORY;

interface Root { path: string; level: FileLevel; real?: string }
interface OpenFile { fh: FileHandle; readable: boolean; writable: boolean }
/** A plugin path as given, made absolute (`abs`, what permissions talk about). */
interface Target { op: string; given: string; abs: string; need: readonly Access[] }
/** A verified parent directory: `at` names the entry through the descriptor, like openat(2). */
interface Entry { dir: FileHandle; at: string; real: string }

const within = (root: string, p: string) => p === root || p.startsWith(root === '/' ? '/' : root + '/');
const typeOf = (s: Stats | Dirent): FileType =>
  s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : s.isDirectory() ? 'directory' : 'other';
const noop = () => {};

/**
 * The file system a plugin sees as `ctx.fs`. Every argument is treated as hostile.
 *
 * Paths are literal (nothing is URL-decoded; `\` is an ordinary character), relative ones
 * resolve against `baseDir`, and a path must lie inside a root granting the access. Then the
 * kernel's answer is checked: the parent directory is opened and its real path (from
 * `/proc/self/fd`) verified, the entry is opened or created *through that descriptor* with
 * O_NOFOLLOW, and the opened file's real path is verified again. So directory symlinks are
 * followed only when they resolve inside a root at the right level, the last component is
 * never followed (`stat` reports a symlink as `'symlink'`, `rm` removes the link itself), and
 * swapping a directory for a symlink mid-call cannot redirect anything outside.
 * Linux only (needs `/proc`); without it every call fails closed.
 *
 * @example
 * const fs = new FsGuard({
 *   pluginId: 'indexer', baseDir: '/var/lib/app/plugins/indexer', maxFileHandles: 16,
 *   roots: [{ path: '/var/lib/app/plugins/indexer', level: 'readwrite' }, { path: '/srv/docs', level: 'read' }],
 *   needed: (p, access) => `"fs:${access}:${p}"`,
 * });
 * await fs.writeFile('state.json', '{}');
 * const text = await fs.readFile('/srv/docs/readme.md');
 * await fs.closeAll();
 */
export class FsGuard {
  private readonly pluginId: string;
  private readonly roots: Root[];
  private readonly baseDir: string;
  private readonly maxFileHandles: number;
  private readonly writeQuotaBytes: number;
  private readonly maxReadBytes: number;
  private readonly needed: FsGuardOptions['needed'];
  private readonly handles = new Map<number, OpenFile>();
  private readonly inFlight = new Set<Promise<void>>();
  private nextHandle = 1;
  private slots = 0;
  private epoch = 0;
  private baseReady = false;
  private bytesRead = 0;
  private bytesWritten = 0;
  private writeReserved = 0;

  constructor(options: FsGuardOptions) {
    const { pluginId, roots, baseDir, maxFileHandles, writeQuotaBytes = 100 * MiB, maxReadBytes = 8 * MiB } = options;
    const count = (n: number) => Number.isSafeInteger(n) && n >= 0;
    if (!path.isAbsolute(baseDir) || !count(maxFileHandles) || !count(writeQuotaBytes) || !count(maxReadBytes)) {
      throw new InvalidArgumentError('FsGuard needs an absolute baseDir and non-negative integer limits.', { pluginId });
    }
    for (const r of roots) {
      if (!path.isAbsolute(r.path) || !Object.hasOwn(GRANTS, r.level)) {
        throw new InvalidArgumentError(`FsGuard root ${r.path} must be absolute with a known level.`, { pluginId });
      }
    }
    this.pluginId = pluginId;
    this.roots = roots.map((r) => ({ path: path.resolve(r.path), level: r.level }));
    this.baseDir = path.resolve(baseDir);
    this.maxFileHandles = maxFileHandles;
    this.writeQuotaBytes = writeQuotaBytes;
    this.maxReadBytes = maxReadBytes;
    this.needed = options.needed;
  }

  async readFile(p: string, encoding?: FsEncoding): Promise<string> {
    const enc = this.encoding(encoding);
    return this.run(this.target('readFile', p, READ), async (t, canon) => {
      const fh = await this.openFile(t, canon, FLAGS.r);
      try {
        return (await this.readAll(t, fh)).toString(enc);
      } finally {
        await fh.close();
      }
    });
  }

  async writeFile(p: string, data: string, encoding?: FsEncoding): Promise<void> {
    return this.put('writeFile', p, data, encoding, FLAGS.w);
  }

  async appendFile(p: string, data: string, encoding?: FsEncoding): Promise<void> {
    return this.put('appendFile', p, data, encoding, FLAGS.a);
  }

  async readdir(p: string): Promise<{ name: string; type: FileType }[]> {
    return this.run(this.target('readdir', p, READ), async (t, canon) => {
      const dir = await this.openDir(t, canon);
      try {
        const entries = await fsp.readdir(`${PROC_FD}/${dir.fd}`, { withFileTypes: true });
        return entries.map((e) => ({ name: e.name, type: typeOf(e) }));
      } finally {
        await dir.close();
      }
    });
  }

  /** lstat semantics: a symlink is reported as `'symlink'` and never followed. */
  async stat(p: string): Promise<{ size: number; type: FileType; mtimeMs: number }> {
    return this.run(this.target('stat', p, READ), async (t, canon) => {
      const st = await this.atEntry(t, canon, (e) => fsp.lstat(e.at));
      return { size: st.size, type: typeOf(st), mtimeMs: st.mtimeMs };
    });
  }

  async mkdir(p: string, options?: { recursive?: boolean }): Promise<void> {
    const recursive = this.recursive('mkdir', options);
    return this.run(this.target('mkdir', p, WRITE), async (t, canon) => {
      if (!recursive) return this.makeDir(t, canon, 'never');
      // One component at a time from the root, each through a freshly verified parent.
      const start = this.roots.map((r) => this.realRoot(r)).filter((r) => within(r, canon)).sort((a, b) => b.length - a.length)[0] ?? canon;
      let cur = start;
      const parts = path.relative(start, canon).split('/').filter(Boolean);
      if (parts.length === 0) return this.makeDir(t, canon, 'directory');
      // An existing symlink on the way is walked like any directory component: the next
      // step's parent check decides whether it lands inside.
      for (const [i, part] of parts.entries()) {
        await this.makeDir(t, (cur = path.join(cur, part)), i === parts.length - 1 ? 'directory' : 'directoryOrLink');
      }
    });
  }

  /**
   * Removes files, symlinks (the link, never its target) and empty directories; with
   * `recursive`, whole trees. A root is never removed.
   */
  async rm(p: string, options?: { recursive?: boolean }): Promise<void> {
    const recursive = this.recursive('rm', options);
    const t = this.target('rm', p, WRITE);
    if (this.roots.some((r) => r.path === t.abs)) throw this.denied(t);
    return this.run(t, (t, canon) => this.remove(t, canon, recursive));
  }

  /** Opens a regular file and returns a handle id local to this guard (1, 2, 3…). */
  async open(p: string, flags: OpenFlags): Promise<number> {
    if (typeof flags !== 'string' || !Object.hasOwn(FLAGS, flags)) {
      throw new InvalidArgumentError(`fs.open flags must be one of ${Object.keys(FLAGS).join(', ')}.`, { pluginId: this.pluginId });
    }
    const spec = FLAGS[flags];
    const epoch = this.epoch;
    return this.run(this.target('open', p, spec.access), async (t, canon, keepSlot) => {
      const fh = await this.openFile(t, canon, spec);
      if (epoch !== this.epoch) {
        // closeAll ran while this was opening: the plugin is gone, so is the file.
        await fh.close();
        throw new PluginStateError(this.pluginId, 'stopped', 'open files for');
      }
      keepSlot();
      const id = this.nextHandle++;
      this.handles.set(id, { fh, readable: spec.access.includes('read'), writable: spec.access.includes('write') });
      return id;
    });
  }

  async read(handle: number, length: number, position?: number, encoding?: FsEncoding): Promise<{ data: string; bytesRead: number }> {
    const h = this.handle('read', handle, 'readable');
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new InvalidArgumentError('fs.read length must be a non-negative integer.', { pluginId: this.pluginId });
    }
    if (length > this.maxReadBytes) throw this.readLimit(`${length} bytes`);
    const pos = this.position(position);
    const enc = this.encoding(encoding);
    return this.mapErrors('read', `#${handle}`, async () => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await h.fh.read(buf, 0, length, pos);
      this.bytesRead += bytesRead;
      return { data: buf.toString(enc, 0, bytesRead), bytesRead };
    });
  }

  async write(handle: number, data: string, position?: number, encoding?: FsEncoding): Promise<number> {
    const h = this.handle('write', handle, 'writable');
    const pos = this.position(position);
    const buf = this.encode('write', data, encoding);
    return this.mapErrors('write', `#${handle}`, () => this.writeAll(h.fh, buf, pos));
  }

  async close(handle: number): Promise<void> {
    const h = this.handle('close', handle);
    this.handles.delete(handle);
    await this.closeFile(h);
  }

  /** Closes every handle and waits for calls in flight; for plugin stop/crash. Idempotent. */
  async closeAll(): Promise<void> {
    this.epoch++;
    const open = [...this.handles.values()];
    this.handles.clear();
    // Settled, not all: one handle that fails to close must not leave the others open.
    await Promise.allSettled(open.map((h) => this.closeFile(h)));
    await Promise.allSettled([...this.inFlight]);
  }

  /** `filesOpen` counts handles plus calls in flight (each holds one slot of `maxFileHandles`). */
  stats(): { filesOpen: number; bytesRead: number; bytesWritten: number } {
    return { filesOpen: this.slots, bytesRead: this.bytesRead, bytesWritten: this.bytesWritten };
  }

  private async put(op: string, p: string, data: string, encoding: FsEncoding | undefined, spec: (typeof FLAGS)[OpenFlags]) {
    const buf = this.encode(op, data, encoding);
    const t = this.target(op, p, WRITE);
    this.reserve(buf.length);
    try {
      await this.run(t, async (t, canon) => {
        const fh = await this.openFile(t, canon, spec);
        try {
          await this.writeAll(fh, buf, null, false);
        } finally {
          await fh.close();
        }
      });
    } finally {
      this.writeReserved -= buf.length;
    }
  }

  /** Lexical check: inside a root granting `need`, before the file system is touched. */
  private target(op: string, given: unknown, need: readonly Access[]): Target {
    if (typeof given !== 'string' || given === '' || given.length > MAX_PATH_CHARS || given.includes('\0')) {
      throw new InvalidArgumentError(`fs.${op} needs a non-empty path string without NUL bytes.`, { pluginId: this.pluginId });
    }
    const t = { op, given, abs: path.resolve(this.baseDir, given), need };
    this.demand(t, this.granted(t.abs, false));
    return t;
  }

  /**
   * Runs one call holding one handle slot (taken synchronously, so a burst cannot overshoot),
   * on the target rebased onto the roots' real paths. Open keeps its slot for the handle.
   */
  private run<T>(t: Target, fn: (t: Target, canon: string, keepSlot: () => void) => Promise<T>): Promise<T> {
    if (this.slots >= this.maxFileHandles) {
      throw new ResourceLimitError(
        this.pluginId,
        'fileHandles',
        `Plugin '${this.pluginId}' already uses ${this.slots} file handles (limit ${this.maxFileHandles}); ` +
          `close files it no longer needs or raise maxFileHandles.`,
      );
    }
    this.slots++;
    let kept = false;
    const work = this.mapErrors(t.op, t.given, async () => {
      try {
        if (t.need.includes('write') && within(this.baseDir, t.abs)) await this.ensureBaseDir();
        return await fn(t, this.rebase(t.abs), () => (kept = true));
      } catch (e) {
        throw e instanceof Error && (e as NodeJS.ErrnoException).code === 'ELOOP' ? this.denied(t) : e;
      } finally {
        if (!kept) this.slots--;
      }
    });
    const settled = work.then(noop, noop);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return work;
  }

  /** Opens the parent of `canon`, checks where `parent/name` really is, and calls `fn` on it. */
  private async atEntry<T>(t: Target, canon: string, fn: (e: Entry) => Promise<T>): Promise<T> {
    const name = path.basename(canon);
    const dir = await fsp.open(path.dirname(canon), DIR_BITS);
    try {
      const real = path.join(await fsp.readlink(`${PROC_FD}/${dir.fd}`), name);
      this.demand(t, this.granted(real, true));
      return await fn({ dir, at: `${PROC_FD}/${dir.fd}/${name}`, real });
    } finally {
      await dir.close();
    }
  }

  /** Opens the entry itself through its verified parent, then verifies the opened descriptor too. */
  private async openAt(t: Target, canon: string, bits: number, mode?: number): Promise<FileHandle> {
    const fh = await this.atEntry(t, canon, (e) =>
      fsp.open(e.at, bits, mode).catch(async (err) => {
        // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR, not ELOOP.
        const link = (err as NodeJS.ErrnoException).code === 'ENOTDIR' && (await fsp.lstat(e.at).catch(() => null))?.isSymbolicLink();
        throw link ? this.denied(t) : err;
      }),
    );
    try {
      this.demand(t, this.granted(await fsp.readlink(`${PROC_FD}/${fh.fd}`), true));
      return fh;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private openDir(t: Target, canon: string): Promise<FileHandle> {
    return this.openAt(t, canon, DIR_BITS | C.O_NOFOLLOW);
  }

  private async openFile(t: Target, canon: string, spec: (typeof FLAGS)[OpenFlags]): Promise<FileHandle> {
    const fh = await this.openAt(t, canon, spec.bits | FILE_BITS, 0o666);
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      if (!st.isFile()) throw new InvalidArgumentError(`fs.${t.op}: '${t.given}' is not a regular file.`, { pluginId: this.pluginId });
      // Another name of a hard-linked file may lie outside every root; no path check can see it.
      if (spec.access.includes('write') && st.nlink > 1) throw this.denied(t);
      if (spec.truncate) await fh.truncate(0);
      return fh;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private async makeDir(t: Target, canon: string, existing: 'never' | 'directory' | 'directoryOrLink'): Promise<void> {
    await this.atEntry(t, canon, async (e) => {
      try {
        await fsp.mkdir(e.at, 0o777);
      } catch (err) {
        if (existing === 'never' || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await fsp.lstat(e.at);
        if (!st.isDirectory() && !(existing === 'directoryOrLink' && st.isSymbolicLink())) throw err;
      }
    });
  }

  /**
   * Removal goes through the verified parent descriptor (unlink/rmdir never follow a link).
   * A tree is emptied one verified directory at a time, holding at most two descriptors, so
   * depth cannot exhaust fds and a subdirectory swapped for a symlink is refused (O_NOFOLLOW).
   */
  private async remove(t: Target, canon: string, recursive: boolean): Promise<void> {
    const notRoot = (e: Entry) => {
      if (this.roots.some((r) => this.realRoot(r) === e.real)) throw this.denied(t);
    };
    const emptyFirst = await this.atEntry(t, canon, async (e) => {
      notRoot(e);
      if (!(await fsp.lstat(e.at)).isDirectory()) await fsp.unlink(e.at);
      else if (recursive) return true;
      else await fsp.rmdir(e.at);
      return false;
    });
    if (!emptyFirst) return;
    const dir = await this.openDir(t, canon);
    let names: string[];
    try {
      names = await fsp.readdir(`${PROC_FD}/${dir.fd}`);
    } finally {
      await dir.close();
    }
    for (const name of names) await this.remove(t, path.join(canon, name), true);
    await this.atEntry(t, canon, (e) => (notRoot(e), fsp.rmdir(e.at)));
  }

  private async readAll(t: Target, fh: FileHandle): Promise<Buffer> {
    if ((await fh.stat()).size > this.maxReadBytes) throw this.readLimit(`'${t.given}'`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await fh.read(Buffer.alloc(READ_CHUNK), 0, READ_CHUNK, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      total += bytesRead;
      this.bytesRead += bytesRead;
      // The file may have grown since fstat.
      if (total > this.maxReadBytes) throw this.readLimit(`'${t.given}'`);
      chunks.push(buffer.subarray(0, bytesRead));
    }
  }

  private async writeAll(fh: FileHandle, buf: Buffer, position: number | null, reserve = true): Promise<number> {
    if (reserve) this.reserve(buf.length);
    try {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await fh.write(buf, done, buf.length - done, position === null ? null : position + done);
        done += bytesWritten;
        this.bytesWritten += bytesWritten;
      }
      return done;
    } finally {
      if (reserve) this.writeReserved -= buf.length;
    }
  }

  /** Quota is reserved before writing so concurrent writes cannot overshoot it together. */
  private reserve(n: number): void {
    if (this.bytesWritten + this.writeReserved + n > this.writeQuotaBytes) {
      throw new ResourceLimitError(
        this.pluginId,
        'writeQuotaBytes',
        `Plugin '${this.pluginId}' may write ${this.writeQuotaBytes} bytes in all and has written ${this.bytesWritten}; ` +
          `writing ${n} more was refused. Raise writeQuotaBytes if it legitimately needs more.`,
      );
    }
    this.writeReserved += n;
  }

  private readLimit(what: string): ResourceLimitError {
    return new ResourceLimitError(
      this.pluginId,
      'maxReadBytes',
      `Plugin '${this.pluginId}' asked to read ${what}, more than maxReadBytes (${this.maxReadBytes}); read it in pieces with open/read.`,
    );
  }

  private async ensureBaseDir(): Promise<void> {
    if (this.baseReady) return;
    await fsp.mkdir(this.baseDir, { recursive: true, mode: 0o700 });
    this.baseReady = true;
  }

  /** A root's real path, cached once it exists (baseDir may only appear on first write). */
  private realRoot(r: Root): string {
    if (r.real === undefined) {
      try {
        r.real = realpathSync(r.path);
      } catch {
        return r.path;
      }
    }
    return r.real;
  }

  private rebase(abs: string): string {
    const r = this.roots.filter((r) => within(r.path, abs)).sort((a, b) => b.path.length - a.path.length)[0];
    return r ? path.join(this.realRoot(r), path.relative(r.path, abs)) : abs;
  }

  private granted(p: string, real: boolean): Set<Access> {
    const out = new Set<Access>();
    for (const r of this.roots) if (within(real ? this.realRoot(r) : r.path, p)) GRANTS[r.level].forEach((a) => out.add(a));
    return out;
  }

  private demand(t: Target, granted: Set<Access>): void {
    if (t.need.some((a) => !granted.has(a))) throw this.denied(t, t.need.find((a) => !granted.has(a)));
  }

  private denied(t: Target, access: Access = t.need[0]): PermissionDeniedError {
    return new PermissionDeniedError(this.pluginId, `fs.${t.op}`, t.given, this.needed(t.abs, access));
  }

  /** Host fs errors reach the plugin as `{code}` only: their paths name /proc descriptors and real paths. */
  private async mapErrors<T>(op: string, given: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException)?.code;
      if (e instanceof PluginHostError || typeof code !== 'string') throw e;
      throw Object.assign(new Error(`${code}: fs.${op} '${given}' failed.`), { code });
    }
  }

  private handle(op: string, id: unknown, mode?: 'readable' | 'writable'): OpenFile {
    const h = typeof id === 'number' ? this.handles.get(id) : undefined;
    if (!h) throw new InvalidArgumentError(`fs.${op}: ${typeof id === 'number' ? id : typeof id} is not an open file handle.`, { pluginId: this.pluginId });
    if (mode && !h[mode]) throw new InvalidArgumentError(`fs.${op}: handle ${id} was not opened ${mode}.`, { pluginId: this.pluginId });
    return h;
  }

  private async closeFile(h: OpenFile): Promise<void> {
    // FileHandle.close waits for reads/writes in flight, so the fd number is never reused under them.
    try {
      await h.fh.close();
    } finally {
      this.slots--;
    }
  }

  private encoding(enc: unknown): FsEncoding {
    if (enc === undefined || enc === null) return 'utf8';
    if (enc === 'utf8' || enc === 'base64') return enc;
    throw new InvalidArgumentError(`fs encoding must be 'utf8' or 'base64'.`, { pluginId: this.pluginId });
  }

  private encode(op: string, data: unknown, enc: unknown): Buffer {
    if (typeof data !== 'string') throw new InvalidArgumentError(`fs.${op} data must be a string.`, { pluginId: this.pluginId });
    return Buffer.from(data, this.encoding(enc));
  }

  private position(pos: unknown): number | null {
    if (pos === undefined || pos === null) return null;
    if (typeof pos === 'number' && Number.isSafeInteger(pos) && pos >= 0) return pos;
    throw new InvalidArgumentError('fs position must be a non-negative integer.', { pluginId: this.pluginId });
  }

  private recursive(op: string, options: unknown): boolean {
    if (options === undefined || options === null) return false;
    const r = typeof options === 'object' && !Array.isArray(options) ? (options as { recursive?: unknown }).recursive : 0;
    if (r !== undefined && typeof r !== 'boolean') {
      throw new InvalidArgumentError(`fs.${op} options must be { recursive?: boolean }.`, { pluginId: this.pluginId });
    }
    return r === true;
  }
}
