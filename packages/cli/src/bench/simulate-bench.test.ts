import { describe, expect, it } from 'vitest';
import { formatSimulation, simulate, type SimulateOptions } from './simulate-bench.js';
import { addEfficiencies, windowThroughput, type ScalingRun } from './scaling-bench.js';
import { summarise } from './allreduce-bench.js';
import { countMismatches, memberInput } from './member-messages.js';

describe('simulate', () => {
  const base: SimulateOptions = {
    workers: [2, 8, 256],
    net: { latencySec: 50e-6, bandwidthBytesPerSec: 1.25e9 },
    params: [93322, 1e7],
    compute: { seconds: 0.06, batchSize: 64, from: 'test' },
    compress: 'none',
    scaling: 'weak',
  };

  it('gives the alpha-beta times written out by hand', () => {
    const rows = simulate(base);
    const at = (p: number, n: number, a: string) => rows.find((r) => r.params === p && r.workers === n && r.algo === a)!;
    // 10M floats = 40 MB at 1.25 GB/s: 32 ms per full vector.
    const ring8 = at(1e7, 8, 'ring');
    expect(ring8.commMs).toBeCloseTo((14 * 50e-6 + (14 / 8) * 0.032) * 1e3, 9);
    expect(ring8.stepMs).toBeCloseTo(60 + ring8.commMs, 9);
    expect(ring8.efficiency).toBeCloseTo(60 / ring8.stepMs, 12);
    expect(ring8.samplesPerSec).toBeCloseTo((8 * 64) / (ring8.stepMs / 1e3), 6);
    const star8 = at(1e7, 8, 'star');
    expect(star8.commMs).toBeCloseTo((2 * 50e-6 + 2 * 8 * 0.032) * 1e3, 9);
    const star2 = at(93322, 2, 'star');
    expect(star2.commMs).toBeCloseTo((2 * 50e-6 + (4 * 93322 * 4) / 1.25e9) * 1e3, 9);
    // fp16 halves the bytes; strong scaling divides compute by N and keeps the global batch.
    const fp16 = simulate({ ...base, compress: 'fp16' });
    expect(fp16.find((r) => r.params === 1e7 && r.workers === 8 && r.algo === 'ring')!.commMs).toBeCloseTo((14 * 50e-6 + (14 / 8) * 0.016) * 1e3, 9);
    const strong = simulate({ ...base, scaling: 'strong' }).find((r) => r.params === 1e7 && r.workers === 8 && r.algo === 'ring')!;
    expect(strong.computeMs).toBeCloseTo(7.5, 12);
    expect(strong.samplesPerSec).toBeCloseTo(64 / (strong.stepMs / 1e3), 6);
  });

  it('prints one table per parameter count with star and ring per worker count', () => {
    const lines = formatSimulation(base, simulate(base));
    expect(lines[0]).toBe('alpha-beta model: latency 50 us, bandwidth 10 Gbit/s per NIC and direction; float32 gradients (4 bytes/param)');
    expect(lines).toContain('93,322 parameters (0.373 MB per gradient)');
    expect(lines).toContain('10,000,000 parameters (40.000 MB per gradient)');
    const row8 = lines.filter((l) => /^\s+8 /.test(l));
    expect(row8).toHaveLength(2);
    // 10M floats, N = 8: ring 56.70 ms comm (51.4%), star 512.10 ms (10.5%).
    expect(row8[1]).toMatch(/^\s+8\s+60\.00 \|\s+512\.10\s+572\.10\s+10\.5% \|\s+56\.70\s+116\.70\s+51\.4%/);
  });
});

describe('benchmark arithmetic', () => {
  it('summarises members: slowest rank per iteration, NCCL-tests bandwidths', () => {
    const c = { id: 0, algo: 'ring' as const, floats: 1e6, compress: 'fp16' as const, iters: 3, warmup: 0 };
    const row = summarise(4, c, [[1, 5, 3], [2, 2, 2], [4, 1, 1]], 0);
    expect(row.iterationMs).toEqual([4, 5, 3]);
    expect(row.medianMs).toBe(4);
    expect(row.rankMedianMs).toEqual([3, 2, 1]);
    expect(row.wireBytes).toBe(2e6);
    expect(row.algbwGBps).toBeCloseTo(4e6 / 0.004 / 1e9, 12);
    expect(row.busbwGBps).toBeCloseTo(row.algbwGBps * 1.5, 12);
  });

  it('checks member sums exactly', () => {
    const n = 5;
    const sum = new Float32Array(1001);
    for (let r = 0; r < n; r++) memberInput(r, 1001).forEach((v, i) => (sum[i] += v));
    expect(countMismatches(sum, n)).toEqual({ mismatches: 0, firstMismatch: -1 });
    sum[17]! += 1;
    sum[500]! -= 0.5;
    expect(countMismatches(sum, n)).toEqual({ mismatches: 2, firstMismatch: 17 });
  });

  it('times the scaling window from step arrivals and computes both efficiencies', () => {
    const arrivals = Array.from({ length: 12 }, (_, i) => ({ step: i + 1, samples: 64, at: 1000 + 100 * (i + 1) }));
    expect(windowThroughput(arrivals, 2, 10)).toEqual({ samplesPerSec: 640, windowSeconds: 1, windowSteps: 10 });
    expect(() => windowThroughput(arrivals, 5, 10)).toThrow(/window needs steps 5..15/);
    const run = (workers: number, samplesPerSec: number, allreduce?: string): ScalingRun => ({
      workers, allreduce, samplesPerSec, windowSteps: 1, windowSeconds: 1, reportedSamplesPerSec: undefined, trainSeconds: undefined,
      wallSeconds: 1, backend: 'wasm', breakdown: undefined, efficiency: undefined, efficiencyVsSingleProcess: undefined, command: [],
    });
    const runs = [run(0, 500), run(1, 400, 'star'), run(2, 600, 'star'), run(1, 410, 'ring'), run(2, 700, 'ring')];
    addEfficiencies(runs);
    expect(runs[0]!.efficiency).toBeUndefined();
    expect(runs[2]!.efficiency).toBeCloseTo(600 / 800, 12);
    expect(runs[4]!.efficiency).toBeCloseTo(700 / 820, 12);
    expect(runs[4]!.efficiencyVsSingleProcess).toBeCloseTo(700 / 1000, 12);
  });
});
