import { describe, expect, it } from 'vitest';
import { algBandwidth, busBandwidth, predictAllreduceSeconds, predictStep } from './simulate.js';

const net = { latencySec: 1e-4, bandwidthBytesPerSec: 1e9 };

describe('alpha-beta cost model', () => {
  it('ring: 2(N-1) latencies plus 2(N-1)/N of the bytes', () => {
    // 4 workers, 4 MB: 6 * 100 us + 1.5 * 4 ms = 0.6 ms + 6 ms
    expect(predictAllreduceSeconds('ring', 4, 4e6, net)).toBeCloseTo(0.0066, 12);
    // 2 workers, 373,288 B (the seed CNN): 2 * 100 us + 373.288 us
    expect(predictAllreduceSeconds('ring', 2, 373_288, net)).toBeCloseTo(0.000573288, 12);
    expect(predictAllreduceSeconds('ring', 1, 4e6, net)).toBe(0);
  });

  it('star: 2 latencies plus N vectors in and N out through the root NIC', () => {
    // 4 workers, 4 MB: 200 us + 8 * 4 ms
    expect(predictAllreduceSeconds('star', 4, 4e6, net)).toBeCloseTo(0.0322, 12);
    // 1 worker still talks to the coordinator: 200 us + 2 * 4 ms
    expect(predictAllreduceSeconds('star', 1, 4e6, net)).toBeCloseTo(0.0082, 12);
  });

  it('step: compute then communicate; efficiency is compute over step time', () => {
    const p = predictStep({ computeSec: 0.05, workers: 4, bytes: 4e6, net, algo: 'ring' });
    expect(p.commSec).toBeCloseTo(0.0066, 12);
    expect(p.stepSec).toBeCloseTo(0.0566, 12);
    expect(p.efficiency).toBeCloseTo(0.05 / 0.0566, 12);
    const star = predictStep({ computeSec: 0.05, workers: 4, bytes: 4e6, net, algo: 'star' });
    expect(star.efficiency).toBeCloseTo(0.05 / 0.0822, 12);
    expect(predictStep({ computeSec: 0, workers: 1, bytes: 0, net, algo: 'ring' }).efficiency).toBe(1);
  });

  it('NCCL-tests bandwidths: algbw = bytes/time, busbw = algbw * 2(N-1)/N', () => {
    expect(algBandwidth(1e9, 2)).toBe(5e8);
    expect(busBandwidth(1e9, 1, 4)).toBeCloseTo(1.5e9, 3);
    expect(busBandwidth(1e9, 1, 1)).toBe(0);
    // A latency-free ring's bus bandwidth is the link bandwidth, whatever N.
    for (const n of [2, 3, 8, 64]) {
      const t = predictAllreduceSeconds('ring', n, 1e8, { latencySec: 0, bandwidthBytesPerSec: 2.5e9 });
      expect(busBandwidth(1e8, t, n)).toBeCloseTo(2.5e9, 0);
    }
  });

  it('rejects bad inputs naming the field', () => {
    expect(() => predictAllreduceSeconds('ring', 0, 1, net)).toThrow(/workers must be an integer >= 1, got 0/);
    expect(() => predictAllreduceSeconds('tree' as 'ring', 2, 1, net)).toThrow(/algo must be 'star' or 'ring', got "tree"/);
    expect(() => predictAllreduceSeconds('ring', 2, -1, net)).toThrow(/bytes must be a finite number >= 0/);
    expect(() => predictAllreduceSeconds('ring', 2, 1, { latencySec: 0, bandwidthBytesPerSec: 0 })).toThrow(/net.bandwidthBytesPerSec must be a number > 0, got 0/);
    expect(() => predictStep({ computeSec: -1, workers: 2, bytes: 1, net, algo: 'ring' })).toThrow(/computeSec/);
    expect(() => algBandwidth(1, 0)).toThrow(/seconds must be a finite number > 0, got 0/);
  });
});
