/** Order statistics of timing samples, for every benchmark. */

/** The q-quantile (0..1) by linear interpolation between order statistics; the median is q = 0.5. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty list');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const s = [...values].sort((a, b) => a - b);
  const at = q * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

/** The median of a non-empty list (the mean of the two middle values for an even count). */
export const median = (values: readonly number[]): number => quantile(values, 0.5);
