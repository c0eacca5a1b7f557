import { predictAllreduceSeconds } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { compareWithModel, fitAlphaBeta, predictBenchSeconds, type MeasuredAllreduce } from './alpha-beta-fit.js';

function rowsFrom(alpha: number, beta: number, noise = 0): MeasuredAllreduce[] {
  const rows: MeasuredAllreduce[] = [];
  for (const workers of [2, 4, 8]) {
    for (const algo of ['star', 'ring'] as const) {
      for (const floats of [1000, 93322, 1e6, 1e7]) {
        const wireBytes = floats * 4;
        // The benchmark's star has a member root: N-1 vectors each way.
        const n = workers;
        const t = algo === 'star' ? 2 * alpha + (2 * (n - 1) * wireBytes) / beta : 2 * (n - 1) * alpha + ((2 * (n - 1)) / n) * (wireBytes / beta);
        rows.push({ workers, algo, compress: 'none', floats, wireBytes, medianMs: t * 1000 * (1 + noise * (Math.random() * 2 - 1)) });
      }
    }
  }
  return rows;
}

describe('alpha-beta fit', () => {
  it('recovers alpha and beta from exact model times, for random networks', () => {
    for (let k = 0; k < 20; k++) {
      const alpha = 10 ** (-6 + 3 * Math.random()); // 1 us .. 1 ms
      const beta = 10 ** (7 + 3 * Math.random()); // 10 MB/s .. 10 GB/s
      const net = fitAlphaBeta(rowsFrom(alpha, beta).filter((r) => r.workers === 2));
      expect(net.latencySec / alpha).toBeCloseTo(1, 6);
      expect(net.bandwidthBytesPerSec / beta).toBeCloseTo(1, 6);
    }
  });

  it('predicts other worker counts exactly when the data follow the model, and reports the error otherwise', () => {
    const exact = compareWithModel(rowsFrom(50e-6, 1e9));
    expect(exact.fittedOn).toEqual([2]);
    expect(exact.worstAbsError).toBeLessThan(1e-9);
    expect(exact.rows.filter((r) => r.inFit)).toHaveLength(8);
    const noisy = compareWithModel(rowsFrom(50e-6, 1e9, 0.2), [2, 4]);
    expect(noisy.fittedOn).toEqual([2, 4]);
    expect(noisy.worstAbsError).toBeGreaterThan(0);
    expect(noisy.worstAbsError).toBeLessThan(0.6); // 20% noise on both sides of the fit
    expect(noisy.medianAbsError).toBeLessThanOrEqual(noisy.worstAbsError);
  });

  it("models the benchmark's star as core's coordinator star with one worker fewer", () => {
    const net = { latencySec: 3e-5, bandwidthBytesPerSec: 7e8 };
    for (const n of [2, 3, 8]) {
      expect(predictBenchSeconds({ workers: n, algo: 'star', wireBytes: 4e6 }, net)).toBeCloseTo(2 * 3e-5 + (2 * (n - 1) * 4e6) / 7e8, 12);
      expect(predictBenchSeconds({ workers: n, algo: 'ring', wireBytes: 4e6 }, net)).toBe(predictAllreduceSeconds('ring', n, 4e6, net));
    }
  });

  it('refuses data it cannot fit', () => {
    expect(() => fitAlphaBeta([])).toThrow(/at least 2 measurements/);
    const flat: MeasuredAllreduce[] = [
      { workers: 2, algo: 'ring', compress: 'none', floats: 10, wireBytes: 40, medianMs: 5 },
      { workers: 2, algo: 'ring', compress: 'none', floats: 1e6, wireBytes: 4e6, medianMs: 1 },
    ];
    expect(() => fitAlphaBeta(flat)).toThrow(/positive bandwidth/);
  });
});
