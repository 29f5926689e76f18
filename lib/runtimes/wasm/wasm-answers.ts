/**
 * The host side of `logomesh.request`, the host import that waits for an answer. The worker
 * posts the request (JSON text, with its seq) on the plugin's port and blocks in
 * `Atomics.wait` on slot 0 of {@link WasmAnswers.signal}; this class runs the request
 * through the gateway (schema, rate, permission, as for every runtime), posts the answer
 * JSON on the port, then stores the seq in the slot and notifies. The worker wakes and takes
 * the answer with `receiveMessageOnPort`, so no answer buffer of fixed size is needed.
 *
 * An answer that comes after the plugin crashed or was disposed finds no port and is
 * dropped; a stale one (the worker stopped waiting) is skipped by the worker by its seq.
 *
 * A WebAssembly plugin runs one invocation at a time, so a call back into a plugin that is
 * blocked waiting for that very call would deadlock until the deadline. Each request runs
 * with an {@link AsyncLocalStorage} record of who waits on it; a `call` whose target waits
 * in the chain that led here (itself included) is answered at once with a `CallCycleError`
 * instead (the host refuses such calls through plugins of any runtime too, see
 * `PluginHost.invoke`).
 *
 * @example
 * const answers = new WasmAnswers(init, maxPayloadBytes, () => this.port);
 * await this.run(answers.begin({ type: 'load', bytes, port, signal: answers.signal, … }), 'load');
 * await this.run(answers.begin({ type: 'invoke', exports, json }, options), operation, options);
 * port.on('message', (m) => m.type === 'ask' && answers.answer(m));
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MessagePort } from 'node:worker_threads';
import { CallCycleError, InvalidArgumentError, type SerializedError } from '../../errors.js';
import { errorToWire, jsonDepth, MAX_JSON_DEPTH, nullPrototype } from '../js/wire.js';
import type { InvocationOptions, RuntimeInit } from '../runtime.js';
import { EXPORT_PREFIX, HANDLER_PREFIX, HOOK_PREFIX } from './wasm-abi.js';
import type { WasmPortAnswer, WasmPortAsk, WasmWorkerTask } from './wasm-protocol.js';

/** A blocking request a WebAssembly plugin is waiting on; gateway work for it runs with this as context. */
interface Waiting {
  id: number;
  pluginId: string;
  /** The request whose answer waits on the invocation that made this one. */
  parent?: Waiting;
  waiting: boolean;
}

const waitingOn = new AsyncLocalStorage<Waiting>();
/** Requests being answered, by id: a task names the one it answers (`caller`) by number, as it crosses to the worker. */
const open = new Map<number, Waiting>();
let nextId = 1;

/**
 * Added to the deadline the worker waits for an answer: the host's watchdog ends the worker at
 * the deadline (so the call is a PluginTimeoutError and the plugin crashed); the worker's own
 * bound only keeps a lost answer from blocking it forever, and must not win that race.
 */
export const WAIT_GRACE_MS = 1000;

/** What the plugin finds in its memory after `logomesh.request`. */
export type WasmAnswer = { ok: true; value?: unknown } | { ok: false; error: SerializedError };

export class WasmAnswers {
  /** Slot 0: the seq of the last answer posted. Shared with the worker through the load task. */
  readonly signal = new SharedArrayBuffer(4);
  private readonly slot = new Int32Array(this.signal);

  constructor(
    private readonly init: RuntimeInit,
    private readonly maxPayload: number,
    /** The runtime's end of the port; undefined once the plugin crashed or was disposed. */
    private readonly port: () => MessagePort | undefined,
  ) {}

  /**
   * Called with each task, in the caller's context: stamps the longest the worker may wait for
   * one answer (the task's hard deadline) and, for a method call, which blocking request it
   * answers. A method call into a plugin that is itself waiting for that call is refused
   * (a cycle through a JS plugin, when its requests keep the async context).
   */
  begin<T extends WasmWorkerTask>(task: T, options: InvocationOptions = {}): T {
    const isMethodCall = task.type === 'invoke' && !task.exports.some((e) => e.startsWith(HANDLER_PREFIX) || e.startsWith(HOOK_PREFIX));
    const parent = isMethodCall ? waitingOn.getStore() : undefined;
    if (this.waitsIn(parent, this.init.pluginId)) throw cycle(parent!, this.init.pluginId, task.type === 'invoke' ? task.exports[0].slice(EXPORT_PREFIX.length) : '?');
    task.caller = parent?.waiting ? parent.id : undefined;
    const limit = this.init.limits.executionTimeoutMs;
    // As DeadlineWatchdog.race: a probe's own deadline never shortens the plugin's.
    const hard = options.crashOnTimeout === false ? Math.max(limit, options.deadlineMs ?? limit) : (options.deadlineMs ?? limit);
    task.waitMs = hard + WAIT_GRACE_MS;
    return task;
  }

  /** Answers one blocking request from the worker; called in port order, after the requests posted before it. */
  answer(message: WasmPortAsk): void {
    const parent = message.caller === undefined ? undefined : open.get(message.caller);
    const record: Waiting = { id: nextId++, pluginId: this.init.pluginId, parent, waiting: true };
    open.set(record.id, record);
    // A microtask, as fire-and-forget requests: those posted earlier reach the gateway first.
    void Promise.resolve()
      .then(() => this.ask(message.json, record))
      .then(
        (value): WasmAnswer => ({ ok: true, value }),
        (error: unknown): WasmAnswer => ({ ok: false, error: errorToWire(error) }),
      )
      .then((answer) => {
        record.waiting = false;
        open.delete(record.id);
        this.reply(message.seq, answer);
      });
  }

  private ask(json: string, record: Waiting): Promise<unknown> {
    const { pluginId, gateway } = this.init;
    if (jsonDepth(json) > MAX_JSON_DEPTH) throw new InvalidArgumentError(`request is nested deeper than ${MAX_JSON_DEPTH} levels`, { pluginId });
    let request: unknown;
    try {
      request = nullPrototype(JSON.parse(json));
    } catch (e) {
      throw new InvalidArgumentError(`request is not JSON text: ${(e as Error).message}`, { pluginId });
    }
    const target = request !== null && typeof request === 'object' && (request as { op?: unknown }).op === 'call' ? (request as { pluginId?: unknown }).pluginId : undefined;
    if (typeof target === 'string' && this.waitsIn(record, target)) throw cycle(record, target, String((request as { method?: unknown }).method));
    return waitingOn.run(record, () => gateway.request(request));
  }

  private reply(seq: number, answer: WasmAnswer): void {
    const port = this.port();
    if (!port) return; // crashed or disposed: nobody waits
    let json: string;
    try {
      json = JSON.stringify(answer);
    } catch (e) {
      json = JSON.stringify({ ok: false, error: errorToWire(new InvalidArgumentError(`the answer cannot be sent as JSON: ${(e as Error).message}`)) });
    }
    const message: WasmPortAnswer = json.length > this.maxPayload ? { seq, limit: json.length } : { seq, json };
    port.postMessage(message);
    // The message is in the worker's queue once postMessage returns: wake the worker. The slot
    // only moves forward (int32, wrapping), so a late answer to an abandoned ask cannot hide a newer one.
    for (let cur = Atomics.load(this.slot, 0); ((seq - cur) | 0) > 0; cur = Atomics.load(this.slot, 0)) {
      if (Atomics.compareExchange(this.slot, 0, cur, seq | 0) === cur) break;
    }
    Atomics.notify(this.slot, 0);
  }

  /** Whether `pluginId` is blocked waiting for an answer somewhere up the chain from `from`. */
  private waitsIn(from: Waiting | undefined, pluginId: string): boolean {
    for (let w = from; w?.waiting; w = w.parent) if (w.pluginId === pluginId) return true;
    return false;
  }


}

/** The refusal of a call to `target`, which waits in the chain of requests ending at `from` (the caller's). */
function cycle(from: Waiting, target: string, method: string): CallCycleError {
  const chain: string[] = [];
  for (let w: Waiting | undefined = from; w?.waiting; w = w.parent) chain.unshift(w.pluginId);
  return new CallCycleError(target, method, chain);
}
