import { describe, expect, it } from 'vitest';
import type { DdpEvent } from './events.js';
import { TraceTimeline } from './timeline.js';

const start: DdpEvent = { event: 'start', backend: 'wasm', workers: 2, dataset: 'mnist', epochs: 1, batchSize: 64, seed: 1, trainSamples: 128, testSamples: 10 };
const step = (n: number, ranks: Array<[number, number, number, number, number, number]>): DdpEvent => ({
  event: 'step', step: n, epoch: 1, loss: 1, samples: 64,
  ranks: ranks.map(([rank, prepareMs, computeMs, allreduceMs, waitingMs, optimizerMs]) => ({ rank, prepareMs, computeMs, allreduceMs, waitingMs, optimizerMs })),
});

describe('the run as a Chrome trace', () => {
  it('lays each worker\'s step out backwards from its commit, phases inside the step, on one track per rank', () => {
    let now = 0; // µs
    const t = new TraceTimeline({ now: () => now });
    t.event(start);
    now = 50_000;
    t.event(step(1, [[0, 1, 30, 5, 0, 2], [1, 1, 25, 5, 5, 2]]));
    const spans = t.traceSpans;
    const rank0 = spans.filter((s) => s.tid === 1);
    expect(rank0.map((s) => s.name)).toEqual(['step 1', 'gather data', 'forward + backward', 'allreduce', 'optimizer']);
    expect(rank0[0]).toMatchObject({ ts: 0, dur: 50_000 });
    // 38 ms of phases end at the commit: they start at 12 ms.
    expect(rank0.slice(1).map((s) => [s.ts, s.dur])).toEqual([[12_000, 1_000], [13_000, 30_000], [43_000, 5_000], [48_000, 2_000]]);
    const rank1 = spans.filter((s) => s.tid === 2);
    expect(rank1.map((s) => s.name)).toEqual(['step 1', 'gather data', 'forward + backward', 'allreduce', 'waiting', 'optimizer']);
    const json = t.toJSON();
    expect(json.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => (e as { args: { name: string } }).args.name)).toEqual(['coordinator', 'worker rank 0', 'worker rank 1']);
  });

  it('squeezes phases that measured longer than the time between commits, so that they still nest', () => {
    let now = 0;
    const t = new TraceTimeline({ now: () => now });
    t.event(start);
    now = 10_000; // 10 ms between commits, 20 ms measured
    t.event(step(1, [[0, 0, 16, 2, 0, 2]]));
    const [s, ...phases] = t.traceSpans;
    expect(phases.reduce((a, p) => a + p.dur, 0)).toBe(10_000);
    for (const p of phases) expect(p.ts >= s!.ts && p.ts + p.dur <= s!.ts + s!.dur).toBe(true);
  });

  it('puts the evaluations and the checkpoints on the coordinator\'s track', () => {
    let now = 0;
    const t = new TraceTimeline({ now: () => now });
    t.event(start);
    now = 1_000;
    t.event(step(1, [[0, 0, 1, 0, 0, 0]]));
    now = 9_000;
    t.event({ event: 'epoch', epoch: 1, trainLoss: 1, testLoss: 1, testAccuracy: 0.5, seconds: 1 });
    now = 9_500;
    t.event({ event: 'saved', step: 1, path: '/tmp/x' });
    now = 20_000;
    t.event({ event: 'checkpoint', step: 1, path: '/tmp/c', bytes: 10, seconds: 0.004 });
    expect(t.traceSpans.filter((s) => s.tid === 0).map((s) => [s.name, s.ts, s.dur])).toEqual([
      ['evaluation', 1_000, 8_000],
      ['save', 9_000, 500],
      ['checkpoint', 16_000, 4_000],
    ]);
  });
});
