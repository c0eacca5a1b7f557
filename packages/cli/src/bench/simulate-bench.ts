/**
 * `ddp bench simulate`: the alpha-beta model of core/src/allreduce/simulate.ts, run for many worker
 * counts. A step is the gradient computation (measured: from a `ddp bench step` result or a flag)
 * and then one allreduce of the whole gradient, which do not overlap in ddp; the model gives the
 * allreduce time from the link latency alpha and bandwidth beta, hence the step time and the
 * scaling efficiency compute / step.
 *
 * Star is ddp's training star: the coordinator is the root, outside the N workers, so its one NIC
 * carries N vectors in and N out. Ring is the workers' ring.
 *
 * Weak scaling (default): every worker keeps the measured per-worker batch, so compute per step
 * stays the same. Strong scaling: the measured batch is the global one, split N ways, and compute
 * is taken as measured / N (which flatters it: small shards run less efficiently).
 */
import { predictStep, type NetworkModel } from '@ddp/core';
import { formatBandwidth, formatDuration } from './units.js';

export type ScalingMode = 'weak' | 'strong';

export interface ComputeSource {
  /** One step's gradient computation on one worker, seconds. */
  seconds: number;
  /** Samples in that step. */
  batchSize: number | undefined;
  /** Where it came from, for the header. */
  from: string;
}

export interface SimulateOptions {
  workers: number[];
  net: NetworkModel;
  /** Parameter counts to model (the seed CNN's 93,322 first). */
  params: number[];
  compute: ComputeSource;
  compress: 'none' | 'fp16';
  scaling: ScalingMode;
}

export interface SimulateRow {
  params: number;
  workers: number;
  algo: 'star' | 'ring';
  computeMs: number;
  commMs: number;
  stepMs: number;
  efficiency: number;
  /** Samples per second over the whole cluster, when the batch size is known. */
  samplesPerSec: number | undefined;
}

export function simulate(o: SimulateOptions): SimulateRow[] {
  const rows: SimulateRow[] = [];
  for (const params of o.params) {
    const bytes = params * (o.compress === 'fp16' ? 2 : 4);
    for (const workers of o.workers) {
      const computeSec = o.scaling === 'weak' ? o.compute.seconds : o.compute.seconds / workers;
      for (const algo of ['star', 'ring'] as const) {
        const p = predictStep({ computeSec, workers, bytes, net: o.net, algo });
        const batch = o.compute.batchSize;
        const samples = batch === undefined ? undefined : o.scaling === 'weak' ? batch * workers : batch;
        rows.push({
          params,
          workers,
          algo,
          computeMs: computeSec * 1e3,
          commMs: p.commSec * 1e3,
          stepMs: p.stepSec * 1e3,
          efficiency: p.efficiency,
          samplesPerSec: samples === undefined ? undefined : samples / p.stepSec,
        });
      }
    }
  }
  return rows;
}

const f = (x: number, w: number, d = 2) => (x >= 10 ** (w - d - 2) ? x.toExponential(2) : x.toFixed(d)).padStart(w);

/** The tables: one per parameter count, one line per worker count, star and ring side by side. */
export function formatSimulation(o: SimulateOptions, rows: SimulateRow[]): string[] {
  const lines: string[] = [];
  const batch = o.compute.batchSize;
  lines.push(
    `alpha-beta model: latency ${formatDuration(o.net.latencySec)}, bandwidth ${formatBandwidth(o.net.bandwidthBytesPerSec)} per NIC and direction; ` +
      `${o.compress === 'fp16' ? 'fp16 gradients (2 bytes/param)' : 'float32 gradients (4 bytes/param)'}`,
  );
  lines.push(
    `compute ${formatDuration(o.compute.seconds)} per step${batch ? ` of ${batch} samples` : ''} (${o.compute.from}); ${o.scaling} scaling` +
      (o.scaling === 'weak' ? ' (per-worker batch fixed)' : ' (global batch split N ways, compute / N)'),
  );
  lines.push('star: through the coordinator, 2 alpha + 2 N bytes/beta; ring: 2(N-1) alpha + 2(N-1)/N bytes/beta; efficiency = compute / step');
  for (const params of o.params) {
    lines.push('');
    lines.push(`${params.toLocaleString('en-US')} parameters (${((params * (o.compress === 'fp16' ? 2 : 4)) / 1e6).toFixed(3)} MB per gradient)`);
    lines.push(
      `${'N'.padStart(5)} ${'compute ms'.padStart(10)} | ${'star comm'.padStart(10)} ${'step ms'.padStart(9)} ${'eff'.padStart(6)} | ${'ring comm'.padStart(10)} ${'step ms'.padStart(9)} ${'eff'.padStart(6)}` +
        (batch ? ` | ${'star samples/s'.padStart(14)} ${'ring samples/s'.padStart(14)}` : ''),
    );
    for (const workers of o.workers) {
      const star = rows.find((r) => r.params === params && r.workers === workers && r.algo === 'star')!;
      const ring = rows.find((r) => r.params === params && r.workers === workers && r.algo === 'ring')!;
      const pct = (e: number) => `${(e * 100).toFixed(1)}%`.padStart(6);
      lines.push(
        `${String(workers).padStart(5)} ${f(star.computeMs, 10)} | ${f(star.commMs, 10)} ${f(star.stepMs, 9)} ${pct(star.efficiency)} | ${f(ring.commMs, 10)} ${f(ring.stepMs, 9)} ${pct(ring.efficiency)}` +
          (batch ? ` | ${f(star.samplesPerSec!, 14, 0)} ${f(ring.samplesPerSec!, 14, 0)}` : ''),
      );
    }
  }
  return lines;
}
