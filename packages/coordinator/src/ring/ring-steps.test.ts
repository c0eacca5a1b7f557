// RingSteps fed ring_progress reports by hand, as the trainer feeds them: no socket.
import { ProtocolError, type RingProgressMessage } from '@ddp/core';
import { protocolRefusal } from '@ddp/core/testing';
import { describe, expect, it } from 'vitest';
import { ReplicaMismatchError, RingSteps, type RingCommit } from './ring-steps.js';

/** Runs `fn`, which must refuse with DDP_BAD_MESSAGE; returns the error. */
const badMessage = (fn: () => unknown) => protocolRefusal(fn, 'DDP_BAD_MESSAGE');

const H1 = '1111111111111111';
const H2 = '2222222222222222';

/** Shards of 3, 2, 2 (a global batch of 7) at every step, as shardSizes(7, 3) gives them. */
const sizes7 = (_step: number, position: number) => ({ shard: [3, 2, 2][position]!, batch: 7 });

function report(generation: number, step: number, count: number, over: Partial<RingProgressMessage> = {}): RingProgressMessage {
  return {
    type: 'ring_progress', generation, step, count, lossSum: count * 0.5, bytesSent: 1000,
    prepareMs: 1, computeMs: 10, allreduceMs: 2, optimizerMs: 1, cycleMs: 0, ...over,
  };
}


describe('RingSteps', () => {
  it('commits a step only once every member reported it, in step order, whatever the arrival order', () => {
    // Ranks 4, 1, 7 at positions 0, 1, 2; the run is steps 5..7.
    const run = new RingSteps(3, [4, 1, 7], 5, 8, sizes7);
    expect(run.committed).toBe(5);
    expect(run.waitingFor).toEqual([4, 1, 7]);
    expect(run.onProgress(7, report(3, 5, 2))).toEqual([]);
    expect(run.onProgress(7, report(3, 6, 2))).toEqual([]); // rank 7 runs ahead
    expect(run.onProgress(4, report(3, 5, 3))).toEqual([]);
    expect(run.waitingFor).toEqual([1]);
    const c5 = run.onProgress(1, report(3, 5, 2));
    expect(c5.map((c) => c.step)).toEqual([5]);
    expect(c5[0]).toMatchObject({ step: 5, samples: 7, lossSum: 3.5 });
    expect(run.committed).toBe(6);
    expect(run.complete).toBe(false);
    // Rank 7 already reported step 6: it is not waited for.
    expect(run.waitingFor).toEqual([4, 1]);
    expect(run.onProgress(1, report(3, 6, 2))).toEqual([]);
    expect(run.onProgress(4, report(3, 6, 3)).map((c) => c.step)).toEqual([6]);
    for (const r of [4, 1]) expect(run.onProgress(r, report(3, 7, r === 4 ? 3 : 2))).toEqual([]);
    expect(run.onProgress(7, report(3, 7, 2)).map((c) => c.step)).toEqual([7]);
    expect(run.committed).toBe(8);
    expect(run.complete).toBe(true);
  });

  it('a slow member catching up commits the steps the others already reported, one per report, in order', () => {
    const run = new RingSteps(0, [0, 1], 0, 4, () => ({ shard: 2, batch: 4 }));
    for (let s = 0; s < 4; s++) expect(run.onProgress(0, report(0, s, 2))).toEqual([]);
    expect(run.waitingFor).toEqual([1]);
    expect(run.committed).toBe(0);
    const commits: RingCommit[] = [];
    for (let s = 0; s < 4; s++) {
      const c = run.onProgress(1, report(0, s, 2, { lossSum: s }));
      expect(c).toHaveLength(1);
      commits.push(...c);
    }
    expect(commits.map((c) => c.step)).toEqual([0, 1, 2, 3]);
    // Each commit carries its own step's reports (rank 0 reported 1.0 each time; rank 1 reported s).
    expect(commits.map((c) => c.lossSum)).toEqual([1, 2, 3, 4]);
    expect(run.complete).toBe(true);
  });

  it('adds the loss sums in position order, not arrival order', () => {
    const run = new RingSteps(0, [4, 1, 7], 0, 1, sizes7);
    // Float addition is not associative: the order shows in the last bit.
    expect(0.1 + 0.2 + 0.3).not.toBe(0.3 + 0.2 + 0.1);
    run.onProgress(7, report(0, 0, 2, { lossSum: 0.3 }));
    run.onProgress(1, report(0, 0, 2, { lossSum: 0.2 }));
    const [c] = run.onProgress(4, report(0, 0, 3, { lossSum: 0.1 }));
    expect(c!.lossSum).toBe(0.1 + 0.2 + 0.3);
  });

  it('refuses a report from a non-member, for another generation, out of order, past the run, or with the wrong count', () => {
    const run = new RingSteps(3, [0, 1], 2, 4, (_s, p) => ({ shard: p === 0 ? 4 : 3, batch: 7 }));
    expect(badMessage(() => run.onProgress(9, report(3, 2, 4))).message).toBe('ring_progress: rank 9 is not a member of ring 3');
    expect(badMessage(() => run.onProgress(0, report(2, 2, 4))).message).toBe(
      'ring_progress: step 3 of ring 2, but rank 0 is due to report step 3 of ring 3 (run 3..4)',
    );
    expect(badMessage(() => run.onProgress(0, report(3, 3, 4))).message).toMatch(/step 4 of ring 3, but rank 0 is due to report step 3 of ring 3/);
    expect(badMessage(() => run.onProgress(0, report(3, 1, 4))).message).toMatch(/step 2 of ring 3, but rank 0 is due to report step 3/);
    expect(badMessage(() => run.onProgress(1, report(3, 2, 4))).message).toBe('ring_progress: step 3 gives rank 1 3 samples, the report counts 4');
    run.onProgress(0, report(3, 2, 4));
    // The same step twice is out of order too.
    expect(badMessage(() => run.onProgress(0, report(3, 2, 4))).message).toMatch(/step 3 of ring 3, but rank 0 is due to report step 4/);
    run.onProgress(0, report(3, 3, 4));
    expect(badMessage(() => run.onProgress(0, report(3, 4, 4))).message).toMatch(/step 5 of ring 3, but rank 0 is due to report step 5 of ring 3 \(run 3\.\.4\)/);
    // Nothing refused was counted: rank 1 is still the one waited for, and its reports commit both steps.
    expect(run.waitingFor).toEqual([1]);
    expect(run.onProgress(1, report(3, 2, 3)).map((c) => c.step)).toEqual([2]);
    expect(run.onProgress(1, report(3, 3, 3)).map((c) => c.step)).toEqual([3]);
    expect(run.complete).toBe(true);
  });

  it('compares hashes only on the steps that carry them, and names the ranks of each hash', () => {
    const run = new RingSteps(0, [4, 1, 7], 0, 3, sizes7);
    const feed = (step: number, hashes: Array<string | undefined>) =>
      [4, 1, 7].flatMap((rank, p) => run.onProgress(rank, report(0, step, [3, 2, 2][p]!, hashes[p] ? { hash: hashes[p] } : {})));
    // Step 0 carries no hash: nothing is compared, the commit has none.
    const [c0] = feed(0, [undefined, undefined, undefined]);
    expect(c0!.hash).toBeUndefined();
    expect(c0!.hashes).toBeUndefined();
    // Step 1: all equal.
    const [c1] = feed(1, [H1, H1, H1]);
    expect(c1!.hash).toBe(H1);
    expect(c1!.hashes).toEqual([{ rank: 4, hash: H1 }, { rank: 1, hash: H1 }, { rank: 7, hash: H1 }]);
    // Step 2: rank 1 differs.
    let err: unknown;
    try {
      feed(2, [H1, H2, H1]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplicaMismatchError);
    expect((err as ReplicaMismatchError).step).toBe(2);
    expect((err as ReplicaMismatchError).hashes).toEqual([{ rank: 4, hash: H1 }, { rank: 1, hash: H2 }, { rank: 7, hash: H1 }]);
    expect((err as Error).message).toBe(
      `Mismatched replicas after step 3: the workers' weights differ (ranks 4, 7: ${H1}; rank 1: ${H2}); they must apply bitwise-identical steps`,
    );
    expect(run.committed).toBe(2); // the mismatched step is not committed
  });

  it('a member that leaves out the hash on a step the others hash is a mismatch too', () => {
    const run = new RingSteps(0, [0, 1], 0, 1, () => ({ shard: 1, batch: 2 }));
    run.onProgress(0, report(0, 0, 1, { hash: H1 }));
    expect(() => run.onProgress(1, report(0, 0, 1))).toThrow(new ReplicaMismatchError(0, [{ rank: 0, hash: H1 }, { rank: 1, hash: '(none)' }]));
  });

  it('timing: the transfer is the fastest member\'s allreduce, the rest is waiting, and the phases add up to the mean cycle', () => {
    const run = new RingSteps(0, [0, 1], 0, 2, () => ({ shard: 2, batch: 4 }));
    // Rank 0 waited 3 ms in its allreduce for rank 1; its cycle between reports was 20 ms, rank 1's 21 ms.
    run.onProgress(0, report(0, 0, 2, { prepareMs: 0.5, computeMs: 10, allreduceMs: 5, optimizerMs: 1, cycleMs: 20, bytesSent: 1000 }));
    const [c] = run.onProgress(1, report(0, 0, 2, { prepareMs: 1.5, computeMs: 14, allreduceMs: 2, optimizerMs: 2, cycleMs: 21, bytesSent: 3000 }));
    const t = c!.timing;
    expect(t.prepare).toBe(1);
    expect(t.compute).toBe(12);
    expect(t.allreduce).toBe(2);
    expect(t.waiting).toBe(1.5); // (3 + 0) / 2
    expect(t.optimizer).toBe(1.5);
    expect(t.other).toBe(((20 - 16.5) + (21 - 19.5)) / 2);
    expect(t.prepare + t.compute + t.allreduce + t.waiting + t.optimizer + t.other).toBeCloseTo((20 + 21) / 2, 12);
    expect(c!.gradientBytes).toBe(2000);
    // Per rank (the step event's `ranks`): each member's compute, the common transfer, its own wait,
    // and its own gathering and optimizer times (the timeline lays them out).
    expect(c!.ranks).toEqual([
      { rank: 0, computeMs: 10, allreduceMs: 2, waitingMs: 3, prepareMs: 0.5, optimizerMs: 1 },
      { rank: 1, computeMs: 14, allreduceMs: 2, waitingMs: 0, prepareMs: 1.5, optimizerMs: 2 },
    ]);
    // The first step of a run has no cycle yet (cycleMs 0): nothing is counted as other.
    const [c2] = [0, 1].flatMap((r) => run.onProgress(r, report(0, 1, 2, { cycleMs: 0 })));
    expect(c2!.timing.other).toBe(0);
  });

  it('needs at least one member', () => {
    expect(() => new RingSteps(0, [], 0, 1, sizes7)).toThrow(RangeError);
  });

  it('each commit names the member whose report came last, and how long after the first', () => {
    let now = 100;
    const run = new RingSteps(0, [2, 5, 9], 0, 2, sizes7, () => now);
    run.onProgress(5, report(0, 0, 2));
    now = 104;
    run.onProgress(2, report(0, 0, 3));
    now = 450;
    expect(run.onProgress(9, report(0, 0, 2))[0]!.lastReport).toEqual({ rank: 9, afterFirstMs: 350 });
    // Step 1: rank 9 reported it first, rank 2 last.
    run.onProgress(9, report(0, 1, 2));
    now = 460;
    run.onProgress(5, report(0, 1, 2));
    now = 470;
    expect(run.onProgress(2, report(0, 1, 3))[0]!.lastReport).toEqual({ rank: 2, afterFirstMs: 20 });
  });
});
