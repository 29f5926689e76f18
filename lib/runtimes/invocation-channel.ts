import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../errors.js';

/** Host → worker on the invocation port. */
export interface InvocationMessage<Task> {
  id: number;
  task: Task;
}

/** Worker → host on the invocation port. */
export interface InvocationReplyMessage<Reply> {
  id: number;
  reply: Reply;
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
 * serveInvocations(task.invocations, handle);
 */
export function serveInvocations<Task, Reply>(port: MessagePort, handle: (task: Task) => Reply | Promise<Reply>): void {
  port.on('message', async ({ id, task }: InvocationMessage<Task>) => {
    const reply = await handle(task);
    port.postMessage({ id, reply } satisfies InvocationReplyMessage<Reply>);
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
