/**
 * The worker side of the WebAssembly runtime: a piscina task handler that keeps one plugin
 * instance per worker thread (the pool has exactly one thread, so state is stable) and
 * marshals JSON text through the plugin's linear memory. Host imports post gateway requests
 * on the port the host handed over at load: `log` and `emit` fire-and-forget; `request`
 * blocks in `Atomics.wait` until the host posts the answer and notifies (see wasm-answers.ts).
 *
 * @example
 * // Run by piscina; the host sends:
 * await pool.run({ type: 'invoke', exports: ['lm_upper'], json: '["hi"]' });
 * // → { ok: true, value: { results: ['"HI"'] }, sent: 0, memoryBytes: 65536, elapsedMs: 0.1 }
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { GatewayRequest } from '../protocol.js';
import { errorWithStack, serveBlocking } from '../invocation-channel.js';
import { jsonDepth, MAX_JSON_DEPTH } from '../js/wire.js';
import { DESCRIBE_EXPORT, HOST_IMPORT_MODULE, LOG_LEVELS, REQUEST_IMPORT } from './wasm-abi.js';
import { WASM_CODEC, type WasmLoadTask, type WasmPortAnswer, type WasmPortAsk, type WasmPortRequest, type WasmWorkerOutcome, type WasmWorkerReply, type WasmWorkerTask } from './wasm-protocol.js';

type JsonExport = (...args: number[]) => bigint | number[];

/** The parts of the WebAssembly JS API used here (the project's `lib` has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Plugin {
  exports: Record<string, unknown>;
  memory: WasmMemory;
  alloc: (len: number) => number;
  dealloc?: (ptr: number, len: number) => void;
  port: MessagePort;
  /** Slot 0: seq of the last answer the host posted. */
  signal: Int32Array;
  maxPayload: number;
  maxRequests: number;
}

/** A limit the worker enforces; the invocation fails without ending the plugin. */
class LimitReached extends Error {
  constructor(
    readonly limit: 'payload' | 'requests',
    readonly size: number,
  ) {
    super(`${limit} limit reached (${size})`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
let plugin: Plugin | undefined;
let sent = 0;
let requests = 0;
/** When the running task's deadline passes (performance.now()): no wait for an answer goes beyond it. */
let waitUntil = Infinity;
/** The running task's `caller`, echoed in its asks. */
let caller: number | undefined;
/** Set when a limit was hit, even if the plugin caught the exception (wasm exception handling can catch it). */
let limitHit: LimitReached | undefined;

export default function handle(task: WasmWorkerTask): WasmWorkerReply {
  const started = performance.now();
  requests = 0;
  limitHit = undefined;
  waitUntil = task.waitMs === undefined ? Infinity : started + task.waitMs;
  caller = task.caller;
  let outcome: WasmWorkerOutcome;
  try {
    const value = task.type === 'load' ? load(task) : { results: task.exports.map((name) => invoke(name, task.json)) };
    outcome = { ok: true, value };
  } catch (e) {
    outcome = e instanceof LimitReached ? { ok: false, limit: e.limit, size: e.size } : { ok: false, error: errorWithStack(e) };
  }
  // Assigned inside host imports, which control-flow analysis does not see.
  const hit = limitHit as LimitReached | undefined;
  if (hit) outcome = { ok: false, limit: hit.limit, size: hit.size };
  // Fields added, not spread into a new object: the spread cost more than the rest of a small call.
  const reply = outcome as WasmWorkerReply;
  reply.sent = sent;
  reply.memoryBytes = plugin?.memory.buffer.byteLength ?? 0;
  reply.elapsedMs = performance.now() - started;
  return reply;
}

function load(task: WasmLoadTask): { describe: string | null } {
  if (plugin) throw new Error('this worker already hosts a plugin');
  const module = new wasm.Module(task.bytes);
  // The host imports are created per plugin and close over nothing but this worker's state.
  const imports = { [HOST_IMPORT_MODULE]: { log, emit, [REQUEST_IMPORT]: request } };
  const instance = new wasm.Instance(module, imports);
  const exports = instance.exports;
  if (!(exports.memory instanceof wasm.Memory)) throw new TypeError("the module does not export its memory as 'memory'");
  plugin = {
    exports,
    memory: exports.memory,
    alloc: exports.alloc as Plugin['alloc'],
    dealloc: typeof exports.dealloc === 'function' ? (exports.dealloc as Plugin['dealloc']) : undefined,
    port: task.port,
    signal: new Int32Array(task.signal),
    maxPayload: task.maxPayloadBytes,
    maxRequests: task.maxRequestsPerInvocation,
  };
  // Nothing runs in this thread between tasks (a module has no timers or promises): it blocks.
  serveBlocking(task.invocations, task.wake, handle, WASM_CODEC);
  const describe = exports[DESCRIBE_EXPORT];
  return { describe: typeof describe === 'function' ? readResult((describe as JsonExport)()) : null };
}

function invoke(name: string, json: string): string | null {
  const p = loaded();
  const fn = p.exports[name];
  if (typeof fn !== 'function') throw new TypeError(`the module has no export '${name}'`);
  const { ptr, len } = writeText(p, json);
  const result = (fn as JsonExport)(ptr, len);
  p.dealloc?.(ptr, len);
  return readResult(result);
}

/** Reads the JSON text a `(ptr, len)` result points at, copies it out, then frees it. */
function readResult(result: bigint | number[]): string | null {
  const p = loaded();
  let ptr: number;
  let len: number;
  if (typeof result === 'bigint') {
    ptr = Number(BigInt.asUintN(32, result >> 32n));
    len = Number(BigInt.asUintN(32, result));
  } else {
    ptr = result[0] >>> 0;
    len = result[1] >>> 0;
  }
  if (len === 0) return null;
  if (len > p.maxPayload) throw new LimitReached('payload', len);
  const text = decode(view(ptr, len, 'the result'));
  p.dealloc?.(ptr, len);
  return text;
}

function log(level: number, ptr: number, len: number): void {
  const name = LOG_LEVELS[level];
  if (name === undefined) throw new RangeError(`log level ${level} is not 0 (debug) to 3 (error)`);
  send({ op: 'log', level: name, message: readText(ptr, len) });
}

function emit(topicPtr: number, topicLen: number, dataPtr: number, dataLen: number): void {
  const topic = readText(topicPtr, topicLen);
  let data: unknown;
  if (dataLen !== 0) {
    const json = readText(dataPtr, dataLen);
    if (jsonDepth(json) > MAX_JSON_DEPTH) throw new RangeError(`emit data is nested deeper than ${MAX_JSON_DEPTH} levels`);
    data = JSON.parse(json);
  }
  send(data === undefined ? { op: 'emit', topic } : { op: 'emit', topic, data });
}

function send(request: GatewayRequest): void {
  const p = budget();
  const message: WasmPortRequest = { type: 'request', seq: ++sent, request };
  p.port.postMessage(message);
}

/**
 * `request(ptr, len) -> i64`: posts the gateway request (JSON text, checked by the host) and
 * blocks until the host answers, at most until the task's deadline (the host ends the worker
 * then; the bound only keeps a lost answer from hanging it). The answer JSON is written to
 * memory from the plugin's `alloc`, and its place returned as `ptr << 32 | len`.
 */
function request(ptr: number, len: number): bigint {
  const json = readText(ptr, len);
  const p = budget();
  const seq = ++sent;
  const ask: WasmPortAsk = { type: 'ask', seq, json, caller };
  p.port.postMessage(ask);
  const answer = awaitAnswer(p, seq);
  if ('limit' in answer) {
    limitHit = new LimitReached('payload', answer.limit);
    throw limitHit;
  }
  const size = Buffer.byteLength(answer.json, 'utf8');
  if (size > p.maxPayload) {
    limitHit = new LimitReached('payload', size);
    throw limitHit;
  }
  const { ptr: at, len: written } = writeText(p, answer.json, size);
  return (BigInt(at) << 32n) | BigInt(written);
}

/**
 * Copies `text` as UTF-8 into memory from the plugin's `alloc`: its size first, then written
 * in place (`TextEncoder.encode` makes a copy and costs more than the rest of a small call).
 */
function writeText(p: Plugin, text: string, size = Buffer.byteLength(text, 'utf8')): { ptr: number; len: number } {
  const ptr = p.alloc(size) >>> 0;
  encoder.encodeInto(text, view(ptr, size, 'alloc returned'));
  return { ptr, len: size };
}

function awaitAnswer(p: Plugin, seq: number): { seq: number; json: string } | { seq: number; limit: number } {
  for (;;) {
    const last = Atomics.load(p.signal, 0);
    if (((last - seq) | 0) >= 0) {
      // Answers to asks this worker gave up on may come first: skip them by seq.
      for (let m = receiveMessageOnPort(p.port); m; m = receiveMessageOnPort(p.port)) {
        const answer = m.message as WasmPortAnswer;
        if (answer.seq === seq) return answer;
      }
      throw new Error(`the host signalled the answer to request ${seq} but none was there`);
    }
    const left = waitUntil - performance.now();
    if (left <= 0 || Atomics.wait(p.signal, 0, last, left) === 'timed-out') {
      throw new Error(`no answer from the host to request ${seq} before the deadline`);
    }
  }
}

/** Counts one host import against the invocation's budget; past it the import throws. */
function budget(): Plugin {
  const p = loaded();
  if (++requests > p.maxRequests) {
    limitHit = new LimitReached('requests', requests);
    throw limitHit;
  }
  return p;
}

function readText(ptr: number, len: number): string {
  len >>>= 0;
  if (len > loaded().maxPayload) throw new LimitReached('payload', len);
  return decode(view(ptr >>> 0, len, 'a host import argument'));
}

/** A bounds-checked view of plugin memory; re-read every time because memory.grow detaches buffers. */
function view(ptr: number, len: number, what: string): Uint8Array {
  const buffer = loaded().memory.buffer;
  if (ptr + len > buffer.byteLength) {
    throw new RangeError(`${what} ${ptr}..${ptr + len} is outside memory (${buffer.byteLength} bytes)`);
  }
  return new Uint8Array(buffer, ptr, len);
}

function decode(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new TypeError('text from the plugin is not valid UTF-8');
  }
}

function loaded(): Plugin {
  if (!plugin) throw new Error('no plugin is loaded in this worker');
  return plugin;
}
