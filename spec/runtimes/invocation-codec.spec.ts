import { expect } from 'chai';
import { frame, unframe } from '../../lib/runtimes/invocation-channel.js';
import { PYTHON_CODEC, type PythonWorkerReply } from '../../lib/runtimes/python/python-protocol.js';
import { WASM_CODEC, type WasmWorkerReply, type WasmWorkerTask } from '../../lib/runtimes/wasm/wasm-protocol.js';

/** Text that would break a naive format: separators, newlines, quotes, non-ASCII and a lone surrogate. */
const AWKWARD = '["a|b\\n", "c\\"d", "é😀", "\\ud800", "|\\n|"]';

describe('invocation channel codecs (tasks and replies as text)', () => {
  it('frames a body, newlines and all, with its task id', () => {
    expect(unframe(frame(42, 'x\ny\n'))).to.deep.equal({ id: 42, body: 'x\ny\n' });
  });

  describe('WebAssembly', () => {
    const roundTrip = (task: WasmWorkerTask) => WASM_CODEC.task.decode(WASM_CODEC.task.encode(task));
    const replyTrip = (reply: WasmWorkerReply) => WASM_CODEC.reply.decode(WASM_CODEC.reply.encode(reply));

    it('carries an invoke task whatever its export names and argument text hold', () => {
      const task: WasmWorkerTask = { type: 'invoke', exports: ['lm_on_a|b', 'lm_x\ny', 'lm_é'], json: AWKWARD, waitMs: 1500.5, caller: 7 };
      expect(roundTrip(task)).to.deep.equal(task);
      expect(roundTrip({ type: 'invoke', exports: ['lm_upper'], json: '"x"' })).to.deep.equal({ type: 'invoke', exports: ['lm_upper'], json: '"x"' });
    });

    it('refuses to write a load task (it goes through piscina, with transferred ports)', () => {
      const load = { type: 'load' } as WasmWorkerTask;
      expect(() => WASM_CODEC.task.encode(load)).to.throw(TypeError, /load task/);
    });

    it('carries results (null, empty, awkward text) with the counters, the elapsed time to 0.1 µs', () => {
      const reply: WasmWorkerReply = { ok: true, value: { results: [null, AWKWARD, '', '"é\n"'] }, sent: 3, memoryBytes: 131072, elapsedMs: 0.12345 };
      const back = replyTrip(reply);
      expect(back).to.deep.include({ ok: true, value: { results: [null, AWKWARD, '', '"é\n"'] }, sent: 3, memoryBytes: 131072 });
      expect(back.elapsedMs).to.be.closeTo(0.1235, 1e-9);
    });

    it('carries failures and limits as they are', () => {
      const failure: WasmWorkerReply = { ok: false, error: { name: 'RuntimeError', message: 'unreachable\n|', stack: 'at x' }, sent: 0, memoryBytes: 65536, elapsedMs: 1 };
      const limit: WasmWorkerReply = { ok: false, limit: 'requests', size: 1001, sent: 1000, memoryBytes: 65536, elapsedMs: 2 };
      expect(replyTrip(failure)).to.deep.equal(failure);
      expect(replyTrip(limit)).to.deep.equal(limit);
    });
  });

  describe('Python', () => {
    it('carries an invoke task and replies with a value, None, a failure or a limit', () => {
      expect(PYTHON_CODEC.task.decode(PYTHON_CODEC.task.encode({ type: 'invoke', invocation: AWKWARD }))).to.deep.equal({ type: 'invoke', invocation: AWKWARD });
      const replies: PythonWorkerReply[] = [
        { ok: true, value: AWKWARD, memoryBytes: 1, elapsedMs: 0.5 },
        { ok: true, value: null, memoryBytes: 1, elapsedMs: 0.5 },
        { ok: false, error: { name: 'ValueError', message: 'bad\nvalue' }, memoryBytes: 1, elapsedMs: 0.5 },
        { ok: false, limit: 'interrupted', size: 0, memoryBytes: 1, elapsedMs: 0.5 },
      ];
      for (const reply of replies) expect(PYTHON_CODEC.reply.decode(PYTHON_CODEC.reply.encode(reply))).to.deep.equal(reply);
    });
  });
});
