import { expect } from 'chai';
import * as Comlink from 'comlink';
import { existsSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { portEndpoint } from '../../../lib/runtimes/comlink-endpoint.js';
import { PYTHON_CODEC, type PythonLoadTask, type PythonWorkerReply, type PythonWorkerTask } from '../../../lib/runtimes/python/python-protocol.js';
import { frame, unframe } from '../../../lib/runtimes/invocation-channel.js';
import { workerPoolOptions } from '../../../lib/runtimes/worker-runtime.js';
import { createPyodideRealm } from '../../../lib/runtimes/python/realm.js';

const WORKER = fileURLToPath(new URL('../../../lib/runtimes/python/worker.js', import.meta.url));
const MB = 1024 * 1024;

type Answer = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string; code?: string } };

/** The host API as comlink exposes it to the worker; records every request. */
class FakeHost {
  readonly requests: Record<string, unknown>[] = [];
  readonly posts: Record<string, unknown>[] = [];
  answer: (request: Record<string, unknown>) => Answer = (r) => ({ ok: true, value: { echo: r.op } });
  async request(json: string): Promise<string> {
    const request = JSON.parse(json) as Record<string, unknown>;
    this.requests.push(request);
    return JSON.stringify(this.answer(request));
  }
  post(json: string): void {
    this.posts.push(JSON.parse(json) as Record<string, unknown>);
  }
}

interface Harness {
  pool: Piscina<PythonWorkerTask, PythonWorkerReply>;
  host: FakeHost;
  interrupt: Int32Array;
  loaded: PythonWorkerReply;
  /** An invocation object (sent as its JSON text) or the text itself. */
  invoke(invocation: unknown): Promise<PythonWorkerReply>;
  /** A call written as PythonRuntime writes it: the method, a newline, the arguments' JSON. */
  call(method: string, ...args: unknown[]): Promise<PythonWorkerReply>;
  close(): Promise<void>;
}

async function start(main: string, options: Partial<PythonLoadTask> & { extra?: { path: string; text: string }[] } = {}): Promise<Harness> {
  // The pool as PythonRuntime starts it (64 MB for the plugin, 192 MB for Pyodide's runtime).
  const pool = new Piscina<PythonWorkerTask, PythonWorkerReply>(workerPoolOptions({ filename: WORKER, heapMB: 64 + 192 }));
  const host = new FakeHost();
  const { port1, port2 } = new MessageChannel();
  Comlink.expose(host, portEndpoint(port1));
  const interrupt = new Int32Array(new SharedArrayBuffer(4));
  // Tasks after load travel on the invocation port (lib/runtimes/invocation-channel.ts).
  const invocations = new MessageChannel();
  // Bumped after each task posted, as WorkerRuntime does: a worker waiting between tasks wakes.
  const wake = new Int32Array(new SharedArrayBuffer(4));
  const pending = new Map<number, (reply: PythonWorkerReply) => void>();
  let nextId = 0;
  invocations.port1.on('message', (message: string) => {
    const { id, body } = unframe(message);
    pending.get(id)?.(PYTHON_CODEC.reply.decode(body));
    pending.delete(id);
  });
  const { extra = [], ...rest } = options;
  const task: PythonLoadTask = {
    type: 'load',
    pluginId: 'py-test',
    files: [{ path: 'main.py', text: main }, ...extra],
    entryPoint: 'main.py',
    port: port2,
    invocations: invocations.port2,
    wake: wake.buffer as SharedArrayBuffer,
    interrupt: interrupt.buffer as SharedArrayBuffer,
    maxMemoryBytes: 256 * MB,
    maxPayloadBytes: 1 * MB,
    maxRequestsPerInvocation: 50,
    ...rest,
  };
  const loaded = await pool.run(task, { transferList: [port2, invocations.port2] as never });
  const invoke = (invocation: unknown) =>
    new Promise<PythonWorkerReply>((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      const text = typeof invocation === 'string' ? invocation : JSON.stringify(invocation);
      invocations.port1.postMessage(frame(id, PYTHON_CODEC.task.encode({ type: 'invoke', invocation: text })));
      Atomics.add(wake, 0, 1);
      Atomics.notify(wake, 0);
    });
  return {
    pool,
    host,
    interrupt,
    loaded,
    invoke,
    call: (method, ...args) => invoke(`${method}\n${JSON.stringify(args)}`),
    async close() {
      port1.close();
      invocations.port1.close();
      await pool.destroy();
    },
  };
}

function ok(reply: PythonWorkerReply): unknown {
  if (!reply.ok) throw new Error(`expected ok, got ${JSON.stringify(reply)}`);
  return reply.value === null ? undefined : JSON.parse(reply.value);
}

function failure(reply: PythonWorkerReply): { name: string; message: string; stack?: string } {
  if (reply.ok || !('error' in reply)) throw new Error(`expected an error, got ${JSON.stringify(reply)}`);
  return reply.error;
}

const VISUALIZER = `
import asyncio
from logomesh import plugin, expose, on_event, hook, HostError, PermissionDenied

@plugin(id="py-test")
class DataVisualizer:
    def __init__(self, ctx):
        self.ctx = ctx
        self.events = []
        self.state = {"n": 0}

    @expose
    def histogram(self, values, bins=10):
        lo, hi = min(values), max(values)
        width = (hi - lo) / bins or 1
        counts = [0] * bins
        for v in values:
            counts[min(int((v - lo) / width), bins - 1)] += 1
        return counts

    @expose
    async def slow_double(self, x):
        await asyncio.sleep(0.01)
        return x * 2

    @expose
    def nothing(self):
        return None

    @expose
    def deferred(self, x):
        return self.slow_double(x)

    @expose
    def in_task(self):
        return asyncio.current_task() is not None

    @expose
    async def in_task_async(self):
        return asyncio.current_task() is not None

    @expose
    def unserialisable(self):
        return {1, 2}

    @expose
    def boom(self):
        raise ValueError("bad input")

    @expose
    def seen(self):
        return self.events

    @expose
    async def ops(self):
        ctx = self.ctx
        ctx.log("info", "hello", {"k": 1})
        ctx.log.warn("careful")
        await ctx.emit("chart.ready", {"id": 7})
        out = {}
        out["call"] = await ctx.call("other", "sum", 1, 2)
        out["read"] = await ctx.fs.read_file("data/a.txt")
        await ctx.fs.write_file("data/b.txt", "text")
        await ctx.fs.write_file("data/c.bin", b"\\x00\\x01")
        await ctx.fs.append_file("data/b.txt", "more")
        await ctx.fs.readdir("data")
        await ctx.fs.stat("data/a.txt")
        await ctx.fs.mkdir("data/sub", recursive=True)
        await ctx.fs.rm("data/sub", recursive=True)
        await ctx.net.fetch("https://api.example.com/x", method="POST", headers={"a": "b"}, body="payload")
        await ctx.services.call("llm.complete", {"prompt": "hi"})
        return out

    @expose
    async def denied(self):
        try:
            await self.ctx.fs.read_file("/etc/passwd")
        except PermissionDenied as e:
            return {"type": type(e).__name__, "name": e.name, "code": e.code, "message": e.message, "host": isinstance(e, HostError)}

    @expose
    async def flood(self, n):
        for i in range(n):
            try:
                await self.ctx.fs.stat("x")
            except HostError:
                pass
        return "done"

    @expose
    def big(self, n):
        return "x" * n

    @expose
    async def big_request(self, n):
        await self.ctx.fs.write_file("big.txt", "x" * n)

    @expose
    def hog(self):
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))

    @expose
    def spin(self):
        while True:
            pass

    @on_event("data.*")
    async def changed(self, event):
        self.events.append([event.topic, event.data, event.source, event["topic"]])
        await self.ctx.emit("chart.ready", {"from": event.topic})

    @hook("onStart")
    def start(self):
        self.state["n"] += 1
        return "started"

    @hook("serialize_state")
    def save(self):
        return self.state

    @hook("deserializeState")
    def restore(self, state):
        self.state = state
`;

describe('Python worker (piscina, sealed Pyodide realm)', function () {
  this.timeout(120_000);

  describe('a plugin', () => {
    let h: Harness;
    before(async () => {
      h = await start(VISUALIZER);
    });
    after(async () => {
      await h?.close();
    });

    it('loads and describes the @plugin class', () => {
      expect(ok(h.loaded)).to.deep.equal({
        exposed: ['big', 'big_request', 'boom', 'deferred', 'denied', 'flood', 'histogram', 'hog', 'in_task', 'in_task_async', 'nothing', 'ops', 'seen', 'slow_double', 'spin', 'unserialisable'],
        handlers: [{ pattern: 'data.*', method: 'changed' }],
        hooks: ['deserializeState', 'onStart', 'serializeState'],
        declaredId: 'py-test',
      });
      expect(h.loaded.memoryBytes).to.be.greaterThan(0);
    });

    it('calls sync and async methods with JSON arguments', async () => {
      expect(ok(await h.call('histogram', [1, 2, 2, 3, 10], 3))).to.deep.equal([4, 0, 1]);
      expect(ok(await h.call('slow_double', 21))).to.equal(42);
      expect(await h.call('nothing')).to.include({ ok: true, value: null });
    });

    it('calls a plain method directly (no asyncio task) and awaits what it returns if that is awaitable', async () => {
      expect(ok(await h.call('deferred', 4))).to.equal(8);
      expect(ok(await h.call('in_task'))).to.equal(false);
      expect(ok(await h.call('in_task_async'))).to.equal(true);
    });

    it('turns Python exceptions into errors with the traceback', async () => {
      const e = failure(await h.call('boom'));
      expect(e.name).to.equal('ValueError');
      expect(e.message).to.equal('bad input');
      expect(e.stack).to.match(/Traceback[\s\S]*main\.py[\s\S]*in boom/);
      expect(failure(await h.call('unserialisable')).message).to.match(/not JSON-serialisable/);
      expect(failure(await h.call('missing')).name).to.equal('AttributeError');
    });

    it('takes a call as JSON too, and fails a malformed positional one with an error, not a crash', async () => {
      expect(ok(await h.invoke({ type: 'call', method: 'histogram', args: [[1, 2, 2, 3, 10], 3] }))).to.deep.equal([4, 0, 1]);
      expect(ok(await h.invoke({ type: 'call', method: 'slow_double', args: [21] }))).to.equal(42);
      // Arguments are read as json.loads reads them (whitespace around them included).
      expect(ok(await h.invoke('histogram\n [[1, 2, 2, 3, 10], 3]\n'))).to.deep.equal([4, 0, 1]);
      expect(failure(await h.invoke('histogram\n[1, 2')).name).to.equal('JSONDecodeError');
      expect(failure(await h.invoke('histogram\n[[1], 3] x')).name).to.equal('JSONDecodeError');
      expect(failure(await h.invoke('histogram\n{"a": 1}')).name).to.equal('TypeError');
      expect(failure(await h.invoke('no newline')).name).to.equal('JSONDecodeError');
      expect(failure(await h.invoke('__init__\n[]')).name).to.equal('AttributeError');
      expect(ok(await h.call('histogram', [1, 2, 2, 3, 10], 3))).to.deep.equal([4, 0, 1]);
    });

    it('delivers events to the named handlers', async () => {
      h.host.posts.length = 0;
      expect(await h.invoke({ type: 'event', topic: 'data.changed', data: { x: 1 }, source: 'src', methods: ['changed'] })).to.include({ ok: true, value: null });
      expect(ok(await h.call('seen'))).to.deep.equal([['data.changed', { x: 1 }, 'src', 'data.changed']]);
      expect(h.host.posts).to.deep.include({ op: 'emit', topic: 'chart.ready', data: { from: 'data.changed' } });
      expect(failure(await h.invoke({ type: 'event', topic: 'x', data: null, source: 's', methods: ['histogram'] })).name).to.equal('AttributeError');
    });

    it('runs hooks by the host names (snake_case spellings map to them)', async () => {
      expect(ok(await h.invoke({ type: 'hook', hook: 'onStart' }))).to.equal('started');
      expect(ok(await h.invoke({ type: 'hook', hook: 'serializeState' }))).to.deep.equal({ n: 1 });
      expect(await h.invoke({ type: 'hook', hook: 'deserializeState', arg: { n: 5 } })).to.include({ ok: true });
      expect(ok(await h.invoke({ type: 'hook', hook: 'serializeState' }))).to.deep.equal({ n: 5 });
      expect(await h.invoke({ type: 'hook', hook: 'onStop' })).to.include({ ok: true, value: null });
    });

    it('builds the gateway request of every ctx operation', async () => {
      h.host.requests.length = 0;
      h.host.posts.length = 0;
      h.host.answer = (r) => ({ ok: true, value: r.op === 'fs.readFile' ? 'contents' : r.op === 'call' ? 3 : null });
      expect(ok(await h.call('ops'))).to.deep.equal({ call: 3, read: 'contents' });
      expect(h.host.posts).to.deep.equal([
        { op: 'log', level: 'info', message: 'hello', fields: { k: 1 } },
        { op: 'log', level: 'warn', message: 'careful' },
        { op: 'emit', topic: 'chart.ready', data: { id: 7 } },
      ]);
      expect(h.host.requests).to.deep.equal([
        { op: 'call', pluginId: 'other', method: 'sum', args: [1, 2] },
        { op: 'fs.readFile', path: 'data/a.txt', encoding: 'utf8' },
        { op: 'fs.writeFile', path: 'data/b.txt', data: 'text', encoding: 'utf8' },
        { op: 'fs.writeFile', path: 'data/c.bin', data: 'AAE=', encoding: 'base64' },
        { op: 'fs.appendFile', path: 'data/b.txt', data: 'more', encoding: 'utf8' },
        { op: 'fs.readdir', path: 'data' },
        { op: 'fs.stat', path: 'data/a.txt' },
        { op: 'fs.mkdir', path: 'data/sub', recursive: true },
        { op: 'fs.rm', path: 'data/sub', recursive: true },
        { op: 'net.fetch', url: 'https://api.example.com/x', init: { method: 'POST', headers: { a: 'b' }, body: 'payload' } },
        { op: 'services.call', operation: 'llm.complete', args: { prompt: 'hi' } },
      ]);
    });

    it('raises gateway errors as logomesh exceptions', async () => {
      h.host.answer = () => ({ ok: false, error: { name: 'PermissionDeniedError', message: 'no filesystem permission', code: 'EACCES' } });
      expect(ok(await h.call('denied'))).to.deep.equal({
        type: 'PermissionDenied',
        name: 'PermissionDeniedError',
        code: 'EACCES',
        message: 'no filesystem permission',
        host: true,
      });
    });

    it('fails an invocation past maxRequestsPerInvocation even if the plugin caught the error', async () => {
      h.host.answer = () => ({ ok: true, value: null });
      h.host.requests.length = 0;
      expect(await h.call('flood', 60)).to.include({ ok: false, limit: 'requests', size: 51 });
      expect(h.host.requests).to.have.length(50);
      expect(ok(await h.call('flood', 10))).to.equal('done');
    });

    it('enforces maxPayloadBytes on results and requests', async () => {
      expect(await h.call('big', 2 * MB)).to.include({ ok: false, limit: 'payload' });
      h.host.requests.length = 0;
      expect(await h.call('big_request', 2 * MB)).to.include({ ok: false, limit: 'payload' });
      expect(h.host.requests).to.have.length(0);
      expect(ok(await h.call('big', 10))).to.equal('xxxxxxxxxx');
    });

    it('interrupts a busy loop when the host stores SIGINT', async () => {
      // As PythonRuntime does: stored again until the call ends.
      const timer = setTimeout(() => Atomics.store(h.interrupt, 0, 2), 200);
      const again = setInterval(() => Atomics.store(h.interrupt, 0, 2), 250);
      const reply = await h.call('spin');
      clearTimeout(timer);
      clearInterval(again);
      expect(reply).to.include({ ok: false, limit: 'interrupted', size: 0 });
      expect(ok(await h.call('slow_double', 1))).to.equal(2);
    });

    it('takes a single SIGINT every time: Pyodide clearing the flag does not wipe one stored meanwhile', async () => {
      for (let i = 0; i < 8; i++) {
        const timer = setTimeout(() => Atomics.store(h.interrupt, 0, 2), 20);
        const reply = await Promise.race([h.call('spin'), new Promise((resolve) => setTimeout(resolve, 3000, 'no KeyboardInterrupt'))]);
        clearTimeout(timer);
        expect(reply, `attempt ${i + 1}`).to.include({ ok: false, limit: 'interrupted' });
      }
    });
  });

  describe('memory cap', () => {
    it('fails a call that grows linear memory past maxMemoryBytes with a memory limit, and the plugin lives on', async () => {
      const h = await start(VISUALIZER, { maxMemoryBytes: 64 * MB });
      try {
        expect(h.loaded.ok).to.equal(true);
        const reply = await h.call('hog');
        expect(reply).to.include({ ok: false, limit: 'memory' });
        expect(reply.memoryBytes).to.be.at.most(64 * MB);
        expect(ok(await h.call('histogram', [1, 2], 2))).to.deep.equal([1, 1]);
      } finally {
        await h.close();
      }
    });
  });

  describe('memory snapshot', () => {
    it('is made by one worker and restores a working, sealed interpreter in another', async () => {
      const first = await start(VISUALIZER, { makeSnapshot: true });
      const snapshot = first.loaded.snapshot;
      await first.close();
      expect(snapshot).to.be.instanceOf(Uint8Array);
      const second = await start(
        `from logomesh import plugin, expose\nimport sys\n@plugin\nclass P:\n    def __init__(self, ctx): pass\n    @expose\n    def check(self):\n        try:\n            import js\n            return 'js imported'\n        except ImportError:\n            pass\n        return sorted(m for m in ('js', 'pyodide_js') if m in sys.modules)\n`,
        { snapshot },
      );
      try {
        expect(ok(second.loaded)).to.deep.include({ exposed: ['check'] });
        expect(ok(await second.call('check'))).to.deep.equal([]);
      } finally {
        await second.close();
      }
    });
  });

  // Plugin code runs only inside invocations (lib/runtimes/python/realm.ts): work a plugin leaves
  // behind is parked while no invocation runs and advances at the start of the next one, under
  // its deadline and interrupt.
  describe('work left behind after a call returns', () => {
    let h: Harness;
    const LEFTOVERS = `
import asyncio
import logomesh
from logomesh import plugin, expose

@plugin
class P:
    def __init__(self, ctx):
        self.ctx = ctx
        self.ticks = 0
        self.log = []
        self.micro = 0

    async def _ticking(self):
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def _burn(self):
        while True:
            pass

    async def _note(self):
        self.log.append("task")

    @expose
    def start_ticking(self):
        asyncio.ensure_future(self._ticking())
        return self.ticks

    @expose
    def ticks_now(self):
        return self.ticks

    @expose
    def start_burning(self):
        asyncio.ensure_future(self._burn())
        return "started"

    @expose
    def schedule(self):
        asyncio.get_event_loop().call_later(0, self.log.append, "later")
        asyncio.ensure_future(self._note())
        return list(self.log)

    @expose
    def seen(self):
        out = list(self.log)
        self.log.clear()
        return out

    @expose
    def unawaited_request(self):
        asyncio.ensure_future(self.ctx.fs.stat("late"))
        return "sent"

    @expose
    async def together(self):
        async def two():
            await asyncio.sleep(0.01)
            return 2
        first, _, second, stat = await asyncio.gather(asyncio.sleep(0, 1), asyncio.sleep(0.005), two(), self.ctx.fs.stat("a"))
        return [first, second, stat]

    @expose
    def endless_microtasks(self):
        # then() on a JS promise: a chain of JS microtasks, which cannot be parked like timers.
        from pyodide.ffi import to_js
        # A resolved JS promise as a JsProxy (a call's result would arrive as an asyncio future).
        Promise = to_js(['{"op":"fs.stat","path":"m"}']).map(logomesh._bridge.request)[0].constructor
        promise = to_js([None]).map(Promise.resolve.bind(Promise))[0]
        def step(_=None):
            self.micro += 1
            promise.then(step)
        promise.then(step)
        return "queued"

    @expose
    def ping(self):
        return "pong"
`;

    /** CPU time of this process (the worker is one of its threads) over `ms` of wall time. */
    const cpuOver = async (ms: number): Promise<{ cpuMs: number; wallMs: number }> => {
      const before = process.cpuUsage();
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, ms));
      const used = process.cpuUsage(before);
      return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - started };
    };

    before(async () => {
      h = await start(LEFTOVERS);
      expect(h.loaded.ok, JSON.stringify(h.loaded)).to.equal(true);
    });
    after(async () => {
      await h?.close();
    });

    it('a background task does not run between calls: it advances only while a call runs', async () => {
      const started = ok(await h.call('start_ticking')) as number;
      const idle = await cpuOver(300);
      const after = ok(await h.call('ticks_now')) as number;
      // Running freely it would tick tens of thousands of times in 300 ms, burning a CPU.
      expect(after - started).to.be.at.most(2);
      expect(idle.cpuMs).to.be.below(idle.wallMs / 2);
      expect(ok(await h.call('ticks_now')) as number).to.be.at.most(after + 1);
    });

    it('a background busy loop burns no CPU between calls; it runs inside the next call, under its interrupt', async () => {
      expect(ok(await h.call('start_burning'))).to.equal('started');
      const idle = await cpuOver(300);
      expect(idle.cpuMs).to.be.below(idle.wallMs / 2);
      // The next call runs the parked loop first: the host's SIGINT ends it, and that call with it.
      const timer = setTimeout(() => Atomics.store(h.interrupt, 0, 2), 200);
      const again = setInterval(() => Atomics.store(h.interrupt, 0, 2), 250);
      const reply = await h.call('ping');
      clearTimeout(timer);
      clearInterval(again);
      expect(reply).to.include({ ok: false, limit: 'interrupted', size: 0 });
      expect(ok(await h.call('ping'))).to.equal('pong');
    });

    it('callbacks and tasks scheduled in one call run at the start of the next, in order', async () => {
      await h.call('seen');
      expect(ok(await h.call('schedule'))).to.deep.equal([]);
      expect(ok(await h.call('seen'))).to.deep.equal(['later', 'task']);
    });

    it('a request started by a task the call did not await is made during the next call (and counted there)', async () => {
      h.host.answer = () => ({ ok: true, value: null });
      h.host.requests.length = 0;
      expect(ok(await h.call('unawaited_request'))).to.equal('sent');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(h.host.requests).to.deep.equal([]);
      expect(ok(await h.call('ping'))).to.equal('pong');
      expect(h.host.requests).to.deep.equal([{ op: 'fs.stat', path: 'late' }]);
    });

    it('asyncio inside a call works as usual (gather, sleep, host requests)', async () => {
      h.host.answer = (r) => ({ ok: true, value: r.op });
      expect(ok(await h.call('together'))).to.deep.equal([1, 2, 'fs.stat']);
    });

    it('an endless chain of JS microtasks holds the answer back until the host interrupts it', async () => {
      let interrupted = false;
      const timer = setTimeout(() => {
        interrupted = true;
        Atomics.store(h.interrupt, 0, 2);
      }, 200);
      const again = setInterval(() => Atomics.store(h.interrupt, 0, 2), 250);
      const reply = await h.call('endless_microtasks');
      const answeredAfterInterrupt = interrupted;
      clearTimeout(timer);
      clearInterval(again);
      expect(reply.ok, JSON.stringify(reply)).to.equal(true);
      expect(answeredAfterInterrupt).to.equal(true);
      expect(ok(await h.call('ping'))).to.equal('pong');
    });
  });

  describe('attacks from plugin code', () => {
    let h: Harness;
    const marker = `/tmp/logomesh-py-attack-${process.pid}`;
    const ATTACKS = `
import sys, os
from logomesh import plugin, expose

def _try(fn):
    saved = list(sys.meta_path)
    try:
        return ["ok", repr(fn())]
    except BaseException as e:
        return [type(e).__name__, str(e)[:300]]
    finally:
        sys.meta_path[:] = saved

@plugin
class Attacker:
    def __init__(self, ctx):
        self.ctx = ctx

    @expose
    def import_js(self):
        def go():
            import js
            return js.process
        return _try(go)

    @expose
    def import_pyodide_js(self):
        def go():
            import pyodide_js
            return pyodide_js.mountNodeFS("/mnt", "/")
        return _try(go)

    @expose
    def unblocked_js(self):
        # Remove the blocker first: js and pyodide_js are no longer registered either.
        def go():
            sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "type" and getattr(f, "__name__", "") != "_Blocker"]
            import importlib
            return importlib.import_module("js")
        return _try(go)

    @expose
    def os_system(self, path):
        return [_try(lambda: os.system("touch " + path)), _try(lambda: os.popen("touch " + path)), _try(lambda: os.fork()),
                _try(lambda: os.execv("/bin/sh", ["sh", "-c", "touch " + path])), _try(lambda: os.posix_spawn("/bin/sh", ["sh"], {}))]

    @expose
    def posix_system(self, path):
        # The posix module behind os: stubbed too; and Emscripten has no process to run it with.
        import posix
        return _try(lambda: posix.system("touch " + path))

    @expose
    def subprocess(self):
        def go():
            import subprocess
            return subprocess.run(["true"])
        return _try(go)

    @expose
    def ctypes(self):
        def go():
            import ctypes
            return ctypes.CDLL(None).emscripten_run_script(b"process.exit(3)")
        return _try(go)

    @expose
    def ctypes_unblocked(self):
        # Even with the import blocker removed: JS code generation is off in the realm.
        def go():
            sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") != "_Blocker"]
            sys.modules.pop("ctypes", None)
            import ctypes
            lib = ctypes.CDLL(None)
            return lib.emscripten_run_script_int(b"globalThis.constructor.constructor('return process')().pid")
        return _try(go)

    @expose
    def dlopen_side_module(self):
        # A crafted side module: dlopen must refuse before any embedded JS (EM_ASM) is evaluated.
        def go():
            with open("/tmp/evil.so", "wb") as f:
                f.write(b"\\x00asm\\x01\\x00\\x00\\x00\\x00\\x0c\\x06dylink\\x00\\x00\\x00\\x00\\x00\\x00")
            sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") != "_Blocker"]
            sys.modules.pop("ctypes", None)
            import ctypes
            return ctypes.CDLL("/tmp/evil.so")
        return _try(go)

    @expose
    def extension_module(self):
        def go():
            os.makedirs("/tmp/ext", exist_ok=True)
            with open("/tmp/ext/evil.cpython-313-wasm32-emscripten.so", "wb") as f:
                f.write(b"\\x00asm\\x01\\x00\\x00\\x00")
            sys.path.insert(0, "/tmp/ext")
            import evil
            return evil
        return _try(go)

    @expose
    def socket(self):
        def go():
            import socket
            return socket.create_connection(("127.0.0.1", 22))
        return _try(go)

    @expose
    def pyfetch(self):
        def go():
            from pyodide.http import pyfetch
            return pyfetch
        return _try(go)

    @expose
    def micropip(self):
        def go():
            import micropip
            return micropip
        return _try(go)

    @expose
    def run_js(self):
        def go():
            import pyodide
            from pyodide import code
            return code.run_js("1")
        return _try(go)

    @expose
    def via_bridge(self):
        # The bridge function is a JS object: walk from it to Function and try to compile code.
        import logomesh
        fn = logomesh._bridge.request
        out = [_try(lambda: fn.constructor("return process")())]
        out.append(_try(lambda: fn.constructor.constructor("return globalThis.process")()))
        out.append(_try(lambda: type(fn).__name__))
        return out

    @expose
    def read_host_files(self):
        return [_try(lambda: os.listdir("/")), _try(lambda: open("/etc/passwd").read()[:20])]

    @expose
    def mount_nodefs(self):
        def go():
            import pyodide_js
            return pyodide_js.FS.mount(pyodide_js.FS.filesystems.NODEFS, {"root": "/"}, "/mnt")
        return _try(go)

    @expose
    def ping(self):
        return "pong"
`;

    before(async () => {
      rmSync(marker, { force: true });
      h = await start(ATTACKS);
      expect(h.loaded.ok, JSON.stringify(h.loaded)).to.equal(true);
    });
    after(async () => {
      await h?.close();
      rmSync(marker, { force: true });
    });
    afterEach(async () => {
      // The worker and the host are fine after every attack.
      expect(ok(await h.call('ping'))).to.equal('pong');
      expect(existsSync(marker)).to.equal(false);
      expect(typeof process.pid).to.equal('number');
    });

    it('import js fails (ImportError)', async () => {
      expect((ok(await h.call('import_js')) as string[])[0]).to.equal('ImportError');
    });

    it('import pyodide_js (mountNodeFS) fails', async () => {
      expect((ok(await h.call('import_pyodide_js')) as string[])[0]).to.equal('ImportError');
      expect((ok(await h.call('mount_nodefs')) as string[])[0]).to.equal('ImportError');
    });

    it('js stays unreachable with the import blocker removed', async () => {
      expect((ok(await h.call('unblocked_js')) as string[])[0]).to.equal('ModuleNotFoundError');
    });

    it('os.system, popen, fork, exec and posix_spawn raise PermissionError and run nothing', async () => {
      const results = ok(await h.call('os_system', marker)) as string[][];
      expect(results.map((r) => r[0])).to.deep.equal(['PermissionError', 'PermissionError', 'PermissionError', 'PermissionError', 'PermissionError']);
      expect((ok(await h.call('posix_system', marker)) as string[])[0]).to.equal('PermissionError');
    });

    it('subprocess, socket, pyodide.http (pyfetch), micropip and pyodide.code cannot be imported', async () => {
      for (const method of ['subprocess', 'socket', 'pyfetch', 'micropip', 'run_js']) {
        expect((ok(await h.call(method)) as string[])[0], method).to.equal('ImportError');
      }
    });

    it('ctypes cannot be imported, and with the blocker removed emscripten_run_script cannot compile JS', async () => {
      expect((ok(await h.call('ctypes')) as string[])[0]).to.equal('ImportError');
      // emscripten_run_script_int evaluates nothing: it answers 0 instead of the host's pid.
      expect(ok(await h.call('ctypes_unblocked'))).to.deep.equal(['ok', '0']);
    });

    it('dynamic libraries (crafted side modules, extension modules) are refused', async () => {
      expect((ok(await h.call('dlopen_side_module')) as string[])[0]).to.not.equal('ok');
      expect((ok(await h.call('extension_module')) as string[])[0]).to.not.equal('ok');
    });

    it('a JS object reached through the bridge leads to a realm without code generation or Node', async () => {
      const [construct, constructConstructor, type] = ok(await h.call('via_bridge')) as string[][];
      expect(construct![0]).to.not.equal('ok');
      expect(construct![1]).to.match(/Code generation from strings disallowed/);
      expect(constructConstructor![0]).to.not.equal('ok');
      expect(type![1]).to.match(/JsProxy|JsCallable/);
    });

    it('sees only the in-memory file system, not the host disk', async () => {
      const [listing, passwd] = ok(await h.call('read_host_files')) as string[][];
      expect(listing![0]).to.equal('ok');
      expect(listing![1]).to.not.match(/'usr'|'etc'|'work'|'root'|'var'/);
      expect(passwd![0]).to.equal('FileNotFoundError');
    });
  });

  describe('the sealed realm (JS level)', () => {
    it('an ordinary {} sandbox escapes through constructor.constructor; a null-prototype one does not', () => {
      const open = vm.createContext({});
      expect(typeof vm.runInContext("this.constructor.constructor('return process')()", open)).to.equal('object');
      const sealed = vm.createContext(Object.create(null));
      expect(vm.runInContext("this.constructor.constructor('return typeof process')()", sealed)).to.equal('undefined');
    });

    it("Node rejects a vm context's import() with an outer error (why the realm rewrites import())", async () => {
      const ctx = vm.createContext(Object.create(null));
      const escaped = await (vm.runInContext(
        "import('node:fs').catch((e) => typeof e.constructor.constructor('return process')())",
        ctx,
      ) as Promise<string>);
      expect(escaped).to.equal('object');
    });

    describe('with Pyodide booted', () => {
      let realm: Awaited<ReturnType<typeof createPyodideRealm>>;
      before(async () => {
        realm = await createPyodideRealm({
          maxMemoryBytes: 128 * MB,
          interrupt: new Int32Array(new SharedArrayBuffer(4)),
          request: async () => JSON.stringify({ ok: true, value: null }),
          post: () => undefined,
          print: () => undefined,
        });
        realm.control.seal();
      });
      const inside = (code: string): unknown => vm.runInContext(code, realm.context);

      it('has no process, require, Buffer or Node globals, and this.constructor.constructor finds none', () => {
        expect(inside('typeof process + typeof require + typeof Buffer + typeof module + typeof __dirname + typeof setImmediate')).to.equal(
          'undefinedundefinedundefinedundefinedundefinedundefined',
        );
        expect(() => inside("this.constructor.constructor('return process')()")).to.throw(/Code generation from strings disallowed/);
        // The global's prototype chain ends at the realm's own Object.prototype.
        expect(inside('(() => { let p = globalThis; while (Object.getPrototypeOf(p)) p = Object.getPrototypeOf(p); return p === Object.prototype; })()')).to.equal(true);
      });

      it('refuses eval and new Function inside (code generation from strings is off)', () => {
        expect(inside("(() => { try { eval('1'); return 'ran' } catch (e) { return e instanceof EvalError } })()")).to.equal(true);
        expect(inside("(() => { try { new Function('return 1'); return 'ran' } catch (e) { return e instanceof EvalError } })()")).to.equal(true);
      });

      it("rejects import('node:fs') with an inner error (the loader's import() calls are rewritten)", async () => {
        const result = await (inside(
          "__lm_import('node:fs').then(() => 'imported', (e) => (e instanceof TypeError) + ' ' + Object.getPrototypeOf(e).constructor.name)",
        ) as Promise<string>);
        expect(result).to.equal('true TypeError');
      });

      it('has no wasm streaming entry points and a pinned Error.prepareStackTrace', () => {
        expect(inside('typeof WebAssembly.compileStreaming + typeof WebAssembly.instantiateStreaming')).to.equal('undefinedundefined');
        expect(inside("(() => { try { Error.prepareStackTrace = () => 1 } catch {} return typeof Error.prepareStackTrace })()")).to.equal('undefined');
      });

      it('caps WebAssembly.Memory at maxMemoryBytes', () => {
        expect(inside('new WebAssembly.Memory({ initial: 1, maximum: 65536 }).grow(2047)')).to.equal(1);
        expect(() => inside('new WebAssembly.Memory({ initial: 1 }).grow(2048)')).to.throw();
        expect(inside('Object.getPrototypeOf(new WebAssembly.Memory({ initial: 1 })).constructor === WebAssembly.Memory')).to.equal(true);
      });

      it('Pyodide refuses mountNodeFS and NODEFS (no Node in the realm)', () => {
        const py = realm.control.pyodide as { mountNodeFS(a: string, b: string): void; FS: { mount(fs: unknown, o: unknown, p: string): void; filesystems: Record<string, unknown>; mkdir(p: string): void } };
        expect(() => py.mountNodeFS('/mnt', '/')).to.throw(/only works in Node/);
        py.FS.mkdir('/mnt2');
        expect(() => py.FS.mount(py.FS.filesystems.NODEFS, { root: '/' }, '/mnt2')).to.throw();
      });

      it('a poisoned Promise.prototype.then in the realm is never handed an outer function', async () => {
        realm.control.writeText('/lib/t/m.py', 'import asyncio\nasync def f(x):\n    await asyncio.sleep(0)\n    return x\ndef go(x):\n    return asyncio.ensure_future(f(x))\n');
        realm.control.runPython("import sys\nsys.path.insert(0, '/lib/t')");
        inside(`(() => {
          const orig = Promise.prototype.then;
          globalThis.found = [];
          Promise.prototype.then = function (...args) {
            for (const a of args) {
              try { found.push(typeof a.constructor.constructor('return typeof process')()); } catch (e) { found.push(e.constructor.name); }
            }
            return orig.apply(this, args);
          };
        })()`);
        expect(await realm.invoke('m', 'go', 'hi')).to.equal('hi');
        const found = inside('found') as string[];
        expect(found.length).to.be.greaterThan(0);
        expect([...found].every((r) => r === 'EvalError')).to.equal(true, [...found].join());
      });

      it('Python runs, and nothing reachable from the realm global is an outer object', () => {
        expect(realm.control.runPython('1 + 1')).to.equal(2);
        // Walk everything reachable from the global object (own properties and prototypes):
        // every object must belong to the realm (its Object.prototype at the chain's end).
        const outer = inside(`(() => {
          const seen = new Set(); const stack = [globalThis]; const bad = [];
          const innerObjectProto = Object.prototype, innerFunctionProto = Function.prototype;
          while (stack.length) {
            const o = stack.pop();
            if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
            seen.add(o);
            let p = o, depth = 0;
            while (Object.getPrototypeOf(p) !== null && depth++ < 50) p = Object.getPrototypeOf(p);
            if (p !== innerObjectProto && o !== globalThis && p !== o) bad.push(String(Object.prototype.toString.call(o)));
            for (const k of Reflect.ownKeys(o)) {
              let d; try { d = Object.getOwnPropertyDescriptor(o, k); } catch { continue; }
              if (!d) continue;
              for (const v of [d.value, d.get, d.set]) if (v !== undefined) stack.push(v);
            }
            stack.push(Object.getPrototypeOf(o));
          }
          return bad.length + ':' + seen.size;
        })()`) as string;
        const [bad, seen] = outer.split(':').map(Number);
        expect(bad).to.equal(0);
        expect(seen).to.be.greaterThan(100);
      });
    });
  });
});
