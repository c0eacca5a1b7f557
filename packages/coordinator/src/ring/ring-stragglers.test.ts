// RingStragglers fed commits by hand: which member held up a step, and once per episode.
import type { RankTiming } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import type { RingCommit } from './ring-steps.js';
import { RingStragglers } from './ring-stragglers.js';

/** A commit of `step` where each member's own work took `computeMs[position]` and `last` reported `afterFirstMs` after the first. */
function commit(step: number, computeMs: number[], last = { rank: 0, afterFirstMs: 1 }): RingCommit {
  const ranks: RankTiming[] = computeMs.map((c, rank) => ({ rank, computeMs: c, allreduceMs: 1, waitingMs: 0, prepareMs: 0, optimizerMs: 0 }));
  return {
    step, lossSum: 0, samples: 64, gradientBytes: 0, ranks, lastReport: last,
    timing: { prepare: 0, compute: 0, allreduce: 0, waiting: 0, optimizer: 0, other: 0 },
  };
}

const fresh = () => new RingStragglers({ factor: 3, minSamples: 3, floorMs: 100 });
/** Feeds `n` on-time steps of 50 ms (every member computing 40 ms). */
function warm(s: RingStragglers, n = 5): void {
  for (let i = 0; i < n; i++) expect(s.onCommit(commit(i, [40, 40, 40]), 50)).toBeNull();
}

describe('RingStragglers', () => {
  it('names nobody before enough step times are known, nor under the floor', () => {
    const s = fresh();
    expect(s.onCommit(commit(0, [40, 40, 900]), null)).toBeNull(); // a run's first step: no step time
    expect(s.onCommit(commit(1, [40, 40, 900]), 1000)).toBeNull(); // one sample only
    const tiny = new RingStragglers({ factor: 3, minSamples: 3, floorMs: 100 });
    for (let i = 0; i < 5; i++) tiny.onCommit(commit(i, [2, 2, 2]), 3);
    expect(tiny.onCommit(commit(5, [2, 2, 80]), 90)).toBeNull(); // 30x the median, but under the 100 ms floor
  });

  it('a step past F x the median whose excess is one member\'s own work names that member, once per episode', () => {
    const s = fresh();
    warm(s);
    expect(s.onCommit(commit(5, [40, 900, 40]), 910)).toEqual({ rank: 1, waitedMs: 910, medianMs: 50 });
    expect(s.onCommit(commit(6, [40, 900, 40]), 910)).toBeNull(); // the same episode
    expect(s.onCommit(commit(7, [40, 40, 40]), 50)).toBeNull(); // on time: the episode is over
    expect(s.onCommit(commit(8, [40, 900, 40]), 910)).toMatchObject({ rank: 1 });
  });

  it('a report that came F x the median after the first names its member (slow after the allreduce)', () => {
    const s = fresh();
    warm(s);
    expect(s.onCommit(commit(5, [40, 40, 40], { rank: 2, afterFirstMs: 700 }), 720)).toEqual({ rank: 2, waitedMs: 700, medianMs: 50 });
  });

  it('a slow step that no member\'s own work explains (stalled inside the allreduce) names nobody', () => {
    const s = fresh();
    warm(s);
    expect(s.onCommit(commit(5, [40, 45, 40]), 900)).toBeNull();
  });
});
