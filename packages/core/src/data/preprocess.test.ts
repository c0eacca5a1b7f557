import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Split } from './datasets.js';
import { gatherImages, gatherLabels } from './preprocess.js';

function randomSplit(count: number, rows: number, cols: number): Split {
  return {
    images: new Uint8Array(randomBytes(count * rows * cols)),
    labels: Uint8Array.from(randomBytes(count), (b) => b % 10),
    count,
    rows,
    cols,
  };
}

describe('gatherImages', () => {
  it('matches a naive NHWC reference with pixel / 255 in float32 (exact)', () => {
    const split = randomSplit(50, 1 + randomInt(0, 30), 1 + randomInt(0, 30));
    const indices = Array.from({ length: 17 }, () => randomInt(0, split.count));
    const got = gatherImages(split, indices);
    const { rows, cols } = split;
    expect(got.length).toBe(indices.length * rows * cols);
    // Reference: element [n, h, w, 0] of an NHWC tensor with one channel.
    for (let n = 0; n < indices.length; n++) {
      for (let h = 0; h < rows; h++) {
        for (let w = 0; w < cols; w++) {
          const pixel = split.images[indices[n] * rows * cols + h * cols + w];
          expect(got[(n * rows + h) * cols + w]).toBe(Math.fround(pixel / 255));
        }
      }
    }
  });

  it('maps 0 to 0 and 255 to 1, and takes a Uint32Array of indices', () => {
    const split: Split = { images: Uint8Array.from([0, 255, 128, 1]), labels: Uint8Array.from([3, 4]), count: 2, rows: 1, cols: 2 };
    expect([...gatherImages(split, Uint32Array.from([1, 0]))]).toEqual([Math.fround(128 / 255), Math.fround(1 / 255), 0, 1]);
    expect(gatherImages(split, []).length).toBe(0);
  });

  it('rejects indices outside the split, naming the position', () => {
    const split = randomSplit(5, 2, 2);
    expect(() => gatherImages(split, [0, 5])).toThrow('gatherImages: indices[1] = 5 is not a sample index in [0, 4]');
    expect(() => gatherImages(split, [-1])).toThrow(RangeError);
    expect(() => gatherImages(split, [1.5])).toThrow(RangeError);
    expect(() => gatherImages(split, [Number.NaN])).toThrow(RangeError);
  });
});

describe('gatherLabels', () => {
  it('returns the labels at the indices as int32', () => {
    const split = randomSplit(100, 1, 1);
    const indices = Uint32Array.from({ length: 40 }, () => randomInt(0, split.count));
    const got = gatherLabels(split, indices);
    expect(got).toBeInstanceOf(Int32Array);
    expect([...got]).toEqual([...indices].map((i) => split.labels[i]));
  });

  it('rejects indices outside the split', () => {
    expect(() => gatherLabels(randomSplit(3, 1, 1), [3])).toThrow(/gatherLabels: indices\[0\] = 3/);
  });
});
