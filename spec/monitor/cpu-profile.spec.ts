import { expect } from 'chai';
import { cpuTimeMs, mergeCpuProfiles, toCpuProfile, topSelfTime, type CpuProfile, type CpuProfileNode } from '../../lib/monitor/cpu-profile.js';

function node(id: number, functionName: string, children: number[] = [], url = functionName.startsWith('(') ? '' : 'plugin.js'): CpuProfileNode {
  return { id, hitCount: 0, children, callFrame: { functionName, url, scriptId: 1, lineNumber: id, columnNumber: 0 } };
}

/** Samples at 1 ms steps from `start` (µs): `work` ×3 then `(program)` ×1, as real deltas. */
function profile(start: number, deltas = [1000, 1000, 1000, 1000]): CpuProfile {
  return {
    nodes: [node(1, '(root)', [2, 3]), node(2, 'work'), node(3, '(program)')],
    startTime: start,
    endTime: start + 5000,
    samples: [2, 2, 2, 3],
    timeDeltas: deltas,
  };
}

describe('cpu profiles', () => {
  it('measures CPU time with each sample lasting until the next, idle excluded', () => {
    // Samples at 1, 2, 3, 4 ms, end at 5 ms: the time before the first sample is not known to be busy.
    expect(cpuTimeMs(profile(0))).to.equal(4);
    const idle = { ...profile(0), nodes: [...profile(0).nodes, node(4, '(idle)')], samples: [2, 4, 4, 3] };
    expect(cpuTimeMs(idle)).to.equal(2);
  });

  it('names the top self-time JS function, not V8 internals', () => {
    const p = { ...profile(0), samples: [2, 3, 3, 3] };
    expect(topSelfTime(p)).to.deep.include({ functionName: 'work', url: 'plugin.js', selfMs: 1, share: 0.25 });
    expect(topSelfTime({ ...p, samples: [3, 3, 3, 3] })).to.equal(undefined);
  });

  it("repairs isolated-vm's timeDeltas, which are offsets from startTime", () => {
    const fixed = toCpuProfile(profile(0, [1000, 2000, 3000, 4000]))!;
    expect(fixed.timeDeltas).to.deep.equal([1000, 1000, 1000, 1000]);
    expect(toCpuProfile(profile(0))!.timeDeltas).to.deep.equal([1000, 1000, 1000, 1000]);
  });

  it('merges per-entry profiles into one tree with the gap between them idle', () => {
    const merged = mergeCpuProfiles([profile(20_000), profile(0)]);
    expect(merged.startTime).to.equal(0);
    expect(merged.endTime).to.equal(25_000);
    expect(merged.nodes.filter((n) => n.callFrame.functionName === 'work')).to.have.length(1);
    const names = merged.samples.map((id) => merged.nodes.find((n) => n.id === id)!.callFrame.functionName);
    expect(names).to.deep.equal(['work', 'work', 'work', '(program)', '(idle)', 'work', 'work', 'work', '(program)']);
    expect(merged.timeDeltas).to.deep.equal([1000, 1000, 1000, 1000, 1000, 16000, 1000, 1000, 1000]);
    expect(merged.nodes.find((n) => n.callFrame.functionName === '(idle)')!.hitCount).to.equal(1);
    expect(cpuTimeMs(merged)).to.equal(8);
  });

  it('reads ThreadCpuProfile[] and rejects what is not a profile', () => {
    expect(toCpuProfile([{ threadId: 1, profile: profile(0) }, { threadId: 2, profile: profile(9000) }])!.samples).to.have.length(9);
    expect(toCpuProfile({ nodes: [] })).to.equal(undefined);
    expect(toCpuProfile([])).to.equal(undefined);
    expect(toCpuProfile(null)).to.equal(undefined);
  });
});
