/**
 * Everything that crosses between the WasmRuntime (host thread) and its piscina worker.
 * Types only. Plugin values travel as JSON text; the worker never parses a result, the host
 * does (depth-checked, into null-prototype objects).
 */
import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../../errors.js';
import type { GatewayRequest } from '../protocol.js';

/** Host → worker: a piscina task. */
export type WasmWorkerTask = WasmLoadTask | WasmInvokeTask;

/** Compile and instantiate the module, then call `lm_describe` if it is exported. */
export interface WasmLoadTask {
  type: 'load';
  /** The module's bytes (transferred). */
  bytes: Uint8Array;
  /** Where the worker posts gateway requests (transferred). */
  port: MessagePort;
  /** Where every later task arrives (serveInvocations); transferred. */
  invocations: MessagePort;
  maxPayloadBytes: number;
  /** Host requests one invocation may make; past it the import throws. */
  maxRequestsPerInvocation: number;
  /**
   * Int32 slot 0 holds the seq of the last answer the host posted; the worker `Atomics.wait`s
   * on it in `logomesh.request` and reads the answer with `receiveMessageOnPort`.
   */
  signal: SharedArrayBuffer;
  /** Longest the worker waits for one answer, ms: the task's deadline (stamped by WasmAnswers.begin). */
  waitMs?: number;
  /** The blocking request (of some wasm plugin) this task answers, echoed in the task's asks (stamped by WasmAnswers.begin). */
  caller?: number;
}

/** Call each named export in turn with the same JSON text; stops at the first failure. */
export interface WasmInvokeTask {
  type: 'invoke';
  exports: string[];
  json: string;
  /** Longest the worker waits for one answer, ms: the task's deadline (stamped by WasmAnswers.begin). */
  waitMs?: number;
  /** The blocking request (of some wasm plugin) this task answers, echoed in the task's asks (stamped by WasmAnswers.begin). */
  caller?: number;
}

/** Worker → host: the answer to one task, with the worker's counters after it. */
export type WasmWorkerReply = WasmWorkerOutcome & WasmWorkerStats;

export type WasmWorkerOutcome =
  | { ok: true; value: WasmLoadValue | WasmInvokeValue }
  | { ok: false; error: SerializedError }
  /** The plugin went past a limit the worker enforces (no crash: the call fails). */
  | { ok: false; limit: 'payload' | 'requests'; size: number };

export interface WasmWorkerStats {
  /** Gateway requests posted on the port so far: the host waits until it has seen them all. */
  sent: number;
  /** `memory.buffer.byteLength` after the task. */
  memoryBytes: number;
  /** Time spent running the task in the worker, ms. */
  elapsedMs: number;
}

export interface WasmLoadValue {
  /** JSON text `lm_describe` returned, or null when the module does not export it. */
  describe: string | null;
}

export interface WasmInvokeValue {
  /** JSON text each export returned, in order (null for an empty result). */
  results: (string | null)[];
}

/** Worker → host on the port: one fire-and-forget gateway request. */
export interface WasmPortRequest {
  type: 'request';
  seq: number;
  request: GatewayRequest;
}

/** Worker → host on the port: a gateway request (JSON text, unchecked) the worker blocks on. */
export interface WasmPortAsk {
  type: 'ask';
  seq: number;
  json: string;
  /** The running task's `caller`. */
  caller?: number;
}

export type WasmPortMessage = WasmPortRequest | WasmPortAsk;

/**
 * Host → worker on the port: the answer to the ask with the same seq, as the JSON text the
 * plugin receives, or the size of an answer too large to send.
 */
export type WasmPortAnswer = { seq: number; json: string } | { seq: number; limit: number };
