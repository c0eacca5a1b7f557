/**
 * `ddp bench scaling --weak`: weak scaling, the batch per worker held fixed. For R interleaved rounds
 * it runs `ddp train --workers 0 --batch-size B` (one process, the reference) and then, for each N
 * (and each --algo), `ddp train --workers N --batch-size N*B`, all with the same --max-steps, and
 * reports per round and as the median over the rounds
 *
 *   ratio = samplesPerSec(N workers) / (N x samplesPerSec(one process, same round))
 *
 * with samplesPerSec from each run's `done` event (training samples over training time, evaluation
 * excluded). 1 means N workers do N times the work of one process in the same time. Beside the JSON
 * result it plots samples/s and the ratio against N with the ideal (.svg, .png). Interleaving the
 * rounds spreads slow spells of a shared machine over every configuration instead of one.
 */
import os from 'node:os';
import { defaultResultFile, median, resultHeader, writeResultFile, type ResultHeader } from '@ddp/core';
import { doneFigures, runTrain, type DoneFigures } from './train-run.js';
import { writePlotBeside } from '../report/render.js';
import { weakScalingSpec } from '../report/specs.js';

export interface WeakScalingOptions {
  /** Worker counts N (each >= 1). */
  workers: number[];
  /** Values for `ddp train --allreduce` (runs with N >= 1 only); none: train's default. */
  algos: string[] | undefined;
  /** B: the batch of one worker, and of the single process. */
  perWorkerBatch: number;
  maxSteps: number;
  rounds: number;
  /** More `ddp train` flags (--backend, --seed, --dataset, --data-dir, --limit-train). */
  trainArgs: string[];
  mainJs: string;
  /** Kill a run that takes longer than this. */
  runTimeoutMs: number;
  out?: string;
  log: (line: string) => void;
}

export interface WeakScalingRun extends Omit<DoneFigures, 'reportedSamplesPerSec'> {
  /** 1-based. */
  round: number;
  /** 0 for the single process. */
  workers: number;
  allreduce: string | undefined;
  /** The global batch: N x B (B for the single process). */
  batchSize: number;
  /** The done event's samplesPerSec. */
  samplesPerSec: number;
  wallSeconds: number;
  command: string[];
}

/** One configuration (N, allreduce) over the rounds. */
export interface WeakScalingSummary {
  workers: number;
  allreduce: string | undefined;
  batchSize: number;
  /** samples/s of each round, in order. */
  samplesPerSec: number[];
  medianSamplesPerSec: number;
  /** Per round: samples/s / (N x the single process's samples/s in that round); empty for the single process. */
  ratios: number[];
  /** The median of `ratios` (null for the single process). */
  medianRatio: number | null;
}

export interface WeakScalingResult extends ResultHeader<'scaling-weak'> {
  perWorkerBatch: number;
  maxSteps: number;
  rounds: number;
  /** The single process first, then each (N, allreduce) in the order run. */
  summary: WeakScalingSummary[];
  /** Every run, in the order run. */
  runs: WeakScalingRun[];
  file: string;
}

/** The plan of one round: the single process, then each N with each allreduce. */
export function weakRoundPlan(workers: readonly number[], algos: readonly string[] | undefined): Array<[number, string | undefined]> {
  const plan: Array<[number, string | undefined]> = [[0, undefined]];
  for (const n of workers) for (const a of algos ?? [undefined]) plan.push([n, a]);
  return plan;
}

/** Groups the runs by configuration and computes the per-round ratios against the same round's single process. */
export function summariseWeakScaling(runs: readonly WeakScalingRun[]): WeakScalingSummary[] {
  const single = new Map(runs.filter((r) => r.workers === 0).map((r) => [r.round, r.samplesPerSec]));
  const groups = new Map<string, WeakScalingRun[]>();
  for (const r of runs) {
    const key = `${r.workers}/${r.allreduce ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((group) => {
    const { workers, allreduce, batchSize } = group[0]!;
    const ratios: number[] = [];
    if (workers > 0) {
      for (const r of group) {
        const reference = single.get(r.round);
        if (reference === undefined) throw new Error(`round ${r.round} has no single-process run to compare ${workers} workers with`);
        ratios.push(r.samplesPerSec / (workers * reference));
      }
    }
    const samplesPerSec = group.map((r) => r.samplesPerSec);
    return { workers, allreduce, batchSize, samplesPerSec, medianSamplesPerSec: median(samplesPerSec), ratios, medianRatio: ratios.length ? median(ratios) : null };
  });
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const algoLabel = (workers: number, allreduce: string | undefined) => allreduce ?? (workers === 0 ? '(none)' : 'default');

export function formatWeakScaling(summary: readonly WeakScalingSummary[]): string[] {
  const lines = [`${'workers'.padStart(7)} ${'allreduce'.padStart(9)} ${'batch'.padStart(6)} ${'samples/s'.padStart(10)} ${'ratio'.padStart(7)}  ratio per round`];
  for (const s of summary) {
    lines.push(
      `${String(s.workers).padStart(7)} ${algoLabel(s.workers, s.allreduce).padStart(9)} ${String(s.batchSize).padStart(6)} ${s.medianSamplesPerSec.toFixed(1).padStart(10)} ${pct(s.medianRatio).padStart(7)}  ${s.ratios.map((r) => pct(r)).join(', ') || '-'}`,
    );
  }
  return lines;
}

export async function runWeakScalingBench(o: WeakScalingOptions): Promise<WeakScalingResult> {
  const plan = weakRoundPlan(o.workers, o.algos);
  o.log(
    `weak scaling: ${o.perWorkerBatch} samples per worker and step (N workers train with a batch of N x ${o.perWorkerBatch}), ${o.maxSteps} steps per run, ` +
      `${o.rounds} interleaved round${o.rounds === 1 ? '' : 's'}; samples/s from each run's done event`,
  );
  const runs: WeakScalingRun[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const [workers, allreduce] of plan) {
      const batchSize = Math.max(1, workers) * o.perWorkerBatch;
      o.log(`round ${round}/${o.rounds}: ddp train --workers ${workers} --batch-size ${batchSize}${allreduce && workers > 0 ? ` --allreduce ${allreduce}` : ''} ...`);
      const run = await runTrain(
        o.mainJs,
        [
          '--workers', String(workers),
          '--batch-size', String(batchSize),
          '--max-steps', String(o.maxSteps),
          '--no-eval', '--limit-test', '200',
          '--log-format', 'json',
          ...(allreduce && workers > 0 ? ['--allreduce', allreduce] : []),
          ...o.trainArgs,
        ],
        { timeoutMs: o.runTimeoutMs, batchSize },
      );
      const { reportedSamplesPerSec: samplesPerSec, ...figures } = doneFigures(run);
      if (samplesPerSec === undefined || !(samplesPerSec > 0) || !Number.isFinite(samplesPerSec)) {
        throw new Error(`${run.command.join(' ')}: its done event has no usable samplesPerSec (got ${JSON.stringify(run.done.samplesPerSec)})`);
      }
      runs.push({ round, workers, allreduce: workers > 0 ? allreduce : undefined, batchSize, samplesPerSec, ...figures, wallSeconds: run.wallSeconds, command: run.command });
      o.log(`  ${samplesPerSec.toFixed(1)} samples/s, backend ${figures.backend ?? '?'}`);
    }
  }
  const summary = summariseWeakScaling(runs);
  o.log('');
  o.log(`median over ${o.rounds} round${o.rounds === 1 ? '' : 's'}:`);
  for (const line of formatWeakScaling(summary)) o.log(line);
  o.log('ratio = samples/s of N workers / (N x samples/s of one process, --workers 0, in the same round); 1 = perfect weak scaling');
  o.log(`load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(2)} on ${os.availableParallelism()} cores`);
  const result = { ...resultHeader('scaling-weak'), perWorkerBatch: o.perWorkerBatch, maxSteps: o.maxSteps, rounds: o.rounds, summary, runs };
  const file = writeResultFile(o.out ?? defaultResultFile('scaling-weak'), result);
  o.log(`written ${file}`);
  for (const line of await writePlotBeside(file, weakScalingSpec(result))) o.log(line);
  return { ...result, file };
}
