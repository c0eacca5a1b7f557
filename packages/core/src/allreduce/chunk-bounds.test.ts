import { describe, expect, it } from 'vitest';
import { chunkBounds } from './chunk-bounds.js';

function checkPartition(length: number, n: number): void {
  const b = chunkBounds(length, n);
  expect(b.length).toBe(n + 1);
  expect(b[0]).toBe(0);
  expect(b[n]).toBe(length);
  const sizes = b.slice(1).map((end, i) => end - b[i]!);
  expect(Math.min(...sizes)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  // Larger chunks come first, so every rank can compute every bound alone.
  for (let i = 1; i < n; i++) expect(sizes[i]!).toBeLessThanOrEqual(sizes[i - 1]!);
}

describe('chunkBounds', () => {
  it('splits evenly when it can', () => {
    expect(chunkBounds(12, 4)).toEqual([0, 3, 6, 9, 12]);
    expect(chunkBounds(5, 1)).toEqual([0, 5]);
  });

  it('gives the remainder to the first chunks', () => {
    expect(chunkBounds(7, 3)).toEqual([0, 3, 5, 7]);
    expect(chunkBounds(100003, 8)).toEqual([0, 12501, 25002, 37503, 50003, 62503, 75003, 87503, 100003]);
  });

  it('leaves trailing chunks empty when length < n', () => {
    expect(chunkBounds(2, 5)).toEqual([0, 1, 2, 2, 2, 2]);
    expect(chunkBounds(0, 3)).toEqual([0, 0, 0, 0]);
  });

  it('partitions random lengths into contiguous chunks whose sizes differ by at most one', () => {
    for (let k = 0; k < 300; k++) {
      checkPartition(Math.floor(Math.random() * 10_000), 1 + Math.floor(Math.random() * 64));
    }
  });

  it('rejects bad arguments, saying which and what it got', () => {
    expect(() => chunkBounds(-1, 2)).toThrow(RangeError);
    expect(() => chunkBounds(1.5, 2)).toThrow(/length must be an integer >= 0, got 1.5/);
    expect(() => chunkBounds(4, 0)).toThrow(/n must be an integer >= 1, got 0/);
  });
});
