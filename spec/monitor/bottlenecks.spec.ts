import { expect } from 'chai';
import {
  BOTTLENECK_LIMITS,
  BOTTLENECK_RULES,
  estimateMeanMs,
  findBottlenecks,
  type BottleneckInput,
} from '../../lib/monitor/bottlenecks.js';
import type { MethodStats } from '../../lib/monitor/types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function stats(count: number, p50: number, over: Partial<MethodStats> = {}): MethodStats {
  return { count, errors: 0, p50, p90: p50, p99: p50, max: p50, ...over };
}

function input(over: Partial<BottleneckInput> = {}): BottleneckInput {
  return { pluginId: 'acme', methods: {}, memory: { current: 1 * MiB, peak: 2 * MiB, limit: 64 * MiB }, ...over };
}

describe('bottleneck rules', () => {
  it('finds nothing in a healthy plugin', () => {
    const healthy = input({
      methods: { a: stats(100, 5, { errors: 1 }), b: stats(100, 5) },
      gateway: { requests: { 'storage.get': 200 }, payloadBytes: 200 * KiB, calls: 200 },
      durationMs: 10_000,
    });
    expect(findBottlenecks(healthy)).to.deep.equal([]);
  });

  describe('hot-method', () => {
    const rule = BOTTLENECK_RULES['hot-method'];

    it('fires for a method with half or more of the estimated call time, counting session calls', () => {
      const [hot, ...rest] = rule(input({ methods: { a: { ...stats(1000, 10), countInSession: 10 }, b: stats(6, 10), c: stats(4, 10) } }));
      expect(rest).to.deep.equal([]);
      expect(hot.rule).to.equal('hot-method');
      expect(hot.message).to.match(/^Plugin 'acme': method 'a'/);
      expect(hot.evidence).to.include({ method: 'a', share: 0.5, calls: 10, estimatedMs: 100, totalEstimatedMs: 200 });
      expect(rule(input({ methods: { a: stats(9, 10), b: stats(6, 10), c: stats(5, 10) } }))).to.deep.equal([]);
    });

    it('ignores methods tied at 50 %', () => {
      expect(rule(input({ methods: { a: stats(10, 10), b: stats(10, 10) } }))).to.deep.equal([]);
    });

    it('ignores a lone method, which is trivially 100 %', () => {
      expect(rule(input({ methods: { only: stats(50, 20), unused: stats(0, 0) } }))).to.deep.equal([]);
    });

    it('fires for the top self-time function of a V8 profile', () => {
      const fn = { functionName: 'render', url: 'plugin.js', lineNumber: 3, columnNumber: 1, selfMs: 90, share: 0.9 };
      const [hot] = rule(input({ hotFunction: fn }));
      expect(hot.evidence).to.include({ functionName: 'render', selfMs: 90, share: 0.9 });
      expect(rule(input({ hotFunction: { ...fn, share: BOTTLENECK_LIMITS.hotFunctionShare - 0.01 } }))).to.deep.equal([]);
    });
  });

  it('slow-method fires at p90 ≥ 100 ms', () => {
    const found = BOTTLENECK_RULES['slow-method'](input({ methods: { slow: stats(5, 50, { p90: 100, p99: 300, max: 400 }), ok: stats(5, 50, { p90: 99 }) } }));
    expect(found).to.have.length(1);
    expect(found[0].evidence).to.include({ method: 'slow', p90: 100, p99: 300, max: 400, thresholdMs: 100 });
  });

  it('error-prone-method fires at ≥ 10 % errors over ≥ 10 calls', () => {
    const rule = BOTTLENECK_RULES['error-prone-method'];
    const found = rule(input({ methods: { bad: stats(10, 1, { errors: 1 }), few: stats(9, 1, { errors: 9 }), fine: stats(100, 1, { errors: 9 }) } }));
    expect(found.map((b) => b.evidence.method)).to.deep.equal(['bad']);
    expect(found[0].evidence).to.include({ errors: 1, count: 10, errorRate: 0.1 });
  });

  it('large-payloads fires at ≥ 256 KiB per gateway request on average', () => {
    const rule = BOTTLENECK_RULES['large-payloads'];
    const gateway = { requests: { 'storage.get': 3, 'http.fetch': 1 }, payloadBytes: 4 * 256 * KiB, calls: 4 };
    expect(rule(input({ gateway }))[0].evidence).to.include({ bytesPerRequest: 256 * KiB, requests: 4 });
    expect(rule(input({ gateway: { ...gateway, payloadBytes: 4 * 256 * KiB - 1 } }))).to.deep.equal([]);
    expect(rule(input({ gateway: { requests: {}, payloadBytes: 10 * MiB, calls: 0 } }))).to.deep.equal([]);
    expect(rule(input())).to.deep.equal([]);
  });

  it('memory-near-limit fires when current or peak reaches 80 % of the limit', () => {
    const rule = BOTTLENECK_RULES['memory-near-limit'];
    expect(rule(input({ memory: { current: 80, peak: 10, limit: 100 } }))[0].evidence).to.include({ currentShare: 0.8 });
    expect(rule(input({ memory: { current: 10, peak: 90, limit: 100 } }))[0].evidence).to.include({ peakShare: 0.9 });
    expect(rule(input({ memory: { current: 79, peak: 79, limit: 100 } }))).to.deep.equal([]);
    expect(rule(input({ memory: { current: 79, peak: 79, limit: 0 } }))).to.deep.equal([]);
  });

  describe('chatty-gateway', () => {
    const rule = BOTTLENECK_RULES['chatty-gateway'];

    it('fires at ≥ 50 requests per call', () => {
      const found = rule(input({ gateway: { requests: { 'storage.get': 90, 'events.publish': 10 }, payloadBytes: 0, calls: 2 }, durationMs: 60_000 }));
      expect(found[0].evidence).to.include({ requests: 100, calls: 2, requestsPerCall: 50 });
      expect(found[0].evidence.topOperations).to.deep.equal({ 'storage.get': 90, 'events.publish': 10 });
      expect(rule(input({ gateway: { requests: { 'storage.get': 99 }, payloadBytes: 0, calls: 2 }, durationMs: 60_000 }))).to.deep.equal([]);
    });

    it('fires at ≥ 1000 requests/s, counting a session under a second as one second', () => {
      const gateway = { requests: { 'storage.get': 2000 }, payloadBytes: 0, calls: 1000 };
      expect(rule(input({ gateway, durationMs: 2000 }))[0].evidence).to.include({ requestsPerSecond: 1000 });
      expect(rule(input({ gateway, durationMs: 2001 }))).to.deep.equal([]);
      expect(rule(input({ gateway: { ...gateway, requests: { x: 999 } }, durationMs: 10 }))).to.deep.equal([]);
    });
  });

  it('findBottlenecks runs every rule, in table order', () => {
    const found = findBottlenecks(input({
      methods: { slow: stats(20, 200, { p90: 300, errors: 5 }), quick: stats(1, 1) },
      memory: { current: 60 * MiB, peak: 60 * MiB, limit: 64 * MiB },
    }));
    expect(found.map((b) => b.rule)).to.deep.equal(['hot-method', 'slow-method', 'error-prone-method', 'memory-near-limit']);
  });

  it('estimates a mean from percentiles', () => {
    expect(estimateMeanMs(stats(10, 10, { p90: 20, p99: 50, max: 90 }))).to.be.closeTo(14.85, 1e-9);
    expect(estimateMeanMs(stats(10, 7))).to.be.closeTo(7, 1e-9);
  });
});
