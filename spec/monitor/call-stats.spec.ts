import { expect } from 'chai';
import { CallStats, MAX_METHODS_PER_PLUGIN, OTHER_METHOD } from '../../lib/monitor/call-stats.js';

describe('CallStats', () => {
  it('reports percentiles in ms within HdrHistogram precision (2 significant digits), never above the max', () => {
    const calls = new CallStats();
    for (let ms = 1; ms <= 1000; ms++) calls.record('work', ms / 10, true);
    const s = calls.snapshot().work!;
    expect(s.count).to.equal(1000);
    expect(s.p50).to.be.closeTo(50, 0.5);
    expect(s.p90).to.be.closeTo(90, 0.9);
    expect(s.p99).to.be.closeTo(99, 1);
    expect(s.max).to.equal(100);
    expect(s.p99).to.be.at.most(s.max);
  });

  it('sums durations and counts failures, per method and in total', () => {
    const calls = new CallStats();
    calls.record('a', 2, true);
    calls.record('a', 3, false);
    calls.record('b', 0.5, false);
    expect([calls.count, calls.errors, calls.totalMs]).to.deep.equal([3, 2, 5.5]);
    const snap = calls.snapshot();
    expect([snap.a!.count, snap.a!.errors, snap.b!.count, snap.b!.errors]).to.deep.equal([2, 1, 1, 1]);
  });

  it('counts NaN and negative durations as 0 and caps them at the histogram range (1 hour)', () => {
    const calls = new CallStats();
    calls.record('odd', NaN, true);
    calls.record('odd', -5, true);
    calls.record('odd', Infinity, true);
    const s = calls.snapshot().odd!;
    expect(s.count).to.equal(3);
    expect(s.max).to.equal(3_600_000);
    expect(calls.totalMs).to.equal(3_600_000);
    expect(s.p50).to.equal(0);
  });

  it('keeps the stats of methods not called since the last snapshot (same frozen object)', () => {
    const calls = new CallStats();
    calls.record('a', 1, true);
    calls.record('b', 1, true);
    const first = calls.snapshot();
    calls.record('b', 2, true);
    const second = calls.snapshot();
    expect(second.a).to.equal(first.a);
    expect(second.b).to.not.equal(first.b);
    expect(Object.isFrozen(second.a)).to.equal(true);
  });

  it(`keeps at most ${MAX_METHODS_PER_PLUGIN} method names and counts the rest under "${OTHER_METHOD}"`, () => {
    const calls = new CallStats();
    for (let i = 0; i < MAX_METHODS_PER_PLUGIN + 10; i++) calls.record(`m${i}`, 1, true);
    calls.record('m0', 1, true);
    const snap = calls.snapshot();
    expect(Object.keys(snap)).to.have.length(MAX_METHODS_PER_PLUGIN + 1);
    expect(snap[OTHER_METHOD]!.count).to.equal(10);
    expect(snap.m0!.count).to.equal(2);
  });
});
