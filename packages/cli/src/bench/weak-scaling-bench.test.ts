import { describe, expect, it } from 'vitest';
import { formatWeakScaling, summariseWeakScaling, weakRoundPlan, type WeakScalingRun } from './weak-scaling-bench.js';

const run = (round: number, workers: number, allreduce: string | undefined, samplesPerSec: number): WeakScalingRun => ({
  round,
  workers,
  allreduce,
  batchSize: Math.max(1, workers) * 64,
  samplesPerSec,
  trainSeconds: undefined,
  backend: 'wasm',
  breakdown: undefined,
  wallSeconds: 1,
  command: [],
});

describe('weak scaling', () => {
  it('plans each round as the single process, then every N with every allreduce', () => {
    expect(weakRoundPlan([2, 4], ['star', 'ring'])).toEqual([[0, undefined], [2, 'star'], [2, 'ring'], [4, 'star'], [4, 'ring']]);
    expect(weakRoundPlan([2], undefined)).toEqual([[0, undefined], [2, undefined]]);
  });

  it('divides by N x the same round\'s single process, and takes the median over the rounds', () => {
    const runs = [
      run(1, 0, undefined, 1000), run(1, 2, 'ring', 1600),
      run(2, 0, undefined, 500), run(2, 2, 'ring', 900),
      run(3, 0, undefined, 1000), run(3, 2, 'ring', 1500),
    ];
    const [single, ring] = summariseWeakScaling(runs);
    expect(single).toMatchObject({ workers: 0, batchSize: 64, samplesPerSec: [1000, 500, 1000], medianSamplesPerSec: 1000, ratios: [], medianRatio: null });
    expect(ring).toMatchObject({ workers: 2, allreduce: 'ring', batchSize: 128, samplesPerSec: [1600, 900, 1500], medianSamplesPerSec: 1500 });
    expect(ring!.ratios).toEqual([0.8, 0.9, 0.75]);
    expect(ring!.medianRatio).toBe(0.8);
    const table = formatWeakScaling([single!, ring!]);
    expect(table[2]).toMatch(/^\s+2\s+ring\s+128\s+1500\.0\s+80\.0%\s+80\.0%, 90\.0%, 75\.0%$/);
  });

  it('refuses a round without its single-process run', () => {
    expect(() => summariseWeakScaling([run(1, 2, undefined, 100)])).toThrow(/round 1 has no single-process run/);
  });
});
