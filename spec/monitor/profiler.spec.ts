import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import { InvalidArgumentError } from '../../lib/errors.js';
import { toCpuProfile, type CpuProfile } from '../../lib/monitor/cpu-profile.js';
import { Profiler, type ProfileTarget } from '../../lib/monitor/profiler.js';
import type { MethodStats, PluginMetrics } from '../../lib/monitor/types.js';

const MiB = 1024 * 1024;

function stats(count: number, p50: number, over: Partial<MethodStats> = {}): MethodStats {
  return { count, errors: 0, p50, p90: p50, p99: p50, max: p50, ...over };
}

function metrics(over: Partial<PluginMetrics> = {}): PluginMetrics {
  return {
    pluginId: 'p',
    at: 0,
    memory: { current: 10 * MiB, peak: 12 * MiB, limit: 64 * MiB },
    cpu: { current: 0, average: 0, limit: 50 },
    network: { bytesIn: 0, bytesOut: 0, requestCount: 0 },
    filesystem: { filesOpen: 0, bytesRead: 0, bytesWritten: 0 },
    executionTime: 0,
    errorCount: 0,
    lastActivity: 0,
    calls: {},
    ...over,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Profiler', () => {
  let outDir: string;
  beforeEach(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'logomesh-profiler-'));
  });
  afterEach(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  describe('with a real isolate', () => {
    let isolate: ivm.Isolate;
    afterEach(() => isolate?.dispose());

    it('writes a DevTools .cpuprofile naming the busy function and measures its CPU time', async function () {
      this.timeout(10_000);
      isolate = new ivm.Isolate({ memoryLimit: 32 });
      const context = await isolate.createContext();
      await context.eval(
        'function busyLoop(ms) { const end = Date.now() + ms; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); return x; }',
      );
      const busyLoop: ivm.Reference<(ms: number) => number> = await context.global.get('busyLoop', { reference: true });
      const target: ProfileTarget = {
        pluginId: '@acme/busy',
        runtimeKind: 'nodejs',
        metrics: () => metrics({ memory: { current: isolate.getHeapStatisticsSync().used_heap_size, peak: 0, limit: 32 * MiB } }),
        cpuProfiler: {
          start: (title) => isolate.startCpuProfiler(title),
          stop: async (title) => {
            // isolated-vm hands a profile over when the isolate releases its lock; a stop issued while the
            // lock is still held (right after a call returns) runs inside it and gets nothing. Let it go idle.
            await sleep(10);
            // One profile per isolate entry: merge them.
            return toCpuProfile(await isolate.stopCpuProfiler(title));
          },
        },
      };
      const profiler = new Profiler({ outDir }, () => target);

      await sleep(10); // An isolate lock taken before profiling starts (here by the setup calls) is not profiled.
      const session = profiler.start('@acme/busy');
      await busyLoop.apply(undefined, [100]);
      await sleep(100);
      await busyLoop.apply(undefined, [100]);
      const report = await profiler.stop(session);

      expect(report.cpuProfilePath).to.be.a('string');
      expect(report.cpuProfilePath!.startsWith(join(outDir, '_acme_busy-'))).to.equal(true);
      expect(report.cpuProfilePath!.endsWith('.cpuprofile')).to.equal(true);
      const written = JSON.parse(await readFile(report.cpuProfilePath!, 'utf8')) as CpuProfile;
      expect(written).to.include.keys('nodes', 'startTime', 'endTime', 'samples', 'timeDeltas');
      expect(written.nodes.map((n) => n.callFrame.functionName)).to.include('busyLoop');
      expect(written.samples).to.have.length(written.timeDeltas.length);
      const span = written.endTime - written.startTime;
      expect(written.timeDeltas.reduce((a, b) => a + b, 0)).to.be.at.most(span);

      // ~200 ms of busy loop; the 100 ms pause between the calls is idle, not CPU.
      expect(report.cpuTimeMs).to.be.within(140, 260);
      expect(report.cpuTimeMs).to.be.below(report.durationMs - 50);
      const hot = report.bottlenecks.find((b) => b.rule === 'hot-method');
      expect(hot?.evidence).to.include({ functionName: 'busyLoop' });
    });
  });

  describe('with a fake target', () => {
    let current: PluginMetrics | undefined;
    let gateway: { requests: Record<string, number>; payloadBytes: number; calls: number };
    let clock: number;
    let profiler: Profiler;
    const target: ProfileTarget = {
      pluginId: 'p',
      runtimeKind: 'python',
      metrics: () => current,
      gatewayStats: () => structuredClone(gateway),
    };

    beforeEach(() => {
      clock = 1_000;
      current = metrics({ executionTime: 500, calls: { a: stats(10, 5), b: stats(3, 1), idle: stats(7, 1) } });
      gateway = { requests: { 'storage.get': 100 }, payloadBytes: 1000, calls: 13 };
      profiler = new Profiler({ outDir, now: () => clock, sampleIntervalMs: 0 }, (id) => {
        if (id !== 'p') throw new Error(`unknown plugin ${id}`);
        return target;
      });
    });
    afterEach(() => profiler.close());

    it('reports per-method counts, CPU time and memory as differences over the session', async () => {
      const session = profiler.start('p');
      expect(session).to.include({ pluginId: 'p', startedAt: 1_000 });
      clock = 3_500;
      current = metrics({
        executionTime: 740,
        memory: { current: 20 * MiB, peak: 30 * MiB, limit: 64 * MiB },
        calls: { a: stats(30, 5, { p90: 8 }), b: stats(4, 1), idle: stats(7, 1), fresh: stats(2, 3) },
      });
      const report = await profiler.stop(session);

      expect(report).to.include({ pluginId: 'p', startedAt: 1_000, durationMs: 2_500, cpuTimeMs: 240, gcPressure: false });
      expect(report.cpuProfilePath).to.equal(undefined);
      expect(Object.keys(report.methods)).to.have.members(['a', 'b', 'fresh']);
      expect(report.methods.a).to.include({ count: 30, countInSession: 20, p90: 8 });
      expect(report.methods.fresh.countInSession).to.equal(2);
      expect(report.memory).to.deep.equal({ start: 10 * MiB, end: 20 * MiB, growth: 10 * MiB, peak: 30 * MiB, limit: 64 * MiB });
    });

    it('flags GC pressure and bottlenecks found during the session', async () => {
      const session = profiler.start('p');
      clock = 2_000;
      current = metrics({ memory: { current: 40 * MiB, peak: 60 * MiB, limit: 64 * MiB }, calls: current!.calls });
      gateway = { requests: { 'storage.get': 1100, 'http.fetch': 50 }, payloadBytes: 1000, calls: 13 };
      const report = await profiler.stop(session.id);

      expect(report.gcPressure).to.equal(true);
      expect(report.bottlenecks.map((b) => b.rule)).to.have.members(['memory-near-limit', 'chatty-gateway']);
      const chatty = report.bottlenecks.find((b) => b.rule === 'chatty-gateway')!;
      expect(chatty.evidence).to.include({ requests: 1050, calls: 0, requestsPerSecond: 1050 });
    });

    it('samples memory while the session runs, so a passing peak is caught', async () => {
      const sampling = new Profiler({ outDir, sampleIntervalMs: 5 }, () => target);
      sampling.start('p');
      current = metrics({ memory: { current: 50 * MiB, peak: 12 * MiB, limit: 64 * MiB } });
      await sleep(40);
      current = metrics({ memory: { current: 11 * MiB, peak: 12 * MiB, limit: 64 * MiB } });
      const report = await sampling.stop('p');
      expect(report.memory).to.include({ peak: 50 * MiB, end: 11 * MiB });
    });

    it('treats counters that went down (a restart) as counting from zero', async () => {
      profiler.start('p');
      current = metrics({ executionTime: 30, calls: { a: stats(4, 5) } });
      const report = await profiler.stop('p');
      expect(report.cpuTimeMs).to.equal(30);
      expect(report.methods.a.countInSession).to.equal(4);
    });

    it('allows one session per plugin and refuses unknown sessions', async () => {
      const session = profiler.start('p');
      expect(profiler.isProfiling('p')).to.equal(true);
      expect(() => profiler.start('p')).to.throw(InvalidArgumentError);
      expect(() => profiler.start('nope')).to.throw(/unknown plugin/);
      await profiler.stop(session);
      const stale = await profiler.stop(session).catch((e: unknown) => e);
      expect(stale).to.be.instanceOf(InvalidArgumentError);
      expect((stale as InvalidArgumentError).code).to.equal(InvalidArgumentError.code);
      expect(profiler.start('p').id).to.not.equal(session.id);
    });

    it('identifies bottlenecks from current metrics plus the last session', async () => {
      expect(profiler.identifyBottlenecks('p').map((b) => b.rule)).to.deep.equal(['hot-method']);
      profiler.start('p');
      gateway = { requests: { 'storage.get': 102 }, payloadBytes: 1000 + 2 * 300 * 1024, calls: 14 };
      await profiler.stop('p');
      current = metrics({ calls: { slow: stats(5, 80, { p90: 150 }) } });
      const rules = profiler.identifyBottlenecks('p').map((b) => b.rule);
      expect(rules).to.have.members(['slow-method', 'large-payloads']);
      current = undefined;
      expect(profiler.identifyBottlenecks('p').map((b) => b.rule)).to.deep.equal(['large-payloads']);
    });
  });
});
