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
  maxPayloadBytes: number;
  /** Host requests one invocation may make; past it the import throws. */
  maxRequestsPerInvocation: number;
}

/** Call each named export in turn with the same JSON text; stops at the first failure. */
export interface WasmInvokeTask {
  type: 'invoke';
  exports: string[];
  json: string;
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
