/**
 * Pyodide sealed in a `node:vm` realm where Node does not exist (see docs/plugins/SECURITY.md,
 * "Python plugins"). Pyodide in Node is not a sandbox: with Node reachable, Python gets
 * `process` through `import js`, `child_process` through `os.system`, the host disk through
 * `mountNodeFS`, and so on. Here Emscripten and Pyodide take their shell paths (no `window`,
 * no `WorkerGlobalScope`, no `process`), so none of that code exists in the realm, and the
 * realm holds nothing of the outer one:
 *
 * - the context is created on a null-prototype object (an ordinary `{}` sandbox leaks the
 *   outer `Object`, so `this.constructor.constructor('return process')()` escapes);
 * - code generation from strings is off (`eval`, `Function`), so neither Python nor a crafted
 *   wasm side module (EM_ASM) nor `emscripten_run_script` can compile JS in the realm; the only
 *   code in it is the code loaded here;
 * - `import()` in that code is rewritten to a function that rejects with an inner error: Node
 *   rejects a vm context's `import()` with an error created in the outer realm, whose
 *   `constructor.constructor` is the outer `Function`;
 * - `WebAssembly.compileStreaming` / `instantiateStreaming` are removed (Node's streaming
 *   callback rejects with outer errors), `Error.prepareStackTrace` is pinned to undefined (Node
 *   calls a realm's hook with stack frames), the dynamic library loader and
 *   `emscripten_run_script*` are replaced by functions that throw;
 * - bytes (wasm, stdlib, snapshot) are copied into Uint8Arrays allocated inside the realm (the
 *   host's shared copies and V8's code cache never enter it; the inner copies are dropped once
 *   booted); the
 *   outer functions the realm needs (timers, clock, randomness, the interrupt flag, the host
 *   bridge) are closed over by inner functions that take and return primitives only and never
 *   let an outer error through;
 * - the interrupt flag is an inner object whose index 0 reads and writes the host's
 *   SharedArrayBuffer through such a function: an Int32Array over the outer buffer would make
 *   the outer `SharedArrayBuffer` (and its `constructor.constructor`) reachable;
 * - `WebAssembly.Memory` is replaced by one that clamps `maximum` to the plugin's cap;
 * - once sealed, plugin code runs only inside an invocation (under its deadline and interrupt):
 *   timers and host answers that come due between invocations are parked and run at the start
 *   of the next one; the worker answers an invocation only after the microtasks it queued have
 *   run (serveWhenIdle).
 *
 * The outer side holds the inner control object; nothing inside holds an outer object.
 *
 * @example
 * const realm = await createPyodideRealm({ maxMemoryBytes: 256 * MB, interrupt, bridge });
 * await realm.control.runPythonAsync('1 + 1');
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isArrayBuffer } from 'node:util/types';
import vm from 'node:vm';
import { MessageChannel } from 'node:worker_threads';
import { INNER_SOURCE } from './realm-inner.js';

const PAGE = 65536;

/**
 * The files of the pyodide package the realm needs. The host reads and rewrites them once per
 * process ({@link sharedPyodideFiles}) and hands them to every worker in the load task: the
 * byte arrays live in SharedArrayBuffers (no copy per worker), and `codeCache` holds V8's code
 * cache of the two scripts, made by an earlier realm of this process (never read from disk).
 */
export interface PyodideFiles {
  asm: string;
  loader: string;
  wasm: Uint8Array;
  stdlib: Uint8Array;
  lock: string;
  version: string;
  codeCache?: PyodideCodeCache;
}

/** V8 code cache (`vm.Script` cachedData) of the rewritten `pyodide.asm.js` and `pyodide.js`. */
export interface PyodideCodeCache {
  asm: Uint8Array;
  loader: Uint8Array;
}

/** Text rewrites of Pyodide's JS: each must match, so a changed Pyodide fails closed. */
const REWRITES: { what: string; from: string | RegExp; to: string; count?: number }[] = [
  // Any `import(` (Node would reject it with an outer error) → an inner rejection.
  { what: 'import()', from: /\bimport\s*\(/g, to: '__lm_import(' },
  // Any `eval(` (dynamic libraries' EM_ASM, emscripten_run_script*, Node's script loader).
  { what: 'eval()', from: /\beval\s*\(/g, to: '__lm_noeval(' },
  {
    what: 'loadDynamicLibrary',
    from: 'function loadDynamicLibrary(libName,flags={global:true,nodelete:true},localScope,handle){',
    to: 'function loadDynamicLibrary(libName,flags={global:true,nodelete:true},localScope,handle){__lm_nodylib();',
    count: 1,
  },
  {
    what: 'loadWebAssemblyModule',
    from: 'var loadWebAssemblyModule=(binary,flags,libName,localScope,handle)=>{',
    to: 'var loadWebAssemblyModule=(binary,flags,libName,localScope,handle)=>{__lm_nodylib();',
    count: 1,
  },
];

/** Snapshot restore skips all-zero pages (not made resident): see __lm_restore in realm-inner.ts. */
const RESTORE_REWRITE = { what: 'restoreSnapshot', from: 'return Module.HEAP8.set(t),l}', to: 'return __lm_restore(Module.HEAP8,t),l}', count: 1 };
/** The shell loader copies every binary it reads (`new Uint8Array(readbuffer(path))`): it gets the inner array itself. */
const READBUFFER_REWRITE = {
  what: 'shell binary copy',
  from: 'binary:Promise.resolve(new Uint8Array(readbuffer(e)))',
  to: 'binary:Promise.resolve(readbuffer(e))',
  count: 1,
};

function rewrite(source: string, file: string, rules: typeof REWRITES): string {
  let out = source;
  for (const rule of rules) {
    const matches = typeof rule.from === 'string' ? out.split(rule.from).length - 1 : (out.match(rule.from) ?? []).length;
    if (rule.count !== undefined && matches !== rule.count) {
      throw new Error(`unsupported Pyodide build: expected ${rule.count} ${rule.what} in ${file}, found ${matches}`);
    }
    out = typeof rule.from === 'string' ? out.split(rule.from).join(rule.to) : out.replace(rule.from, rule.to);
  }
  if (/\bimport\s*\(|\beval\s*\(/.test(out)) throw new Error(`unsupported Pyodide build: ${file} still calls import() or eval()`);
  return out;
}

function pyodideDir(): string {
  return dirname(fileURLToPath(import.meta.resolve('pyodide/package.json')));
}

/**
 * The realm's intrinsics and the globals it installs that Pyodide's scripts use. In a `vm`
 * context every global lookup goes through Node's interceptor (~100 ns each): Pyodide's
 * per-character string conversion ran 17× slower than outside. Each script is wrapped in a
 * function taking these as parameters, so its lookups are lexical (the same inner objects). The
 * realm's own source (INNER_SOURCE) gets the intrinsics only: it installs the rest.
 */
const ES_INTRINSICS = [
  'globalThis', 'String', 'Object', 'Array', 'Math', 'Number', 'Boolean', 'Symbol', 'BigInt', 'Reflect', 'Promise', 'Map', 'Set',
  'WeakMap', 'WeakRef', 'FinalizationRegistry', 'Error', 'TypeError', 'RangeError', 'JSON', 'Uint8Array', 'Int8Array', 'Uint16Array',
  'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'DataView',
  'ArrayBuffer', 'WebAssembly', 'Proxy', 'Date', 'RegExp', 'isNaN', 'parseInt',
];
/** What the realm installs before Pyodide's scripts run (INNER_SOURCE). */
const INSTALLED = ['TextDecoder', 'TextEncoder', 'performance', 'setTimeout', 'clearTimeout', 'console'];

/** A script running `body` inside a function whose parameters are `names`, given their global values. */
function lexical(body: string, names: string[] = [...ES_INTRINSICS, ...INSTALLED]): string {
  const list = names.join(',');
  return `'use strict';(function (${list}) {\n${body}\n}).call(globalThis, ${list});`;
}

/** Reads the pyodide package files next to its `package.json` and rewrites its JS (see REWRITES). */
export function readPyodideFiles(): PyodideFiles {
  const dir = pyodideDir();
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  return {
    asm: lexical(rewrite(readFileSync(join(dir, 'pyodide.asm.js'), 'utf8'), 'pyodide.asm.js', [...REWRITES, RESTORE_REWRITE])),
    loader: lexical(rewrite(readFileSync(join(dir, 'pyodide.js'), 'utf8'), 'pyodide.js', [...REWRITES.slice(0, 2), READBUFFER_REWRITE])),
    wasm: readFileSync(join(dir, 'pyodide.asm.wasm')),
    stdlib: readFileSync(join(dir, 'python_stdlib.zip')),
    lock: readFileSync(join(dir, 'pyodide-lock.json'), 'utf8'),
    version,
  };
}

let shared: Promise<PyodideFiles> | undefined;
/** Keeps V8's compiled wasm module alive, so every worker's instantiation finds it in V8's cache. */
let compiled: object | undefined;
/** The global WebAssembly (the compiler's ES lib here does not declare it). */
const Wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<object> } }).WebAssembly;

/**
 * The pyodide files for the load tasks of this process (host side): read and rewritten once,
 * the wasm and stdlib bytes in SharedArrayBuffers that every worker reads without a copy of
 * its own. The wasm is also compiled here once and the module kept: V8 shares compiled wasm
 * code across the threads of a process by the module's bytes, so a worker instantiating the
 * same bytes (inside its realm, from its own inner copy) neither compiles nor holds its own code.
 * The module stays on the host thread; no realm ever sees it.
 */
export function sharedPyodideFiles(): Promise<PyodideFiles> {
  return (shared ??= (async () => {
    const f = readPyodideFiles();
    const share = (bytes: Uint8Array): Uint8Array => {
      const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
      out.set(bytes);
      return out;
    };
    const files = { ...f, wasm: share(f.wasm), stdlib: share(f.stdlib) };
    try {
      compiled = await Wasm.compile(f.wasm);
    } catch {
      // Only a speed-up: each worker compiles on its own then.
    }
    return files;
  })().catch((e: unknown) => {
    shared = undefined;
    throw e;
  }));
}

/** Drops the process's shared pyodide files and compiled module (tests, memory). */
export function forgetSharedPyodideFiles(): void {
  shared = undefined;
  compiled = undefined;
}

/** What the outer side hands the realm: primitives in, primitives out. */
export interface RealmHost {
  maxMemoryBytes: number;
  /** The host's interrupt flag (Pyodide reads SIGINT = 2 at index 0 and resets it to 0). */
  interrupt: Int32Array;
  /** A gateway request (JSON text); answers JSON text of `{ok, value | error}`. Never rejects. */
  request(json: string): Promise<string>;
  /** A fire-and-forget gateway request (log, emit). Never throws. */
  post(json: string): void;
  /** A line Python wrote to stdout/stderr. */
  print(stream: 'stdout' | 'stderr', line: string): void;
  /** Called when the realm's last pending timer has fired or been cleared. */
  timersDone?(): void;
}

/** The inner control object (created in the realm; only the outer side holds it). */
export interface RealmControl {
  /** Boots Pyodide (`snapshotPath` names a file copied in with `alloc`); reports to completion `id`. */
  boot(id: number, makeSnapshot: boolean, snapshotPath: string | null): void;
  /**
   * Runs the callbacks parked since the last invocation, then calls Python `module.name(arg)`
   * (looked up once), which returns a str or an awaitable of one: answers the str (Python
   * finished without waiting), or undefined and reports the str to completion `id` later.
   * `limit\ninterrupted` / `limit\nmemory` when a KeyboardInterrupt or MemoryError escaped.
   */
  invoke(id: number, module: string, name: string, arg: string): string | undefined;
  /** A memory snapshot (after `boot(true, …)`), as an inner Uint8Array. */
  makeSnapshot(): Uint8Array;
  /** Allocates an inner Uint8Array registered as file `path` of the boot loader. */
  alloc(path: string, size: number): Uint8Array;
  /** Allocates the inner scratch buffer later `alloc` calls carve their arrays from (at least 32 MiB + 64 KiB). */
  reserve(size: number): ArrayBuffer;
  /** Writes a text file into Pyodide's in-memory file system (parents created). */
  writeText(path: string, text: string): void;
  runPython(code: string): unknown;
  /** Imports `module` and calls its function `name` with string arguments; result converted to JS. */
  callPython(module: string, name: string, ...args: string[]): unknown;
  /** Installs the bridge functions into `_logomesh_runtime` (`install(request, post)`). */
  installBridge(module: string): void;
  /** Removes the loader's globals from the realm once booted; from then on plugin code runs only inside `invoke`. */
  seal(): void;
  /** Linear memory size in bytes. */
  memoryBytes(): number;
  /** Lines the realm's console received (bounded), for diagnostics. */
  consoleLines(): string;
  /** The Pyodide API object (inner); for specs only, never reachable from inside. */
  readonly pyodide: unknown;
}

export interface PyodideRealm {
  context: vm.Context;
  control: RealmControl;
  /**
   * Runs Python `module.name(arg)` (returning a str or an awaitable of one): the str itself when
   * Python finished without waiting (no promise, no event-loop turn), else a promise of it. JS
   * microtasks the invocation queued may still be pending: the caller answers only once they
   * have run (serveWhenIdle does), so nothing the invocation queued is left running.
   */
  invoke(module: string, name: string, arg: string): string | Promise<string>;
  /** Timers of the realm not yet fired or cleared (each one needs the event loop). */
  pendingTimers(): number;
  /** V8's code cache of Pyodide's scripts, for {@link PyodideFiles.codeCache} of later realms. */
  codeCache(): PyodideCodeCache;
}

/**
 * Frees `buffer`'s memory now rather than at the worker's next GC (an idle worker may not have
 * one for a long time): transferred into a message on a channel closed at once, its backing
 * store is dropped with the message. `buffer` is left detached (length 0).
 */
function release(buffer: ArrayBuffer): void {
  if (!isArrayBuffer(buffer) || buffer.byteLength === 0) return;
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(null, [buffer]);
  } catch {
    // Not detachable: the GC frees it.
  }
  port1.close();
  port2.close();
}

/**
 * Creates the realm and boots Pyodide in it. `snapshot` (bytes of `makeSnapshot()` from the
 * same Pyodide build) restores a booted interpreter instead of initialising one.
 */
export async function createPyodideRealm(
  host: RealmHost,
  options: { snapshot?: Uint8Array; makeSnapshot?: boolean; files?: PyodideFiles } = {},
): Promise<PyodideRealm & { control: RealmControl & { text(path: string, text: string): void } }> {
  const f = options.files ?? readPyodideFiles();
  const maxPages = Math.floor(host.maxMemoryBytes / PAGE);
  const context = vm.createContext(Object.create(null), {
    name: 'logomesh-python',
    codeGeneration: { strings: false, wasm: true },
  });
  const run = (source: string, filename: string, cachedData?: Uint8Array): vm.Script => {
    const script = new vm.Script(source, { filename, ...(cachedData ? { cachedData } : {}) });
    script.runInContext(context);
    return script;
  };

  // Inner asynchronous work reports through one outer function taking an id and a string:
  // the outer side never awaits an inner promise (awaiting calls its `then` with outer
  // resolve functions, which a poisoned inner Promise.prototype.then would receive).
  const completions = new Map<number, (text: string) => void>();
  let nextCompletion = 0;
  const completion = (): { id: number; done: Promise<string> } => {
    const id = ++nextCompletion;
    const done = new Promise<string>((resolve) => completions.set(id, resolve));
    return { id, done };
  };
  /** Outer timers of the realm: when each comes due, and how to fire it now. */
  const timers = new Map<number, { at: number; handle: NodeJS.Timeout | NodeJS.Immediate; fire(): void }>();
  let nextTimer = 0;
  const install = new vm.Script(lexical(`return ${INNER_SOURCE};`, ES_INTRINSICS), { filename: 'logomesh-realm.js' }).runInContext(context) as (
    ...args: unknown[]
  ) => RealmControl & { text(path: string, text: string): void };
  const control = install(
    (callback: () => void, ms: number): number => {
      const id = ++nextTimer;
      const fire = () => {
        const timer = timers.get(id);
        if (!timer) return;
        timers.delete(id);
        clearTimeout(timer.handle as NodeJS.Timeout);
        clearImmediate(timer.handle as NodeJS.Immediate);
        try {
          callback();
        } catch {
          // The inner callback catches its own errors; nothing may escape into Node.
        }
        if (timers.size === 0) host.timersDone?.();
      };
      timers.set(id, { at: performance.now() + (ms <= 2 ? 0 : ms), handle: ms <= 2 ? setImmediate(fire) : setTimeout(fire, ms), fire });
      return id;
    },
    (id: number): void => {
      const t = timers.get(id);
      if (t === undefined) return;
      timers.delete(id);
      clearTimeout(t.handle as NodeJS.Timeout);
      clearImmediate(t.handle as NodeJS.Immediate);
      if (timers.size === 0) host.timersDone?.();
    },
    (): number => performance.now(),
    (n: number): string => randomBytes(Math.max(0, Math.min(n >>> 0, 65536))).toString('base64'),
    (value: number): number => {
      if (value < 0) return Atomics.load(host.interrupt, 0);
      Atomics.store(host.interrupt, 0, value);
      return value;
    },
    (json: string, resolve: (answer: string) => void): void => {
      const answer = (text: string) => {
        try {
          resolve(text);
        } catch {
          // resolve is the inner promise's; it does not throw.
        }
      };
      host.request(json).then(answer, (e: unknown) =>
        answer(JSON.stringify({ ok: false, error: { name: 'Error', message: `the host request failed: ${(e as Error)?.message ?? String(e)}` } })),
      );
    },
    (json: string): void => {
      try {
        host.post(json);
      } catch {
        // Fire-and-forget.
      }
    },
    (stream: 'stdout' | 'stderr', line: string): void => {
      try {
        host.print(stream, line);
      } catch {
        // Output is best effort.
      }
    },
    (id: number, text: string): void => {
      const resolve = completions.get(id);
      completions.delete(id);
      resolve?.(String(text));
    },
    maxPages,
  );
  // Code loaded into the realm: Pyodide's module factory and its loader (rewritten, see REWRITES).
  const asmScript = run(f.asm, 'pyodide.asm.js', f.codeCache?.asm);
  const loaderScript = run(f.loader, 'pyodide.js', f.codeCache?.loader);
  // The boot files share one inner scratch buffer, detached (and so unmapped) once booted.
  const scratch = control.reserve(f.wasm.length + f.stdlib.length + (options.snapshot?.length ?? 0) + 256);
  control.alloc('/pyodide/pyodide.asm.wasm', f.wasm.length).set(f.wasm);
  control.alloc('/pyodide/python_stdlib.zip', f.stdlib.length).set(f.stdlib);
  control.text('/pyodide/pyodide-lock.json', f.lock);
  let snapshotPath: string | null = null;
  if (options.snapshot) {
    snapshotPath = '/pyodide/snapshot.bin';
    control.alloc(snapshotPath, options.snapshot.length).set(options.snapshot);
  }
  const boot = completion();
  control.boot(boot.id, options.makeSnapshot === true, snapshotPath);
  const booted = await boot.done;
  release(scratch);
  if (!booted.startsWith('ok\n')) {
    const lines = control.consoleLines();
    throw new Error(`Pyodide failed to boot: ${booted.slice(booted.indexOf('\n') + 1)}${lines ? `\n${lines}` : ''}`);
  }
  // Timers already due fire (into the realm's parked queue) before the invocation, whether or not
  // the event loop got to them: what a call scheduled with no delay runs at the start of the next.
  const fireDue = (): void => {
    const now = performance.now();
    const due = [...timers.values()].filter((t) => t.at <= now).sort((a, b) => a.at - b.at);
    for (const timer of due) timer.fire();
  };
  const invoke = (module: string, name: string, arg: string): string | Promise<string> => {
    if (timers.size > 0) fireDue();
    const id = ++nextCompletion;
    const answer = control.invoke(id, module, name, arg);
    if (typeof answer === 'string') return answer;
    // Registered after the call: the inner side reports an awaited answer only from a promise
    // reaction or a later callback, never before control.invoke has returned.
    return new Promise<string>((resolve) => completions.set(id, resolve));
  };
  // V8's code cache of both scripts after boot (functions compiled so far included): bytes only.
  const codeCache = (): PyodideCodeCache => ({ asm: asmScript.createCachedData(), loader: loaderScript.createCachedData() });
  return { context, control, invoke, pendingTimers: () => timers.size, codeCache };
}
