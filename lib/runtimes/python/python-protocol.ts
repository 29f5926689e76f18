/**
 * Everything that crosses between the PythonRuntime (host thread) and its piscina worker, and
 * how invocations after load are written as text ({@link PYTHON_CODEC}). Plugin values travel as JSON text; the host parses results (depth-checked,
 * into null-prototype objects). Gateway requests go the other way over comlink
 * ({@link PythonHostApi}), also as JSON text.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../../errors.js';
import type { InvocationCodec } from '../invocation-channel.js';
import type { PyodideCodeCache, PyodideFiles } from './realm.js';

/** Host → worker: a piscina task. */
export type PythonWorkerTask = PythonLoadTask | PythonInvokeTask;

/** Boot Pyodide in the worker's sealed realm, import the plugin and construct its class. */
export interface PythonLoadTask {
  type: 'load';
  pluginId: string;
  /** The plugin's `.py` files (and other text files), paths relative to its folder. */
  files: { path: string; text: string }[];
  /** The manifest's entry point, relative to the plugin folder (a `.py` file). */
  entryPoint: string;
  /** comlink endpoint of the host API ({@link PythonHostApi}); transferred. */
  port: MessagePort;
  /** Where every later task arrives (serveWhenIdle, lib/runtimes/invocation-channel.ts); transferred. */
  invocations: MessagePort;
  /** Slot 0 is bumped by the host after each task it posts on `invocations` (wakes a waiting worker). */
  wake: SharedArrayBuffer;
  /** Pyodide's interrupt buffer: the host stores 2 (SIGINT) at index 0 at a deadline. */
  interrupt: SharedArrayBuffer;
  /** Cap on Pyodide's linear memory (bytes); growing past it fails inside Python with MemoryError. */
  maxMemoryBytes: number;
  maxPayloadBytes: number;
  /** Host requests one invocation may make; past it they fail. */
  maxRequestsPerInvocation: number;
  /**
   * A Pyodide memory snapshot (the `snapshot` of an earlier load's reply, same Pyodide build and
   * worker version): restores a booted interpreter instead of initialising one (~0.4 s vs ~2 s).
   */
  snapshot?: Uint8Array;
  /** Take a snapshot right after boot, before any plugin code runs; returned as the reply's `snapshot`. */
  makeSnapshot?: boolean;
  /**
   * Pyodide's files, read and rewritten once by the host (bytes in SharedArrayBuffers; see
   * `sharedPyodideFiles`); without them the worker reads the package itself. Without a
   * `codeCache` in them the reply carries one, made after boot before any plugin code ran.
   */
  pyodide?: PyodideFiles;
}

/**
 * Run one invocation: a call written positionally (`method`, a newline, the JSON text of its
 * arguments: the hot path) or the JSON text of a `PluginInvocation` (lib/runtimes/protocol.ts).
 */
export interface PythonInvokeTask {
  type: 'invoke';
  invocation: string;
}

/** Worker → host: the answer to one task, with the worker's counters after it. */
export type PythonWorkerReply = PythonWorkerOutcome & PythonWorkerStats;

export type PythonWorkerOutcome =
  /** `value`: for load, JSON text of the `PluginDescription`; for invoke, JSON text of the result (null: None). */
  | { ok: true; value: string | null }
  | { ok: false; error: SerializedError }
  /** The plugin went past a limit the worker enforces (no crash: the call fails). */
  | { ok: false; limit: 'payload' | 'requests' | 'memory' | 'interrupted'; size: number };

export interface PythonWorkerStats {
  /** Pyodide's linear memory size after the task (bytes). */
  memoryBytes: number;
  /** Time spent running the task in the worker, ms. */
  elapsedMs: number;
  /** Load with `makeSnapshot` only: the memory snapshot (≈ 20 MB), taken before the plugin was imported. */
  snapshot?: Uint8Array;
  /** Load with `pyodide` files lacking a code cache only: V8's code cache of Pyodide's scripts. */
  codeCache?: PyodideCodeCache;
}

/** The host API a worker reaches over comlink; every method is one gateway operation. */
export interface PythonHostApi {
  /** `requestJson`: a gateway request (`{op, …}`); answers JSON text of `{ok: true, value}` or `{ok: false, error}`. */
  request(requestJson: string): Promise<string>;
  /** Fire-and-forget variant for log/emit: the worker does not wait for the answer. */
  post(requestJson: string): void;
}

/**
 * Invocations after load as text, in a positional format (JSON headers and object spreads
 * cost as much as the transport of a small call, benchmarks/). An invoke task is its
 * invocation JSON as it is. A reply with a value is `V` + `memoryBytes elapsed(0.1 µs)`, a
 * newline and the value's JSON text as it is; `N` + the same for None; any other reply is
 * `J` + its JSON.
 *
 * @example
 * PYTHON_CODEC.reply.encode({ ok: true, value: '"HI"', memoryBytes: 1, elapsedMs: 0.1 }); // 'V1 1000\n"HI"'
 */
export const PYTHON_CODEC: InvocationCodec<PythonWorkerTask, PythonWorkerReply> = {
  task: {
    encode(task) {
      if (task.type !== 'invoke') throw new TypeError(`a ${task.type} task does not travel on the invocation channel`);
      return task.invocation;
    },
    decode(text) {
      return { type: 'invoke', invocation: text };
    },
  },
  reply: {
    encode(reply) {
      if (!reply.ok) return `J${JSON.stringify(reply)}`;
      const stats = `${reply.memoryBytes} ${Math.round(reply.elapsedMs * 1e4)}`;
      return reply.value === null ? `N${stats}` : `V${stats}\n${reply.value}`;
    },
    decode(text) {
      if (text[0] === 'J') return JSON.parse(text.slice(1)) as PythonWorkerReply;
      const cut = text[0] === 'V' ? text.indexOf('\n') : text.length;
      const space = text.indexOf(' ');
      const memoryBytes = Number(text.slice(1, space));
      const elapsedMs = Number(text.slice(space + 1, cut)) / 1e4;
      return { ok: true, value: text[0] === 'V' ? text.slice(cut + 1) : null, memoryBytes, elapsedMs };
    },
  },
};
