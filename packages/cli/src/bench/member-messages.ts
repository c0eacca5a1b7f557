/**
 * The lines a benchmark parent and its member processes exchange over stdio (one JSON object per
 * line). The parent starts N members; each prints `listening` with its url; the parent sends every
 * member `start` with all urls and the cases to run; members print one `case` per case and then
 * `finished`, or `error` and exit 1.
 */
export type BenchAlgo = 'star' | 'ring';
export type BenchCompress = 'none' | 'fp16';

export interface MemberCase {
  id: number;
  algo: BenchAlgo;
  floats: number;
  compress: BenchCompress;
  iters: number;
  warmup: number;
}

export interface StartLine {
  type: 'start';
  urls: string[];
  cases: MemberCase[];
}

export type MemberLine =
  | { type: 'listening'; rank: number; url: string }
  | { type: 'connected'; rank: number; ms: number }
  /** `ms[k]`: this rank's time for timed iteration k; `mismatches`: elements of the last result that differ from the exact sum. */
  | { type: 'case'; rank: number; id: number; ms: number[]; mismatches: number; firstMismatch: number }
  | { type: 'finished'; rank: number }
  | { type: 'error'; rank: number; message: string; code?: string; faultRank?: number };

/**
 * Rank r's input: small integers, so that every sum (float32 or through fp16, for up to 136 ranks)
 * is exact and each member can check its result element by element. Timing does not depend on values.
 */
export function memberInput(rank: number, floats: number): Float32Array {
  const x = new Float32Array(floats);
  for (let i = 0; i < floats; i++) x[i] = ((i * 7 + rank * 13) % 31) - 15;
  return x;
}

/** How many elements of `sum` differ from the exact sum of memberInput over `size` ranks, and the first. */
export function countMismatches(sum: Float32Array, size: number): { mismatches: number; firstMismatch: number } {
  let mismatches = 0;
  let firstMismatch = -1;
  for (let i = 0; i < sum.length; i++) {
    let want = 0;
    for (let r = 0; r < size; r++) want += ((i * 7 + r * 13) % 31) - 15;
    if (sum[i] !== want) {
      if (mismatches === 0) firstMismatch = i;
      mismatches++;
    }
  }
  return { mismatches, firstMismatch };
}
