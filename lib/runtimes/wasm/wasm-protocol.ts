/**
 * Everything that crosses between the WasmRuntime (host thread) and its piscina worker, and
 * how invocations after load are written as text ({@link WASM_CODEC}). Plugin values travel
 * as JSON text; the worker never parses a result, the host does (depth-checked, into
 * null-prototype objects).
 */
import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../../errors.js';
import type { InvocationCodec } from '../invocation-channel.js';
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
  /** Where every later task arrives (serveBlocking); transferred. */
  invocations: MessagePort;
  /** The worker blocks on slot 0 between tasks; the host bumps it after posting one. */
  wake: SharedArrayBuffer;
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

/**
 * Invocations after load as text, in a positional format (JSON headers cost more than the
 * rest of a small call's transport, benchmarks/). An invoke task is
 * `waitMs|caller|["export",…]` (empty when unset), a newline, and the argument JSON as it is.
 * A reply with results is `R` + `sent memoryBytes elapsed(0.1 µs) len,len,…` (-1: null), a
 * newline and the results joined; any other reply is `J` + its JSON.
 *
 * @example
 * WASM_CODEC.task.encode({ type: 'invoke', exports: ['lm_upper'], json: '["hi"]' }); // '||["lm_upper"]\n["hi"]'
 */
export const WASM_CODEC: InvocationCodec<WasmWorkerTask, WasmWorkerReply> = {
  task: {
    encode(task) {
      if (task.type !== 'invoke') throw new TypeError(`a ${task.type} task does not travel on the invocation channel`);
      return `${task.waitMs ?? ''}|${task.caller ?? ''}|${JSON.stringify(task.exports)}\n${task.json}`;
    },
    decode(text) {
      const a = text.indexOf('|');
      const b = text.indexOf('|', a + 1);
      const n = text.indexOf('\n', b + 1);
      const task: WasmInvokeTask = { type: 'invoke', exports: JSON.parse(text.slice(b + 1, n)) as string[], json: text.slice(n + 1) };
      if (a > 0) task.waitMs = Number(text.slice(0, a));
      if (b > a + 1) task.caller = Number(text.slice(a + 1, b));
      return task;
    },
  },
  reply: {
    encode(reply) {
      if (!reply.ok || !('results' in reply.value)) return `J${JSON.stringify(reply)}`;
      const { results } = reply.value;
      const lengths = results.map((r) => (r === null ? -1 : r.length)).join(',');
      return `R${reply.sent} ${reply.memoryBytes} ${Math.round(reply.elapsedMs * 1e4)} ${lengths}\n${results.join('')}`;
    },
    decode(text) {
      if (text[0] === 'J') return JSON.parse(text.slice(1)) as WasmWorkerReply;
      const n = text.indexOf('\n');
      const [sent, memoryBytes, elapsed, lengths] = text.slice(1, n).split(' ');
      let at = n + 1;
      const results = lengths!.split(',').map((field) => {
        const length = Number(field);
        if (length < 0) return null;
        const result = text.slice(at, at + length);
        at += length;
        return result;
      });
      return { ok: true, value: { results }, sent: Number(sent), memoryBytes: Number(memoryBytes), elapsedMs: Number(elapsed) / 1e4 };
    },
  },
};
