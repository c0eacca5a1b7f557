import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { shardBatch, shardLengths, shardSizes } from './shard.js';

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

describe('shardBatch with a unit (micro-shards of the exact reduction)', () => {
  it('every shard is a whole number of units and starts at a multiple of the unit; unit counts within one (fresh random cases)', () => {
    for (let t = 0; t < 300; t++) {
      const unit = [1, 2, 16][randomInt(0, 3)]!;
      const batch = Uint32Array.from({ length: randomInt(0, 300) }, () => randomInt(0, 60000));
      const workers = randomInt(1, 12);
      const shards = shardBatch(batch, workers, unit);
      expect(shards.length).toBe(workers);
      expect(Uint32Array.from(shards.flatMap((s) => [...s]))).toEqual(batch);
      let start = 0;
      const units = shards.map((s) => {
        if (s.length > 0) expect(start % unit).toBe(0);
        // only the shard holding the batch's end may end off a unit boundary (a short last micro-shard)
        if (start + s.length !== batch.length) expect(s.length % unit).toBe(0);
        start += s.length;
        return Math.ceil(s.length / unit);
      });
      expect(units).toEqual(shardSizes(Math.ceil(batch.length / unit), workers));
      expect(shards.map((s) => s.length)).toEqual(shardLengths(batch.length, workers, unit));
    }
  });

  it('gives examples as documented', () => {
    expect(shardLengths(64, 3, 16)).toEqual([32, 16, 16]);
    expect(shardLengths(50, 2, 16)).toEqual([32, 18]);
    expect(shardLengths(40, 4, 16)).toEqual([16, 16, 8, 0]);
    expect(shardLengths(10, 3)).toEqual(shardSizes(10, 3));
    expect(() => shardLengths(10, 2, 0)).toThrow(RangeError);
  });
});
