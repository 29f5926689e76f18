/**
 * The worker side of the Python runtime: a piscina task handler hosting one Python plugin
 * per worker thread (the pool has exactly one thread). Pyodide boots in a sealed `vm` realm
 * (./realm.ts) where Node does not exist; the plugin reaches the host only through the
 * comlink host API on the port handed over at load, as JSON text, counted and size-checked
 * here (outside the realm, where the plugin cannot reset the counters).
 *
 * Replies: a Python exception → `{ok: false, error: {name, message, stack}}` (name: the
 * exception class, stack: the Python traceback); a MemoryError escaping an invocation →
 * `{ok: false, limit: 'memory', size: <linear memory bytes>}`; a KeyboardInterrupt (the host's
 * deadline) → `{ok: false, limit: 'interrupted', size: 0}`; more host requests than
 * `maxRequestsPerInvocation`, or a request or result over `maxPayloadBytes` →
 * `{ok: false, limit: 'requests' | 'payload', size}`, even if the plugin caught the error.
 *
 * @example
 * // Run by piscina; the host sends:
 * await pool.run({ type: 'load', pluginId: 'viz', files, entryPoint: 'main.py', port, interrupt, … }, { transferList: [port] });
 * // → { ok: true, value: '{"exposed":["histogram"],"handlers":[],"hooks":[]}', memoryBytes: 20971520, elapsedMs: 450 }
 * // then on the invocation channel (PYTHON_CODEC), a call as `method\nargs JSON`:
 * // 'histogram\n[[1,2]]' → 'V20971520 80\n{"bins":…}'
 */
import * as Comlink from 'comlink';
import { posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import vm from 'node:vm';
import type { MessagePort } from 'node:worker_threads';
import { portEndpoint } from '../comlink-endpoint.js';
import { errorWithStack, serveWhenIdle } from '../invocation-channel.js';
import { PYTHON_CODEC, type PythonHostApi, type PythonLoadTask, type PythonWorkerOutcome, type PythonWorkerReply, type PythonWorkerTask } from './python-protocol.js';
import { createPyodideRealm, type PyodideCodeCache, type PyodideRealm } from './realm.js';
import { LOGOMESH_PY, PLUGIN_DIR, RUNTIME_MODULE, RUNTIME_PY, SDK_DIR } from './sdk.js';

type Limit = 'payload' | 'requests' | 'memory' | 'interrupted';

interface Plugin {
  realm: PyodideRealm;
  port: MessagePort;
  remote: Comlink.Remote<PythonHostApi>;
  maxPayload: number;
  maxRequests: number;
}

let plugin: Plugin | undefined;
let loading = false;
let interrupt: Int32Array | undefined;
let requests = 0;
/** Set when a limit was hit, even if the plugin caught the exception. */
let limitHit: { limit: Limit; size: number } | undefined;

/**
 * One task: a load (async), or an invocation, answered at once when Python finished without
 * waiting (the hot path: no promise) and later otherwise. Never throws.
 */
export default function handle(task: PythonWorkerTask): PythonWorkerReply | Promise<PythonWorkerReply> {
  const started = performance.now();
  requests = 0;
  limitHit = undefined;
  if (interrupt) Atomics.store(interrupt, 0, 0);
  if (task.type === 'load') {
    return load(task).then(
      (loaded) => reply(loaded.outcome, started, loaded.snapshot, loaded.codeCache),
      (e: unknown) => reply({ ok: false, error: errorWithStack(e) }, started),
    );
  }
  let answer: string | Promise<string>;
  try {
    answer = loadedPlugin().realm.invoke(RUNTIME_MODULE, 'invoke', task.invocation);
  } catch (e) {
    return reply({ ok: false, error: errorWithStack(e) }, started);
  }
  if (typeof answer === 'string') return reply(decode(answer), started);
  return answer.then(
    (text) => reply(decode(text), started),
    (e: unknown) => reply({ ok: false, error: errorWithStack(e) }, started),
  );
}

/** The task's outcome with the worker's counters after it (a limit hit meanwhile wins). */
function reply(outcome: PythonWorkerOutcome, started: number, snapshot?: Uint8Array, codeCache?: PyodideCodeCache): PythonWorkerReply {
  const memoryBytes = plugin?.realm.control.memoryBytes() ?? 0;
  // Assigned inside host callbacks, which control-flow analysis does not see.
  const hit = limitHit as { limit: Limit; size: number } | undefined;
  if (hit) outcome = { ok: false, limit: hit.limit, size: hit.size };
  else if (!outcome.ok && 'limit' in outcome && outcome.limit === 'memory') outcome.size = memoryBytes;
  // Fields added, not spread into a new object (a spread costs ~1.7 µs, as much as the transport).
  const r = outcome as PythonWorkerReply;
  r.memoryBytes = memoryBytes;
  r.elapsedMs = performance.now() - started;
  if (snapshot) r.snapshot = snapshot;
  if (codeCache) r.codeCache = codeCache;
  return r;
}

async function load(task: PythonLoadTask): Promise<{ outcome: PythonWorkerOutcome; snapshot?: Uint8Array; codeCache?: PyodideCodeCache }> {
  if (plugin || loading) throw new Error('this worker already hosts a plugin');
  loading = true;
  const files = checkFiles(task);
  interrupt = new Int32Array(task.interrupt);
  Atomics.store(interrupt, 0, 0);
  const port = task.port;
  const remote = Comlink.wrap<PythonHostApi>(portEndpoint(port));
  const maxPayload = task.maxPayloadBytes;
  const maxRequests = task.maxRequestsPerInvocation;
  const send = (json: string): string | undefined => {
    if (++requests > maxRequests) {
      limitHit ??= { limit: 'requests', size: requests };
      return refusal('requests', `more than ${maxRequests} host requests in one invocation`);
    }
    if (json.length > maxPayload) {
      limitHit ??= { limit: 'payload', size: json.length };
      return refusal('payload', `a host request of ${json.length} bytes exceeds ${maxPayload}`);
    }
    return undefined;
  };
  // Host answers still awaited keep the worker on the event loop (serveWhenIdle's canBlock).
  let outstanding = 0;
  let idle = (): void => undefined;
  const awaited = <T>(answer: Promise<T>): Promise<T> => {
    outstanding++;
    const done = (): void => {
      if (--outstanding === 0) idle();
    };
    answer.then(done, done);
    return answer;
  };
  const post = (json: string): void => {
    if (send(json) !== undefined) return;
    awaited(remote.post(json)).catch(() => undefined);
  };
  const realm = await createPyodideRealm(
    {
      maxMemoryBytes: task.maxMemoryBytes,
      interrupt,
      async request(json) {
        const refused = send(json);
        if (refused !== undefined) return refused;
        try {
          return await awaited(remote.request(json));
        } catch (e) {
          return JSON.stringify({ ok: false, error: { name: 'Error', message: `the host did not answer: ${(e as Error)?.message ?? String(e)}` } });
        }
      },
      post,
      // print() and Python warnings go to the host's log (each line is one host request).
      print(stream, line) {
        post(JSON.stringify({ op: 'log', level: stream === 'stdout' ? 'info' : 'warn', message: line.slice(0, 8192) }));
      },
      timersDone: () => idle(),
    },
    { snapshot: task.snapshot, makeSnapshot: task.makeSnapshot, files: task.pyodide },
  );
  const c = realm.control;
  c.writeText(`${SDK_DIR}/logomesh.py`, LOGOMESH_PY);
  c.writeText(`${SDK_DIR}/${RUNTIME_MODULE}.py`, RUNTIME_PY);
  c.runPython(`import sys\nif ${JSON.stringify(SDK_DIR)} not in sys.path:\n    sys.path.insert(0, ${JSON.stringify(SDK_DIR)})\nimport ${RUNTIME_MODULE}`);
  // Taken before any plugin code ran and before the bridge exists (the snapshot holds no JS references).
  const snapshot = task.makeSnapshot ? new Uint8Array(c.makeSnapshot()) : undefined;
  // Made before any plugin code ran too (a code cache is bytecode: the host keeps it in memory only).
  const codeCache = task.pyodide && !task.pyodide.codeCache ? realm.codeCache() : undefined;
  c.seal();
  c.callPython(RUNTIME_MODULE, 'seal');
  c.installBridge(RUNTIME_MODULE);
  for (const file of files) c.writeText(`${PLUGIN_DIR}/${file.path}`, file.text);
  plugin = { realm, port, remote, maxPayload, maxRequests };
  // Every later task arrives on the invocation port (piscina keeps owning the thread); between
  // tasks the thread blocks unless a host answer or a timer is pending.
  idle = serveWhenIdle(task.invocations, task.wake, handle, PYTHON_CODEC, () => outstanding === 0 && realm.pendingTimers() === 0);
  const answer = c.callPython(RUNTIME_MODULE, 'load', task.pluginId, normalise(task.entryPoint), '');
  // Boot garbage collected before the worker idles (an idle worker may not collect for minutes).
  await collectGarbage();
  return { outcome: decode(String(answer)), snapshot, codeCache };
}

/** Plugin file paths: relative, no `..`, no empty segments. */
function checkFiles(task: PythonLoadTask): { path: string; text: string }[] {
  return task.files.map((file) => {
    const path = normalise(file.path);
    if (typeof file.text !== 'string') throw new TypeError(`plugin file '${path}' has no text`);
    return { path, text: file.text };
  });
}

function normalise(path: string): string {
  const p = posix.normalize(String(path).replace(/^\.\//, ''));
  if (p.startsWith('/') || p === '..' || p.startsWith('../') || p === '.' || p.includes('\0')) {
    throw new TypeError(`plugin file path '${path}' is not inside the plugin folder`);
  }
  return p;
}

/** The runtime module answers `kind\npayload`: ok + JSON text, none, error + JSON, limit + name. */
function decode(answer: string): PythonWorkerOutcome {
  const cut = answer.indexOf('\n');
  const kind = cut < 0 ? answer : answer.slice(0, cut);
  const rest = cut < 0 ? '' : answer.slice(cut + 1);
  switch (kind) {
    case 'ok': {
      const max = plugin?.maxPayload ?? Infinity;
      if (rest.length > max) return { ok: false, limit: 'payload', size: rest.length };
      return { ok: true, value: rest };
    }
    case 'none':
      return { ok: true, value: null };
    case 'limit':
      return { ok: false, limit: rest === 'memory' ? 'memory' : 'interrupted', size: 0 };
    case 'error': {
      try {
        const e = JSON.parse(rest) as { name?: unknown; message?: unknown; stack?: unknown };
        return {
          ok: false,
          error: {
            name: typeof e.name === 'string' ? e.name : 'Error',
            message: typeof e.message === 'string' ? e.message : 'error',
            stack: typeof e.stack === 'string' ? e.stack : undefined,
          },
        };
      } catch {
        return { ok: false, error: { name: 'Error', message: rest } };
      }
    }
    default:
      return { ok: false, error: { name: 'Error', message: `unexpected answer from the Python runtime: ${answer.slice(0, 200)}` } };
  }
}

function refusal(code: 'requests' | 'payload', message: string): string {
  return JSON.stringify({ ok: false, error: { name: 'ResourceLimitError', message, code } });
}

function loadedPlugin(): Plugin {
  if (!plugin) throw new Error('no plugin is loaded in this worker');
  return plugin;
}

/**
 * A full GC of this worker's heap, without --expose-gc: `vm.measureMemory` with eager execution
 * runs one (its ExperimentalWarning is not printed: the result is not used).
 */
async function collectGarbage(): Promise<void> {
  const emitWarning = process.emitWarning;
  let measured: Promise<unknown>;
  process.emitWarning = (() => undefined) as typeof process.emitWarning;
  try {
    measured = vm.measureMemory({ mode: 'summary', execution: 'eager' });
  } catch {
    return;
  } finally {
    process.emitWarning = emitWarning;
  }
  await measured.catch(() => undefined);
}
