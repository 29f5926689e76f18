import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fleet } from './fleet.js';
import type { CpuSample } from './idle-cpu.js';
import type { RssSample } from './idle-memory.js';
import type { IdleChildArgs, IdleChildMessage, WindowMessage } from './child-protocol.js';

const CHILD = fileURLToPath(new URL('./idle-child.js', import.meta.url));

export interface IdleOptions {
  /** Sets of children (one per kind), one set after the other. */
  rounds: number;
  memoryN: number;
  cpuN: number;
  windowMs: number;
  /** Back-to-back CPU windows per round; the last one is the steady state. */
  windows: number;
  /** The children of each round, run side by side. Default ours (monitoring on), unmonitored (ours with monitoring off), raw. */
  kinds?: Fleet['kind'][];
}

/** One child process and the messages it has sent, awaited by type. */
class IdleChild {
  private readonly process: ChildProcess;
  private readonly inbox: IdleChildMessage[] = [];
  private readonly waiters: { type: IdleChildMessage['type']; resolve(m: IdleChildMessage): void; reject(e: Error): void }[] = [];
  private failure?: Error;
  readonly exited: Promise<void>;

  constructor(readonly args: IdleChildArgs) {
    this.process = fork(CHILD, [args.kind, args.tmp, String(args.memoryN), String(args.cpuN)], {
      execArgv: ['--no-node-snapshot', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process.on('message', (m: IdleChildMessage) => {
      if (m.type === 'error') return this.fail(new Error(`idle child (${args.kind}) failed:\n${m.message}`));
      this.inbox.push(m);
      this.deliver();
    });
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => {
        if (code !== 0) this.fail(new Error(`idle child (${args.kind}) exited with ${signal ?? `code ${code}`}`));
        else this.fail(new Error(`idle child (${args.kind}) exited before sending what was awaited`));
        resolve();
      });
    });
  }

  next<T extends IdleChildMessage['type']>(type: T): Promise<Extract<IdleChildMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ type, resolve: resolve as (m: IdleChildMessage) => void, reject });
      this.deliver();
    });
  }

  send(message: WindowMessage): void {
    this.process.send(message);
  }

  kill(): void {
    if (this.process.exitCode === null) this.process.kill();
  }

  private deliver(): void {
    for (let i = 0; i < this.waiters.length; i++) {
      const waiter = this.waiters[i];
      const at = this.inbox.findIndex((m) => m.type === waiter.type);
      if (at >= 0) {
        waiter.resolve(this.inbox.splice(at, 1)[0]);
        this.waiters.splice(i--, 1);
      } else if (this.failure) {
        waiter.reject(this.failure);
        this.waiters.splice(i--, 1);
      }
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.deliver();
  }
}

/**
 * Runs the idle benchmarks: per round, an `ours` child, an `unmonitored` child (ours with
 * monitoring off) and a `raw` child side by side. Each reports its RSS reading, loads its full
 * fleet and settles; then all get the same idle windows at once, so their CPU readings share
 * the machine's mode.
 *
 * @example
 * const { memory, cpu } = await runIdle(tmp, { rounds: 2, memoryN: 50, cpuN: 100, windowMs: 5000, windows: 6 });
 */
export async function runIdle(tmp: string, options: IdleOptions): Promise<{ memory: RssSample[]; cpu: CpuSample[] }> {
  const memory: RssSample[] = [];
  const cpu: CpuSample[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const children = (options.kinds ?? (['ours', 'unmonitored', 'raw'] as const)).map(
      (kind) => new IdleChild({ kind, tmp: join(tmp, `idle-${round}-${kind}`), memoryN: options.memoryN, cpuN: options.cpuN }),
    );
    try {
      for (const m of await Promise.all(children.map((c) => c.next('memory')))) memory.push(m.sample);
      await Promise.all(children.map((c) => c.next('ready')));
      for (const c of children) c.send({ type: 'window', ms: options.windowMs, count: options.windows });
      for (const m of await Promise.all(children.map((c) => c.next('cpu')))) cpu.push(...m.samples.map((s) => ({ ...s, round })));
      await Promise.all(children.map((c) => c.exited));
    } finally {
      for (const c of children) c.kill();
    }
  }
  return { memory, cpu };
}
