import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../errors.js';

/**
 * How one runtime writes its tasks and replies as text on the invocation channel. Text, not
 * objects: structured-cloning a small object costs more than the rest of a Wasm call's
 * transport (benchmarks/); plugin JSON travels as it is, not escaped again.
 */
export interface InvocationCodec<Task, Reply> {
  task: TextCodec<Task>;
  reply: TextCodec<Reply>;
}

export interface TextCodec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

/** The worker's end of a channel: the port, and the slot the host bumps after each task it posts (wakes a worker waiting between tasks). */
export interface InvocationEnd {
  port: MessagePort;
  wake: SharedArrayBuffer;
}

/** One message: the task's id, a newline, the encoded task or reply. */
export function frame(id: number, body: string): string {
  return `${id}\n${body}`;
}

export function unframe(message: string): { id: number; body: string } {
  const cut = message.indexOf('\n');
  return { id: Number(message.slice(0, cut)), body: message.slice(cut + 1) };
}

/**
 * Runs `fn` once every microtask queued so far, and every one those queue in turn, has run:
 * V8 drains the microtask queue before Node takes its next-tick queue. An endless chain of
 * microtasks holds `fn` back for good. Cheaper than a macrotask (`setImmediate`).
 */
export function afterMicrotasks(fn: () => void): void {
  queueMicrotask(() => process.nextTick(fn));
}

/**
 * The worker end of a runtime's invocation channel for a worker that sometimes has
 * asynchronous work between tasks (Python: host requests, timers, async methods). Worker
 * runtimes hand their first task (load) to piscina and every later one over this port:
 * piscina's task hand-off costs more than the rest of a call (see benchmarks/), while piscina
 * keeps owning the thread (start, limits, errors, termination).
 *
 * Each task is handled as piscina would (the same handler); its reply is posted, with the
 * task's id, once the microtasks the task queued have all run ({@link afterMicrotasks}), and
 * only then is the next task taken. After a reply, while `canBlock()` holds (nothing pending
 * that needs the event loop: no host answer awaited, no timer), the thread waits for the next
 * task in `Atomics.wait` on slot 0 of `wake` as {@link serveBlocking} does (no event-loop turn
 * per task, no CPU while idle); otherwise tasks arrive as events until the returned `idle()`
 * is called at a moment `canBlock()` may have become true (the last host answer arrived, the
 * last timer fired). The first task after load always arrives as an event (the load task's
 * reply is still to be posted by piscina when this is called).
 *
 * @example
 * const idle = serveWhenIdle(task.invocations, task.wake, handle, PYTHON_CODEC, () => outstanding === 0 && realm.pendingTimers() === 0);
 */
export function serveWhenIdle<Task, Reply>(
  port: MessagePort,
  wake: SharedArrayBuffer,
  handle: (task: Task) => Reply | Promise<Reply>,
  codec: InvocationCodec<Task, Reply>,
  canBlock: () => boolean,
): () => void {
  const signal = new Int32Array(wake);
  const queued: string[] = [];
  let busy = false;
  let scheduled = false;
  const take = (message: string): void => {
    busy = true;
    const { id, body } = unframe(message);
    const answer = (reply: Reply): void =>
      afterMicrotasks(() => {
        port.postMessage(frame(id, codec.reply.encode(reply)));
        busy = false;
        const next = queued.shift();
        if (next === undefined) waitForTask();
        else take(next);
      });
    const reply = handle(codec.task.decode(body));
    if (reply instanceof Promise) void reply.then(answer);
    else answer(reply);
  };
  // Called from a next-tick callback: while it waits, the event loop stays where it is.
  const waitForTask = (): void => {
    scheduled = false;
    while (!busy && queued.length === 0 && canBlock()) {
      // Read before taking: a task posted after this read bumps the slot, so the wait returns at once.
      const seen = Atomics.load(signal, 0);
      const m = receiveMessageOnPort(port);
      if (m) return take(m.message as string);
      Atomics.wait(signal, 0, seen);
    }
  };
  port.on('message', (message: string) => {
    if (busy) queued.push(message);
    else take(message);
  });
  return () => {
    if (scheduled || busy) return;
    scheduled = true;
    process.nextTick(waitForTask);
  };
}

/**
 * The worker end for a worker that has nothing to do between tasks (WebAssembly: no timers,
 * no promises): once the load task has returned, the thread blocks in `Atomics.wait` on slot 0
 * of `wake` and, each time the host bumps it, takes the tasks waiting on `port` with
 * `receiveMessageOnPort` and answers them. No event-loop turn per task (cheaper than
 * {@link serveWhenIdle}), no CPU while idle; `Worker.terminate()` still ends it.
 *
 * @example
 * serveBlocking(task.invocations, task.wake, handle, WASM_CODEC); // at the end of the load task
 */
export function serveBlocking<Task, Reply>(
  port: MessagePort,
  wake: SharedArrayBuffer,
  handle: (task: Task) => Reply,
  codec: InvocationCodec<Task, Reply>,
): void {
  const signal = new Int32Array(wake);
  // After the load task's reply has gone out (piscina posts it when the handler returns).
  setImmediate(() => {
    for (;;) {
      // Read before draining: a task posted after this read bumps the slot, so the wait returns at once.
      const seen = Atomics.load(signal, 0);
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const { id, body } = unframe(m.message as string);
        port.postMessage(frame(id, codec.reply.encode(handle(codec.task.decode(body)))));
      }
      Atomics.wait(signal, 0, seen);
    }
  });
}

/**
 * What a worker sends back for an error thrown while handling a task: its name, message and
 * stack as plain strings (the host wraps them in a PluginError).
 *
 * @example
 * errorWithStack(new TypeError('bad')); // { name: 'TypeError', message: 'bad', stack: 'TypeError: bad\n    at …' }
 */
export function errorWithStack(e: unknown): SerializedError {
  const err = e as { name?: unknown; message?: unknown; stack?: unknown };
  return {
    name: typeof err?.name === 'string' ? err.name : 'Error',
    message: typeof err?.message === 'string' ? err.message : String(e),
    stack: typeof err?.stack === 'string' ? err.stack : undefined,
  };
}
