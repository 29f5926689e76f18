import { expect } from 'chai';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { frame, unframe } from '../../lib/runtimes/invocation-channel.js';

const CHANNEL = new URL('../../lib/runtimes/invocation-channel.js', import.meta.url).href;

// A worker serving its channel with serveWhenIdle, as the Python worker does. Tasks are plain text:
// 'timer' leaves a timer pending for 300 ms (canBlock is false until it fires and calls idle()),
// 'chain' queues 1000 microtasks, the last of which posts 'chain done' on the channel port itself.
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.channel).then(({ serveWhenIdle }) => {
  const codec = { task: { encode: (t) => t, decode: (t) => t }, reply: { encode: (r) => r, decode: (r) => r } };
  let timers = 0;
  let idle = () => undefined;
  const handle = (task) => {
    if (task === 'timer') {
      timers++;
      setTimeout(() => { timers--; idle(); }, 300);
      return 'timer set';
    }
    if (task === 'chain') {
      let n = 0;
      const step = () => { if (++n < 1000) Promise.resolve().then(step); else workerData.port.postMessage('chain done'); };
      Promise.resolve().then(step);
      return 'chain queued';
    }
    if (task === 'later') return new Promise((resolve) => setTimeout(() => resolve('later done'), 20));
    return 'echo ' + task;
  };
  idle = serveWhenIdle(workerData.port, workerData.wake, handle, codec, () => timers === 0);
  parentPort.postMessage('ready');
});
`;

interface Served {
  /** Posts a task; `bump` false skips the wake slot (a waiting worker does not see it). */
  post(task: string, bump?: boolean): number;
  bump(): void;
  /** Everything the worker sent on the channel, in order (replies as `id:body`). */
  seen: string[];
  next(): Promise<string>;
  worker: Worker;
}

async function serve(): Promise<Served> {
  const { port1, port2 } = new MessageChannel();
  const wake = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER, { eval: true, workerData: { channel: CHANNEL, port: port2, wake: wake.buffer }, transferList: [port2 as MessagePort] });
  await new Promise((resolve) => worker.once('message', resolve));
  const seen: string[] = [];
  const waiters: ((m: string) => void)[] = [];
  port1.on('message', (m: string) => {
    const text = m.includes('\n') ? `${unframe(m).id}:${unframe(m).body}` : m;
    seen.push(text);
    waiters.shift()?.(text);
  });
  let id = 0;
  const bump = () => {
    Atomics.add(wake, 0, 1);
    Atomics.notify(wake, 0);
  };
  return {
    post(task, doBump = true) {
      port1.postMessage(frame(++id, task));
      if (doBump) bump();
      return id;
    },
    bump,
    seen,
    next: () => new Promise((resolve) => waiters.push(resolve)),
    worker,
  };
}

const quiet = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Posts `task` without waking the worker: it must stay unanswered until the slot is bumped. */
async function takenOnlyAfterBump(s: Served, task: string): Promise<string> {
  const seen = s.seen.length;
  s.post(task, false);
  await quiet(150);
  expect(s.seen).to.have.length(seen);
  const reply = s.next();
  s.bump();
  return reply;
}

describe('serveWhenIdle (a worker that blocks between tasks unless it has async work)', () => {
  let s: Served;
  beforeEach(async () => {
    s = await serve();
  });
  afterEach(async () => {
    await s.worker.terminate();
  });

  it('answers each task with its id, in order, sync and async alike', async () => {
    s.post('a');
    expect(await s.next()).to.equal('1:echo a');
    s.post('later');
    expect(await s.next()).to.equal('2:later done');
    s.post('b');
    expect(await s.next()).to.equal('3:echo b');
  });

  it('waits in Atomics.wait between tasks: a task posted without waking it is taken only once the slot is bumped', async () => {
    s.post('first');
    expect(await s.next()).to.equal('1:echo first');
    await quiet(50); // the worker has reached its wait
    expect(await takenOnlyAfterBump(s, 'unseen')).to.equal('2:echo unseen');
  });

  it('serves tasks as events while a timer is pending, and waits again once idle() says it may', async () => {
    s.post('first');
    await s.next();
    s.post('timer');
    expect(await s.next()).to.equal('2:timer set');
    // The timer is pending: the worker is on its event loop, so an unbumped task is taken.
    s.post('evented', false);
    expect(await s.next()).to.equal('3:echo evented');
    // The timer fired and called idle(): the worker waits in Atomics.wait again.
    await quiet(600);
    expect(await takenOnlyAfterBump(s, 'blocked')).to.equal('4:echo blocked');
  });

  it("posts a task's reply only after every microtask it queued has run", async () => {
    s.post('first');
    await s.next();
    s.post('chain');
    const first = await s.next();
    const second = await s.next();
    expect([first, second]).to.deep.equal(['chain done', '2:chain queued']);
  });
});
