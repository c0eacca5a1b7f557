/**
 * `ddp bench scaling`: runs `ddp train --workers N --max-steps W+K --log-format json` for each N (and
 * `--workers 0`, training in one process, as the reference) and reports, for each run:
 *
 *   throughput   samples of steps W+1..W+K over the time between the arrivals of step events W
 *                and W+K on the coordinator's stdout: warm-up (backend start, first compilations,
 *                workers joining) and the final evaluation fall outside the window
 *   efficiency   throughput_N / (N x throughput_1), throughput_1 being the 1-worker run with the
 *                same allreduce (or, without one, the single process); and against the single process
 *   breakdown    the `done` event's mean ms per step by phase (compute, communication, waiting, ...),
 *                as the run measured them (over all its steps, warm-up included)
 *
 * and plots samples/s and efficiency against N, beside the ideal, next to its JSON result (.svg, .png).
 *
 * The global batch is the same for every N (ddp splits it across workers): strong scaling.
 */
import os from 'node:os';
import { defaultResultFile, resultHeader, writeResultFile, type ResultHeader } from '@ddp/core';
import { doneFigures, runTrain, type DoneFigures, type StepArrival } from './train-run.js';
import { writePlotBeside } from '../report/render.js';
import { scalingSpec } from '../report/specs.js';

export interface ScalingOptions {
  workers: number[];
  /** Values for `ddp train --allreduce` (runs with N >= 1 only); none: train's default. */
  algos: string[] | undefined;
  steps: number;
  warmupSteps: number;
  batchSize: number;
  /** Also run --workers 0 (one process, no communication). */
  reference: boolean;
  /** More `ddp train` flags (--backend, --dataset, --data-dir, --limit-train, --seed). */
  trainArgs: string[];
  mainJs: string;
  /** Kill a run that takes longer than this. */
  runTimeoutMs: number;
  out?: string;
  log: (line: string) => void;
}

/** A run's figures; those from its done event (reportedSamplesPerSec, breakdown) cover all its steps, warm-up included. */
export interface ScalingRun extends DoneFigures {
  workers: number;
  allreduce: string | undefined;
  /** Samples per second over the timed window. */
  samplesPerSec: number;
  windowSteps: number;
  windowSeconds: number;
  wallSeconds: number;
  /** throughput / (N x throughput of the matching 1-worker run), for N >= 1. */
  efficiency: number | undefined;
  /** throughput / (N x throughput of the single process). */
  efficiencyVsSingleProcess: number | undefined;
  command: string[];
}

export interface ScalingResult extends ResultHeader<'scaling'> {
  batchSize: number;
  steps: number;
  warmupSteps: number;
  runs: ScalingRun[];
  file: string;
}

/** Throughput over steps (warmup, warmup + steps] from the arrival times of their events. */
export function windowThroughput(arrivals: readonly StepArrival[], warmup: number, steps: number): { samplesPerSec: number; windowSeconds: number; windowSteps: number } {
  const start = arrivals.find((a) => a.step === warmup);
  const inWindow = arrivals.filter((a) => a.step > warmup && a.step <= warmup + steps);
  const end = inWindow[inWindow.length - 1];
  if (!start || !end || end.step !== warmup + steps) {
    throw new Error(`the run printed step events up to ${arrivals[arrivals.length - 1]?.step ?? 'none'}; the window needs steps ${warmup}..${warmup + steps}`);
  }
  const seconds = (end.at - start.at) / 1000;
  const samples = inWindow.reduce((s, a) => s + a.samples, 0);
  return { samplesPerSec: samples / seconds, windowSeconds: seconds, windowSteps: inWindow.length };
}

async function runOne(o: ScalingOptions, workers: number, allreduce: string | undefined): Promise<ScalingRun> {
  const run = await runTrain(
    o.mainJs,
    [
      '--workers', String(workers),
      '--max-steps', String(o.warmupSteps + o.steps),
      '--batch-size', String(o.batchSize),
      '--log-format', 'json',
      '--no-eval', '--limit-test', '256',
      ...(allreduce && workers > 0 ? ['--allreduce', allreduce] : []),
      ...o.trainArgs,
    ],
    { timeoutMs: o.runTimeoutMs, batchSize: o.batchSize },
  );
  return {
    workers,
    allreduce: workers > 0 ? allreduce : undefined,
    ...windowThroughput(run.arrivals, o.warmupSteps, o.steps),
    ...doneFigures(run),
    wallSeconds: run.wallSeconds,
    efficiency: undefined,
    efficiencyVsSingleProcess: undefined,
    command: run.command,
  };
}

/** Fills in the efficiencies (exported for tests). */
export function addEfficiencies(runs: ScalingRun[]): void {
  const single = runs.find((r) => r.workers === 0);
  for (const r of runs) {
    if (r.workers === 0) continue;
    const one = runs.find((x) => x.workers === 1 && x.allreduce === r.allreduce);
    if (one) r.efficiency = r.samplesPerSec / (r.workers * one.samplesPerSec);
    if (single) r.efficiencyVsSingleProcess = r.samplesPerSec / (r.workers * single.samplesPerSec);
  }
}

export function formatScaling(runs: readonly ScalingRun[]): string[] {
  const phases = [...new Set(runs.flatMap((r) => Object.keys(r.breakdown ?? {})))];
  const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
  const head =
    `${'workers'.padStart(7)} ${'allreduce'.padStart(9)} ${'samples/s'.padStart(10)} ${'eff vs 1w'.padStart(9)} ${'eff vs 1p'.padStart(9)}` +
    (phases.length ? ` | ms/step: ${phases.map((p) => p.padStart(Math.max(8, p.length))).join(' ')}` : '');
  const lines = [head];
  for (const r of runs) {
    lines.push(
      `${String(r.workers).padStart(7)} ${(r.allreduce ?? (r.workers === 0 ? '(none)' : 'default')).padStart(9)} ${r.samplesPerSec.toFixed(1).padStart(10)} ${pct(r.efficiency).padStart(9)} ${pct(r.efficiencyVsSingleProcess).padStart(9)}` +
        (phases.length ? ` |          ${phases.map((p) => (r.breakdown?.[p] === undefined ? '-' : r.breakdown[p]!.toFixed(2)).padStart(Math.max(8, p.length))).join(' ')}` : ''),
    );
  }
  return lines;
}

export async function runScalingBench(o: ScalingOptions): Promise<ScalingResult> {
  const plan: Array<[number, string | undefined]> = [];
  if (o.reference) plan.push([0, undefined]);
  for (const n of o.workers) for (const a of o.algos ?? [undefined]) if (n > 0) plan.push([n, a]);
  o.log(`scaling: ddp train with a global batch of ${o.batchSize}, ${o.steps} timed steps after ${o.warmupSteps} warm-up steps; throughput from step-event arrival times`);
  const runs: ScalingRun[] = [];
  for (const [n, a] of plan) {
    o.log(`running: ddp train --workers ${n}${a && n > 0 ? ` --allreduce ${a}` : ''} ...`);
    const run = await runOne(o, n, a);
    runs.push(run);
    o.log(`  ${run.samplesPerSec.toFixed(1)} samples/s over ${run.windowSteps} steps (${run.windowSeconds.toFixed(2)} s), backend ${run.backend ?? '?'}`);
  }
  addEfficiencies(runs);
  o.log('');
  for (const line of formatScaling(runs)) o.log(line);
  o.log('eff vs 1w = tput_N / (N x tput of 1 worker); eff vs 1p = tput_N / (N x tput of one process, --workers 0); breakdown: the run\'s own mean ms per step');
  const result = { ...resultHeader('scaling'), batchSize: o.batchSize, steps: o.steps, warmupSteps: o.warmupSteps, runs };
  o.log(`load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(2)} on ${os.availableParallelism()} cores`);
  const file = writeResultFile(o.out ?? defaultResultFile('scaling'), result);
  o.log(`written ${file}`);
  for (const line of await writePlotBeside(file, scalingSpec(result))) o.log(line);
  return { ...result, file };
}
