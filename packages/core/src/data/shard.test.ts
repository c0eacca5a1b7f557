import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { shardBatch, shardSizes } from './shard.js';

describe('shardSizes', () => {
  it('splits evenly, giving the first total % workers ranks one extra (fresh random cases)', () => {
    for (let t = 0; t < 200; t++) {
      const total = randomInt(0, 500);
      const workers = randomInt(1, 20);
      const sizes = shardSizes(total, workers);
      expect(sizes.length).toBe(workers);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      sizes.forEach((s, r) => expect(s).toBe(Math.floor(total / workers) + (r < total % workers ? 1 : 0)));
    }
  });

  it('gives examples as documented', () => {
    expect(shardSizes(10, 3)).toEqual([4, 3, 3]);
    expect(shardSizes(2, 4)).toEqual([1, 1, 0, 0]);
    expect(shardSizes(64, 1)).toEqual([64]);
  });

  it('throws RangeError for bad arguments', () => {
    for (const [total, workers] of [
      [10, 0],
      [10, 1.5],
      [-1, 2],
      [2.5, 2],
      [Number.NaN, 2],
    ]) {
      expect(() => shardSizes(total, workers)).toThrow(RangeError);
    }
  });
});

describe('shardBatch', () => {
  it('returns contiguous slices in rank order that concatenate back to the batch', () => {
    for (let t = 0; t < 100; t++) {
      const batch = Uint32Array.from({ length: randomInt(0, 200) }, () => randomInt(0, 60000));
      const workers = randomInt(1, 9);
      const shards = shardBatch(batch, workers);
      expect(shards.map((s) => s.length)).toEqual(shardSizes(batch.length, workers));
      expect(Uint32Array.from(shards.flatMap((s) => [...s]))).toEqual(batch);
    }
  });

  it('throws RangeError for a bad worker count', () => {
    expect(() => shardBatch(new Uint32Array(4), 0)).toThrow(/workers must be an integer >= 1, got 0/);
  });
});
