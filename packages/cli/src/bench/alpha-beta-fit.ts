/**
 * Checks the alpha-beta model against `ddp bench allreduce` measurements: fit alpha (s per message)
 * and beta (bytes/s per link) to some rows, by least squares on relative error, then predict every
 * row and report how far off each prediction is.
 *
 * The benchmark's star root is rank 0, one of the N members, so it moves N-1 vectors each way:
 *     T_star = 2 alpha + 2 (N-1) w / beta        (core's coordinator-root formula with N-1 workers)
 *     T_ring = 2 (N-1) alpha + 2 (N-1)/N w / beta
 * where w is the bytes one member puts on the wire (halved by fp16). Both are linear in
 * (alpha, 1/beta), so the fit is a 2x2 weighted least-squares problem: minimise
 * sum ((T_model - T_measured) / T_measured)^2, so that small and large vectors count alike.
 */
import { median, predictAllreduceSeconds, type NetworkModel } from '@ddp/core';
import type { AllreduceRow } from './allreduce-bench.js';
import { UsageError } from '../args.js';

export interface MeasuredAllreduce {
  workers: number;
  algo: 'star' | 'ring';
  compress: string;
  floats: number;
  wireBytes: number;
  medianMs: number;
}

/** Coefficients (of alpha, of 1/beta) of the model time of one row. */
function coefficients(r: MeasuredAllreduce): [number, number] {
  const n = r.workers;
  if (r.algo === 'star') return [2, 2 * (n - 1) * r.wireBytes];
  return [2 * (n - 1), ((2 * (n - 1)) / n) * r.wireBytes];
}

/** The model's time (s) for a benchmark row: star with a member root, ring. */
export function predictBenchSeconds(r: Pick<MeasuredAllreduce, 'workers' | 'algo' | 'wireBytes'>, net: NetworkModel): number {
  return r.algo === 'star'
    ? predictAllreduceSeconds('star', r.workers - 1, r.wireBytes, net)
    : predictAllreduceSeconds('ring', r.workers, r.wireBytes, net);
}

export function fitAlphaBeta(rows: readonly MeasuredAllreduce[]): NetworkModel {
  const usable = rows.filter((r) => r.workers >= 2 && r.medianMs > 0);
  if (usable.length < 2) throw new UsageError(`fitting alpha and beta needs at least 2 measurements with N >= 2, got ${usable.length}`);
  let aa = 0, ab = 0, bb = 0, a1 = 0, b1 = 0;
  for (const r of usable) {
    const t = r.medianMs / 1000;
    const [ca, cb] = coefficients(r);
    const [A, B] = [ca / t, cb / t];
    aa += A * A;
    ab += A * B;
    bb += B * B;
    a1 += A;
    b1 += B;
  }
  const det = aa * bb - ab * ab;
  let alpha = det !== 0 ? (a1 * bb - b1 * ab) / det : 0;
  let inv = det !== 0 ? (aa * b1 - ab * a1) / det : b1 / bb;
  if (alpha < 0) {
    alpha = 0; // latency cannot be negative: fit bandwidth alone
    inv = b1 / bb;
  }
  if (!(inv > 0)) {
    throw new UsageError('the measurements do not fit a positive bandwidth (time does not grow with size?); measure more sizes');
  }
  return { latencySec: alpha, bandwidthBytesPerSec: 1 / inv };
}

export interface FitComparison {
  net: NetworkModel;
  fittedOn: number[];
  rows: Array<MeasuredAllreduce & { predictedMs: number; ratio: number; inFit: boolean }>;
  /** Over the rows not used for the fit (all rows if every row was): median and worst |predicted/measured - 1|. */
  medianAbsError: number;
  worstAbsError: number;
}

/**
 * Fits on the rows whose worker count is in `fitWorkers` (default: the smallest N present) and
 * predicts all; or, given `net`, predicts all with it (nothing fitted: `fittedOn` is empty).
 */
export function compareWithModel(rows: readonly AllreduceRow[] | readonly MeasuredAllreduce[], fitWorkers?: number[], fixed?: NetworkModel): FitComparison {
  if (rows.length === 0) throw new UsageError('no allreduce measurements to compare with');
  const on = fixed ? [] : (fitWorkers ?? [Math.min(...rows.map((r) => r.workers))]);
  const net = fixed ?? fitAlphaBeta(rows.filter((r) => on.includes(r.workers)));
  const out = rows.map((r) => {
    const predictedMs = predictBenchSeconds(r, net) * 1000;
    return { workers: r.workers, algo: r.algo, compress: r.compress, floats: r.floats, wireBytes: r.wireBytes, medianMs: r.medianMs, predictedMs, ratio: predictedMs / r.medianMs, inFit: on.includes(r.workers) };
  });
  const judged = out.some((r) => !r.inFit) ? out.filter((r) => !r.inFit) : out;
  const errs = judged.map((r) => Math.abs(r.ratio - 1));
  return {
    net,
    fittedOn: on,
    rows: out,
    medianAbsError: median(errs),
    worstAbsError: Math.max(...errs),
  };
}
