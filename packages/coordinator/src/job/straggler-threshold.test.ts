import { describe, expect, it } from 'vitest';
import { StragglerThreshold } from './straggler-threshold.js';

describe('StragglerThreshold', () => {
  it('is F x the median of the recent durations, once enough are in, and never below the floor', () => {
    const t = new StragglerThreshold({ factor: 3, minSamples: 3, floorMs: 100 });
    t.record(40);
    t.record(60);
    expect(t.medianMs).toBeNull();
    expect(t.thresholdMs).toBeNull();
    t.record(50);
    expect(t.medianMs).toBe(50);
    expect(t.thresholdMs).toBe(150);
    t.record(1000); // one outlier moves the median little
    expect(t.medianMs).toBe(55);
    const small = new StragglerThreshold({ factor: 3, minSamples: 1, floorMs: 100 });
    small.record(5);
    expect(small.thresholdMs).toBe(100);
  });

  it('keeps only the last `window` durations', () => {
    const t = new StragglerThreshold({ factor: 2, window: 3, minSamples: 3, floorMs: 0 });
    for (const ms of [500, 500, 500, 10, 20, 30]) t.record(ms);
    expect(t.medianMs).toBe(20);
  });

  it('defaults: window 20, 5 samples first, a 200 ms floor', () => {
    const t = new StragglerThreshold({ factor: 3 });
    for (let i = 0; i < 4; i++) t.record(10);
    expect(t.thresholdMs).toBeNull();
    t.record(10);
    expect(t.thresholdMs).toBe(200);
    for (let i = 0; i < 20; i++) t.record(100);
    expect(t.thresholdMs).toBe(300);
  });

  it('refuses a factor that is not > 1 (RangeError)', () => {
    for (const factor of [1, 0.5, NaN, Infinity]) expect(() => new StragglerThreshold({ factor })).toThrow(RangeError);
  });
});
