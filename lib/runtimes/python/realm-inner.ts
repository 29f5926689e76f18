// The realm's inner bootstrap (lib/runtimes/python/realm.ts compiles it inside the sealed vm
// context): kept apart because it is JavaScript in a string, read and reviewed on its own.

/**
 * The inner bootstrap, compiled in the realm. Strict mode throughout: no sloppy function of
 * ours can hand out the global object or `caller`. Every outer function is reached through
 * `host(...)`, which turns any throw into an inner error.
 */
export const INNER_SOURCE = String.raw`(function install(outerSchedule, outerCancel, outerNow, outerRandom, outerInterrupt, outerRequest, outerPost, outerPrint, outerDone, maxPages) {
  const g = globalThis;
  const host = (fn, a, b) => { let r; try { r = fn(a, b); } catch { throw new Error('host function failed'); } return r; };
  const define = (name, value) => Object.defineProperty(g, name, { value, writable: false, configurable: false, enumerable: false });

  // Code the loader rewrote: import() and eval() and dynamic libraries are refused inside.
  define('__lm_import', () => Promise.reject(new TypeError('import() is not available in the Python sandbox')));
  // A no-op rather than a throw: a JS exception unwinding through wasm frames (emscripten_run_script
  // called through ctypes) would abort the interpreter.
  define('__lm_noeval', () => undefined);
  // Snapshot restore (pyodide.asm.js rewritten to call this): copies the snapshot into linear
  // memory page by page, skipping 4 KiB pages that are zero in both (about 7 of its 20 MiB): a
  // fresh memory reads as zero without being resident, and writing zeros would make it resident.
  define('__lm_restore', (heap, bytes) => {
    const PAGE = 4096;
    const n = bytes.length;
    if ((bytes.byteOffset & 3) !== 0 || (heap.byteOffset & 3) !== 0 || n > heap.length) { heap.set(bytes); return; }
    const src = new Int32Array(bytes.buffer, bytes.byteOffset, n >> 2);
    const dst = new Int32Array(heap.buffer, heap.byteOffset, n >> 2);
    const zero = (a, from, to) => { for (let i = from; i < to; i++) if (a[i] !== 0) return false; return true; };
    for (let off = 0; off < n; off += PAGE) {
      const end = Math.min(off + PAGE, n);
      if (end - off === PAGE && zero(src, off >> 2, end >> 2) && zero(dst, off >> 2, end >> 2)) continue;
      heap.set(bytes.subarray(off, end), off);
    }
  });
  define('__lm_nodylib', () => { throw new Error('dynamic libraries are not available in the Python sandbox'); });

  // Node calls a realm's Error.prepareStackTrace with stack frames: pin it.
  Object.defineProperty(Error, 'prepareStackTrace', { value: undefined, writable: false, configurable: false });
  Object.defineProperty(g, 'Error', { value: Error, writable: false, configurable: false, enumerable: false });
  // Node's wasm streaming callback rejects with outer errors.
  delete WebAssembly.compileStreaming;
  delete WebAssembly.instantiateStreaming;

  // Linear memory capped at maxPages (shared 1-page memories Pyodide uses for Atomics.wait pass).
  const RealMemory = WebAssembly.Memory;
  function Memory(descriptor) {
    if (new.target === undefined) throw new TypeError("Constructor WebAssembly.Memory requires 'new'");
    const d = Object.assign(Object.create(null), descriptor);
    const max = d.maximum === undefined ? maxPages : Math.min(Number(d.maximum), maxPages);
    if (Number(d.initial) > max) throw new RangeError('WebAssembly.Memory: initial size exceeds the sandbox memory cap');
    d.maximum = max;
    return Reflect.construct(RealMemory, [d], RealMemory);
  }
  Memory.prototype = RealMemory.prototype;
  Object.defineProperty(RealMemory.prototype, 'constructor', { value: Memory, writable: false, configurable: false });
  Object.defineProperty(WebAssembly, 'Memory', { value: Memory, writable: false, configurable: false });

  const lines = [];
  const remember = (line) => { lines.push(String(line).slice(0, 2000)); if (lines.length > 50) lines.shift(); };
  const say = (...a) => remember(a.map((x) => (x && x.stack) || String(x)).join(' '));
  define('console', Object.freeze({ log: say, info: say, warn: say, error: say, debug: say, trace: say }));

  // Plugin code runs only inside invocations. Once sealed, every way into the realm other than
  // the control calls (a timer coming due, the host answering a request) goes through due():
  // while no invocation runs, the callback is parked, and invoke() runs the parked callbacks
  // first, oldest first, under that invocation's deadline and interrupt. So work a plugin leaves
  // behind (asyncio.ensure_future(spin()), loop.call_later(0, f), a request it did not await)
  // neither runs between invocations nor is lost: it advances during the next one. Parking
  // rather than cancelling is enforced here, out of Python's reach (a cancel in the dispatcher
  // could be undone by plugin code), and keeps asyncio consistent (no task is dropped midway, a
  // fire-and-forget task still happens). JS microtasks a plugin queues itself (then() on a JS
  // promise it holds) run before the outer side answers (see the outer invoke).
  let gated = false;
  let running = 0;
  const parked = [];
  /** finish(text) of every async invocation still running. */
  const waiting = new Set();
  /** SIGINTs Python took off the interrupt buffer (each one the host's deadline). */
  let sigints = 0;
  /** KeyboardInterrupt (the host's deadline) or MemoryError escaping a callback: the invocation's outcome. */
  const limitOf = (e) => {
    try { const t = e && e.type; return t === 'KeyboardInterrupt' ? 'interrupted' : t === 'MemoryError' ? 'memory' : undefined; } catch { return undefined; }
  };
  const failed = (e) => {
    const limit = running > 0 ? limitOf(e) : undefined;
    if (limit === undefined) { say('callback failed:', e); return; }
    // Asyncio re-raises KeyboardInterrupt out of a task's step: the running invocation ends
    // with it (its own task, if still waiting, is then left-over work like any other).
    for (const finish of [...waiting]) finish('limit\n' + limit);
  };
  // Pyodide's timer callbacks are async functions (a Python error is a rejected promise): neither
  // a throw nor a rejection may reach Node (an unhandled rejection ends the worker).
  const fire = (fn) => {
    let r;
    try { r = fn(); } catch (e) { failed(e); return; }
    if (r && typeof r.then === 'function') r.then((v) => v, failed);
  };
  const due = (fn) => { if (gated && running === 0) parked.push(fn); else fire(fn); };

  // Timers: outer setImmediate/setTimeout behind numeric ids; callbacks never throw outward.
  g.setTimeout = (fn, ms, ...args) => {
    if (typeof fn !== 'function') throw new TypeError('setTimeout needs a function');
    return host(outerSchedule, () => { due(() => fn(...args)); }, Number(ms) || 0);
  };
  g.clearTimeout = (id) => { host(outerCancel, Number(id) || 0); };
  g.queueMicrotask = (fn) => { Promise.resolve().then(() => fn()); };
  g.performance = Object.freeze({ now: () => host(outerNow), timeOrigin: 0 });
  // Emscripten's shell path draws randomness from d8's os.system('head -c N /dev/urandom | base64').
  g.os = Object.freeze({ system: (cmd, args) => {
    const m = /head -c(\d+) \/dev\/urandom/.exec(String(args && args[1]));
    if (!m) throw new Error('os.system is not available');
    return host(outerRandom, Number(m[1]));
  } });

  class TextDecoder {
    constructor(label = 'utf-8', options = undefined) {
      const l = String(label).toLowerCase();
      this.encoding = l === 'utf8' || l === 'unicode-1-1-utf-8' ? 'utf-8' : l === 'utf-16' ? 'utf-16le' : l;
      if (this.encoding !== 'utf-8' && this.encoding !== 'utf-16le') throw new RangeError('The encoding label provided (' + l + ') is invalid');
      this.fatal = !!(options && options.fatal);
      this.ignoreBOM = !!(options && options.ignoreBOM);
    }
    decode(input = undefined) {
      if (input === undefined) return '';
      const u = input instanceof Uint8Array ? input : ArrayBuffer.isView(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : new Uint8Array(input);
      return this.encoding === 'utf-8' ? utf8(u, this.fatal, this.ignoreBOM) : utf16(u, this.ignoreBOM);
    }
  }
  const bad = (fatal) => { if (fatal) throw new TypeError('The encoded data was not valid for encoding utf-8'); return 0xfffd; };
  function utf8(u, fatal, ignoreBOM) {
    const parts = []; let codes = []; const n = u.length; let i = 0;
    if (!ignoreBOM && n >= 3 && u[0] === 0xef && u[1] === 0xbb && u[2] === 0xbf) i = 3;
    while (i < n) {
      const c = u[i++]; let cp;
      if (c < 0x80) cp = c;
      else if (c >= 0xc2 && c < 0xe0) { const c1 = u[i]; if (i < n && (c1 & 0xc0) === 0x80) { i++; cp = ((c & 31) << 6) | (c1 & 63); } else cp = bad(fatal); }
      else if (c >= 0xe0 && c < 0xf0) {
        const c1 = u[i], c2 = u[i + 1];
        const ok1 = i < n && (c1 & 0xc0) === 0x80 && !(c === 0xe0 && c1 < 0xa0) && !(c === 0xed && c1 > 0x9f);
        if (ok1 && i + 1 < n && (c2 & 0xc0) === 0x80) { i += 2; cp = ((c & 15) << 12) | ((c1 & 63) << 6) | (c2 & 63); } else { if (ok1) i++; cp = bad(fatal); }
      } else if (c >= 0xf0 && c < 0xf5) {
        const c1 = u[i], c2 = u[i + 1], c3 = u[i + 2];
        const ok1 = i < n && (c1 & 0xc0) === 0x80 && !(c === 0xf0 && c1 < 0x90) && !(c === 0xf4 && c1 > 0x8f);
        if (ok1 && i + 2 < n && (c2 & 0xc0) === 0x80 && (c3 & 0xc0) === 0x80) { i += 3; cp = ((c & 7) << 18) | ((c1 & 63) << 12) | ((c2 & 63) << 6) | (c3 & 63); }
        else { if (ok1) { i++; if (i < n && (u[i] & 0xc0) === 0x80) i++; } cp = bad(fatal); }
      } else cp = bad(fatal);
      if (cp > 0xffff) { cp -= 0x10000; codes.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023)); } else codes.push(cp);
      if (codes.length >= 8192) { parts.push(String.fromCharCode.apply(null, codes)); codes = []; }
    }
    parts.push(String.fromCharCode.apply(null, codes));
    return parts.join('');
  }
  function utf16(u, ignoreBOM) {
    const parts = []; let codes = []; let i = 0;
    if (!ignoreBOM && u.length >= 2 && u[0] === 0xff && u[1] === 0xfe) i = 2;
    for (; i + 1 < u.length; i += 2) { codes.push(u[i] | (u[i + 1] << 8)); if (codes.length >= 8192) { parts.push(String.fromCharCode.apply(null, codes)); codes = []; } }
    parts.push(String.fromCharCode.apply(null, codes));
    return parts.join('');
  }
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { const s = String(input); const out = new Uint8Array(s.length * 3); return out.slice(0, this.encodeInto(s, out).written); }
    encodeInto(input, dest) {
      const s = String(input); let w = 0; let r = 0;
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i); let units = 1;
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) { const d = s.charCodeAt(i + 1); if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); units = 2; } }
        if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
        const need = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        if (w + need > dest.length) break;
        if (need === 1) dest[w++] = c;
        else if (need === 2) { dest[w++] = 0xc0 | (c >> 6); dest[w++] = 0x80 | (c & 63); }
        else if (need === 3) { dest[w++] = 0xe0 | (c >> 12); dest[w++] = 0x80 | ((c >> 6) & 63); dest[w++] = 0x80 | (c & 63); }
        else { dest[w++] = 0xf0 | (c >> 18); dest[w++] = 0x80 | ((c >> 12) & 63); dest[w++] = 0x80 | ((c >> 6) & 63); dest[w++] = 0x80 | (c & 63); }
        r += units; if (units === 2) i++;
      }
      return { read: r, written: w };
    }
  }
  g.TextDecoder = TextDecoder;
  g.TextEncoder = TextEncoder;

  // The shell loader's file access: only the files copied in.
  const files = new Map();
  const SCRATCH_MIN = 32 * 1024 * 1024 + 65536;
  let scratch;
  let used = 0;
  g.read = (path) => { const f = files.get(String(path)); if (typeof f !== 'string') throw new Error('no such file: ' + path); return f; };
  g.readbuffer = (path) => { const f = files.get(String(path)); if (!(f instanceof Uint8Array)) throw new Error('no such file: ' + path); return f; };
  g.load = () => { throw new Error('loading scripts is not available in the Python sandbox'); };

  // Pyodide's interrupt buffer: index 0 reads/writes the host's flag; no outer buffer inside.
  const signals = Object.create(null);
  let lastRead = 0;
  Object.defineProperty(signals, 0, {
    get: () => { const v = host(outerInterrupt, -1); lastRead = v; if (v !== 0) sigints++; return v; },
    // Pyodide reads the flag, then writes 0. A 0 after reading 0 has nothing to clear: skipped, it
    // would wipe a SIGINT the host stored in between (and costs an outer call per check).
    set: (v) => { const n = Number(v) | 0; if (n === 0 && lastRead === 0) return; lastRead = n; host(outerInterrupt, n); },
  });
  Object.freeze(signals);

  // The bridge: JSON text in, JSON text out; the outer side counts and checks every request.
  const request = (json) => new Promise((resolve) => {
    host(outerRequest, String(json), (answer) => { due(() => resolve(String(answer))); });
  });
  const post = (json) => { host(outerPost, String(json)); };

  let py;
  // The dispatcher functions invoke() calls, looked up once (after load: no JS reference is in
  // the snapshot, which is made before).
  const dispatchers = new Map();
  const dispatcher = (module, name) => {
    const key = String(module) + '\n' + String(name);
    let fn = dispatchers.get(key);
    if (fn === undefined) {
      const mod = py.pyimport(String(module));
      try { fn = mod[String(name)].copy(); } finally { mod.destroy(); }
      dispatchers.set(key, fn);
    }
    return fn;
  };
  const failure = (e) => { const limit = limitOf(e); return limit ? 'limit\n' + limit : 'error\n' + String((e && e.message) || e); };
  const control = {
    // One scratch buffer for the boot files (wasm, stdlib, snapshot), padded past glibc's largest
    // mmap threshold (32 MiB) so it is mmapped, never carved from the worker's malloc arena (which
    // keeps freed memory resident); its padding is never touched. The outer side detaches it once
    // booted, which unmaps it at once (no GC needed).
    reserve(size) { scratch = new Uint8Array(Math.max(Number(size), SCRATCH_MIN)); used = 0; return scratch.buffer; },
    alloc(path, size) {
      const n = Number(size);
      let u;
      if (scratch !== undefined && used + n <= scratch.length) { u = scratch.subarray(used, used + n); used = (used + n + 63) & ~63; }
      else u = new Uint8Array(n);
      files.set(String(path), u);
      return u;
    },
    text(path, text) { files.set(String(path), String(text)); },
    boot(id, makeSnapshot, snapshotPath) {
      const config = {
        indexURL: '/pyodide/',
        lockFileURL: '/pyodide/pyodide-lock.json',
        stdLibURL: '/pyodide/python_stdlib.zip',
        jsglobals: Object.create(null),
        env: { HOME: '/home/pyodide' },
        args: [],
        packages: [],
        fullStdLib: false,
        stdin: () => null,
        stdout: (line) => { host(outerPrint, 'stdout', String(line)); },
        stderr: (line) => { host(outerPrint, 'stderr', String(line)); },
      };
      if (makeSnapshot) config._makeSnapshot = true;
      if (snapshotPath) config._loadSnapshot = files.get(snapshotPath);
      g.loadPyodide(config).then((api) => {
        py = api;
        // Pyodide keeps its config (the snapshot) and the wasm loader's closure (the wasm bytes):
        // neither is needed once booted.
        config._loadSnapshot = undefined;
        if (py._api && py._api.config) py._api.config._loadSnapshot = undefined;  // Pyodide's own copy of the config
        py._module.instantiateWasm = undefined;
        for (const [path, f] of [...files]) if (typeof f !== 'string') files.delete(path);
        scratch = undefined;
        py.setInterruptBuffer(signals);
        host(outerDone, Number(id), 'ok\n');
      }).catch((e) => { say(e); host(outerDone, Number(id), 'error\n' + String((e && e.message) || e)); });
    },
    makeSnapshot() { return py.makeMemorySnapshot(); },
    writeText(path, text) {
      const p = String(path); const dir = p.slice(0, p.lastIndexOf('/'));
      if (dir) py.FS.mkdirTree(dir);
      py.FS.writeFile(p, String(text));
    },
    runPython(code) { return py.runPython(String(code)); },
    callPython(module, name, ...args) {
      const mod = py.pyimport(String(module));
      const fn = mod[String(name)];
      try { return fn(...args.map(String)); } finally { fn.destroy(); mod.destroy(); }
    },
    invoke(id, module, name, arg) {
      running++;
      let ended = false;
      const end = () => { if (!ended) { ended = true; running--; } };
      let result;
      try {
        // Work parked since the last invocation first (see due()). Python taking the host's SIGINT
        // meanwhile means this invocation's deadline passed in it: the invocation ends interrupted.
        const seen = sigints;
        while (parked.length > 0) {
          fire(parked.shift());
          if (sigints !== seen) { end(); return 'limit\ninterrupted'; }
        }
        result = dispatcher(module, name)(String(arg));
      } catch (e) { end(); return failure(e); }
      // Finished without waiting: the answer itself, no promise, no event-loop turn.
      if (typeof result === 'string') { end(); return result; }
      let settled = false;
      const finish = (text) => {
        if (settled) return;
        settled = true;
        waiting.delete(finish);
        end();
        host(outerDone, Number(id), String(text));
      };
      waiting.add(finish);
      Promise.resolve(result).then((value) => finish(value), (e) => finish(failure(e)))
        .finally(() => { if (result && typeof result.destroy === 'function') result.destroy(); });
      return undefined;
    },
    installBridge(module) {
      const mod = py.pyimport(String(module));
      try { mod.install(request, post); } finally { mod.destroy(); }
    },
    seal() {
      // Top-level vars of the loaded scripts cannot be deleted; they are emptied.
      for (const name of ['loadPyodide', '_createPyodideModule', 'read', 'readbuffer', 'load']) { if (!Reflect.deleteProperty(g, name)) g[name] = undefined; }
      files.clear();
      gated = true;
    },
    memoryBytes() { return py ? py._module.HEAP8.length : 0; },
    consoleLines() { return lines.join('\n'); },
    get pyodide() { return py; },
  };
  return Object.freeze(control);
})`;
