/**
 * Splits [0, length) into n contiguous chunks whose sizes differ by at most one: the first
 * `length % n` chunks get one extra element. Returns n + 1 offsets; chunk i is
 * [bounds[i], bounds[i + 1]). When length < n the last n - length chunks are empty.
 */
export function chunkBounds(length: number, n: number): number[] {
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`chunkBounds: length must be an integer >= 0, got ${length}`);
  }
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`chunkBounds: n must be an integer >= 1, got ${n}`);
  }
  const base = Math.floor(length / n);
  const extra = length % n;
  const bounds = new Array<number>(n + 1);
  bounds[0] = 0;
  for (let i = 0; i < n; i++) bounds[i + 1] = bounds[i]! + base + (i < extra ? 1 : 0);
  return bounds;
}
