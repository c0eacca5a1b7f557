import { expect, it } from 'vitest';
import { median, quantile } from './stats.js';

it('quantile interpolates like a sorted reference, and the median is its q = 0.5', () => {
  for (let k = 0; k < 50; k++) {
    const xs = Array.from({ length: 1 + Math.floor(Math.random() * 20) }, () => Math.random());
    const s = [...xs].sort((a, b) => a - b);
    expect(quantile(xs, 0)).toBe(s[0]);
    expect(quantile(xs, 1)).toBe(s[s.length - 1]);
    const m = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    expect(quantile(xs, 0.5)).toBeCloseTo(m, 12);
    expect(median(xs)).toBe(quantile(xs, 0.5));
  }
  expect(median([3, 1, 2, 10])).toBe(2.5);
});

it('quantile rejects an empty list and a q outside [0, 1]', () => {
  expect(() => median([])).toThrow(RangeError);
  expect(() => quantile([1], 1.5)).toThrow(/q must be in \[0, 1\], got 1.5/);
});
