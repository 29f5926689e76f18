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

/** The host's end of a channel; `wake` is set for a worker that blocks between tasks ({@link serveBlocking}). */
export interface InvocationEnd {
  port: MessagePort;
  wake?: SharedArrayBuffer;
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
 * The worker end of a runtime's invocation channel: each task that arrives on `port` is
 * handled as piscina would (the same handler), and its reply posted back with the task's id.
 * Worker runtimes hand their first task (load) to piscina and every later one over this
 * port: piscina's task hand-off costs more than the rest of a call (see benchmarks/), while
 * piscina keeps owning the thread (start, limits, errors, termination).
 *
 * @example
 * // in the worker's load task:
 * serveInvocations(task.invocations, handle, PYTHON_CODEC);
 */
export function serveInvocations<Task, Reply>(
  port: MessagePort,
  handle: (task: Task) => Reply | Promise<Reply>,
  codec: InvocationCodec<Task, Reply>,
): void {
  port.on('message', async (message: string) => {
    const { id, body } = unframe(message);
    const reply = await handle(codec.task.decode(body));
    port.postMessage(frame(id, codec.reply.encode(reply)));
  });
}

/**
 * The worker end for a worker that has nothing to do between tasks (WebAssembly: no timers,
 * no promises): once the load task has returned, the thread blocks in `Atomics.wait` on slot 0
 * of `wake` and, each time the host bumps it, takes the tasks waiting on `port` with
 * `receiveMessageOnPort` and answers them. No event-loop turn per task (cheaper than
 * {@link serveInvocations}), no CPU while idle; `Worker.terminate()` still ends it.
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
