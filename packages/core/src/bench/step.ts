import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core registers no gradient functions by itself (ESM or node bundle); tfjs-layers does, as a
// side effect of being imported. gradientSum needs them.
import '@tensorflow/tfjs-layers';
import { registerDdpWasmKernels, setWasmKernelSet, type WasmKernelSet } from '../backend/kernels/index.js';
import { createRng } from '../data/random.js';
import { initSeedCnnParams } from '../model/init.js';
import { gradientSum } from '../model/seed-cnn.js';
import { IMAGE_SIZE, NUM_CLASSES } from '../model/seed-cnn-layout.js';
import { defaultResultFile, resultHeader, writeResultFile, type ResultHeader } from './results-file.js';
import { median } from './stats.js';

/**
 * The step benchmark: one full training step of the seed CNN (forward + backward, the gradient of
 * the loss sum, as a worker computes it) on the wasm backend, with the 'naive' baseline kernels and
 * with ddp's, side by side in one process. Reports the median time per step, samples/s and the
 * median per-kernel time per step from tf.profile.
 *
 *   const r = await runStepBench({ batchSize: 64, steps: 15, log: console.log });
 */
export interface StepBenchOptions {
  /** Samples per step (default 64, the seed job's batch). */
  batchSize?: number;
  /** Untimed steps per kernel set before timing (default 3). */
  warmup?: number;
  /** Timed steps per kernel set; the median is reported (default 15). */
  steps?: number;
  /** Steps run under tf.profile per kernel set for the per-kernel times (default 3). */
  profileSteps?: number;
  /** JSON result file (default bench/results/step-<YYYYMMDD-HHMMSS>.json under the workspace root). */
  out?: string;
  /** Where the table goes, line by line (default: nowhere). */
  log?: (line: string) => void;
  /** Kernel sets to compare, in order (default ['naive', 'ddp']). */
  sets?: WasmKernelSet[];
}

export interface KernelSetStepResult {
  set: WasmKernelSet;
  medianStepMs: number;
  /** The fastest timed step: less sensitive than the median to other work on the machine. */
  minStepMs: number;
  /** From the median step. */
  samplesPerSec: number;
  /** Every timed step, in order (ms). */
  stepMs: number[];
  /** Median over the profiled steps of each kernel's total time in one step (ms), by kernel name. */
  kernelMs: Record<string, number>;
  /** Calls of each kernel in one step. */
  kernelCalls: Record<string, number>;
}

export interface StepBenchResult extends ResultHeader<'step'> {
  model: 'seed-cnn';
  batchSize: number;
  warmup: number;
  steps: number;
  sets: KernelSetStepResult[];
  /** samples/s of 'ddp' over samples/s of 'naive', when both ran. */
  speedup: number | null;
  /** Where the JSON was written. */
  file: string;
}

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`runStepBench: ${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** A fixed synthetic batch: compute time does not depend on the pixel values. */
function syntheticBatch(count: number): { images: Float32Array; labels: Int32Array } {
  const rng = createRng(20240601);
  const images = new Float32Array(count * IMAGE_SIZE * IMAGE_SIZE);
  for (let i = 0; i < images.length; i++) images[i] = rng.nextFloat();
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.nextBelow(NUM_CLASSES);
  return { images, labels };
}

async function measureSet(set: WasmKernelSet, step: () => void, warmup: number, steps: number, profileSteps: number): Promise<KernelSetStepResult> {
  setWasmKernelSet(set);
  for (let i = 0; i < warmup; i++) step();
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    stepMs.push(performance.now() - t0);
  }
  const perStep: Array<Map<string, number>> = [];
  const kernelCalls: Record<string, number> = {};
  for (let i = 0; i < profileSteps; i++) {
    const info = await tf.profile(() => {
      step();
    });
    const totals = new Map<string, number>();
    const calls: Record<string, number> = {};
    for (const k of info.kernels) {
      totals.set(k.name, (totals.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      calls[k.name] = (calls[k.name] ?? 0) + 1;
    }
    perStep.push(totals);
    Object.assign(kernelCalls, calls);
  }
  const names = new Set(perStep.flatMap((m) => [...m.keys()]));
  const kernelMs: Record<string, number> = {};
  for (const name of names) kernelMs[name] = median(perStep.map((m) => m.get(name) ?? 0));
  const medianStepMs = median(stepMs);
  return { set, medianStepMs, minStepMs: Math.min(...stepMs), samplesPerSec: 0, stepMs, kernelMs, kernelCalls };
}

const fmt = (v: number | undefined, digits = 2) => (v === undefined ? '-' : v.toFixed(digits));

export function formatStepBench(r: Omit<StepBenchResult, 'file'>): string[] {
  const lines: string[] = [];
  lines.push(`step benchmark: seed CNN, batch ${r.batchSize}, forward + backward on ${r.machine.backend} (${r.machine.cpuModel}, ${r.machine.nproc} cores, node ${r.machine.nodeVersion}, tfjs ${r.machine.tfjsVersion})`);
  lines.push(`load average ${r.machine.loadAverage.join(' ')}, nice ${r.machine.niceness} (figures are lower when other work runs)`);
  lines.push(`${'kernel set'.padEnd(12)}${'ms/step'.padStart(10)}${'samples/s'.padStart(12)}${'min ms/step'.padStart(13)}`);
  for (const s of r.sets) lines.push(`${s.set.padEnd(12)}${fmt(s.medianStepMs).padStart(10)}${fmt(s.samplesPerSec, 1).padStart(12)}${fmt(s.minStepMs).padStart(13)}`);
  if (r.speedup !== null) lines.push(`ddp / naive: ${r.speedup.toFixed(2)}x`);
  const names = [...new Set(r.sets.flatMap((s) => Object.keys(s.kernelMs)))];
  const first = r.sets[0];
  names.sort((a, b) => (first.kernelMs[b] ?? 0) - (first.kernelMs[a] ?? 0));
  lines.push('');
  lines.push(`${'kernel (median ms per step)'.padEnd(28)}${r.sets.map((s) => s.set.padStart(10)).join('')}${'calls'.padStart(7)}`);
  for (const name of names) {
    const calls = r.sets.map((s) => s.kernelCalls[name]).find((c) => c !== undefined) ?? 0;
    lines.push(`${name.padEnd(28)}${r.sets.map((s) => fmt(s.kernelMs[name]).padStart(10)).join('')}${String(calls).padStart(7)}`);
  }
  lines.push(`${'sum of kernels'.padEnd(28)}${r.sets.map((s) => fmt(Object.values(s.kernelMs).reduce((a, b) => a + b, 0)).padStart(10)).join('')}`);
  return lines;
}

export async function runStepBench(opts: StepBenchOptions = {}): Promise<StepBenchResult> {
  const batchSize = checkCount('batchSize', opts.batchSize ?? 64, 1);
  const warmup = checkCount('warmup', opts.warmup ?? 3, 0);
  const steps = checkCount('steps', opts.steps ?? 15, 1);
  const profileSteps = checkCount('profileSteps', opts.profileSteps ?? 3, 1);
  const sets = opts.sets ?? ['naive', 'ddp'];
  const log = opts.log ?? (() => {});

  registerDdpWasmKernels();
  if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) throw new Error('runStepBench: the wasm backend failed to initialise');
  await tf.ready();

  const params = initSeedCnnParams(1);
  const { images, labels } = syntheticBatch(batchSize);
  const step = () => {
    gradientSum(params, images, labels, batchSize);
  };
  const results: KernelSetStepResult[] = [];
  try {
    for (const set of sets) {
      const r = await measureSet(set, step, warmup, steps, profileSteps);
      r.samplesPerSec = (batchSize * 1000) / r.medianStepMs;
      results.push(r);
      log(`${set}: ${r.medianStepMs.toFixed(2)} ms/step, ${r.samplesPerSec.toFixed(1)} samples/s`);
    }
  } finally {
    registerDdpWasmKernels(); // leave the fast kernels in place whatever happened
  }
  const naive = results.find((r) => r.set === 'naive');
  const ddp = results.find((r) => r.set === 'ddp');
  const result = {
    ...resultHeader('step'),
    model: 'seed-cnn' as const,
    batchSize,
    warmup,
    steps,
    sets: results,
    speedup: naive && ddp ? ddp.samplesPerSec / naive.samplesPerSec : null,
  };
  for (const line of formatStepBench(result)) log(line);
  const file = writeResultFile(opts.out ?? defaultResultFile('step'), result);
  log(`written ${file}`);
  return { ...result, file };
}
