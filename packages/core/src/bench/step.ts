import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core registers no gradient functions by itself (ESM or node bundle); tfjs-layers does, as a
// side effect of being imported. gradientSum needs them.
import '@tensorflow/tfjs-layers';
import { registerDdpWasmKernels, setWasmKernelSet, type WasmKernelSet } from '../backend/kernels/index.js';
import { setTransposedIm2colRoute } from '../backend/kernels/Conv2DBackpropFilter.js';
import { createRng } from '../data/random.js';
import { setLayerFusion } from '../model/fused-layers.js';
import { initSeedCnnParams } from '../model/init.js';
import { BatchGradient } from '../model/reduction.js';
import { gradientSum } from '../model/seed-cnn.js';
import { IMAGE_SIZE, NUM_CLASSES, SEED_CNN_PARAM_COUNT } from '../model/seed-cnn-layout.js';
import { Adam } from '../optim/adam.js';
import { findPytorch, RECORDED_PYTORCH, runPytorchStep } from './pytorch-step.js';
import { defaultResultFile, resultHeader, writeResultFile, type ResultHeader } from './results-file.js';
import { median } from './stats.js';

/**
 * The step benchmark, in one process on the wasm backend:
 * 1. the gradient of the seed CNN (forward + backward, the gradient of the loss sum, as a worker
 *    computes it) for each variant (VARIANTS: the stock kernels; 'before': ddp's kernels without
 *    the transposed-im2col filter gradient and with the layers as tfjs tapes them; 'ddp': all of
 *    ddp's kernels and the fused layers), side by side: the median time per step,
 *    samples/s and the median per-kernel time per step from tf.profile, before and after;
 * 2. per core against PyTorch: whole training steps as `ddp train --workers 0` runs them (the
 *    default exact reduction's micro-shards, then Adam) against the same step in PyTorch on one
 *    thread (pytorch-step.ts), in interleaved rounds; the ratio is the median of the rounds'
 *    ratios. Without PyTorch the ratio is against RECORDED_PYTORCH, and the result says so.
 *
 *   const r = await runStepBench({ batchSize: 64, steps: 15, log: console.log });
 */
export type StepVariant = 'naive' | 'before' | 'ddp';

export const VARIANTS: Record<StepVariant, { kernels: WasmKernelSet; fusion: boolean; transposedIm2col: boolean; about: string }> = {
  naive: { kernels: 'naive', fusion: false, transposedIm2col: false, about: 'stock wasm kernels (a naive filter gradient), layers as tfjs tapes them' },
  before: {
    kernels: 'ddp', fusion: false, transposedIm2col: false,
    about: "ddp's kernels without the transposed-im2col filter gradient, layers as tfjs tapes them (conv, bias add, relu apart)",
  },
  ddp: {
    kernels: 'ddp', fusion: true, transposedIm2col: true,
    about: "ddp's kernels with the transposed-im2col filter gradient, fused conv/dense + bias + relu layers (model/fused-layers.ts)",
  },
};

export interface StepBenchOptions {
  /** Samples per step (default 64, the seed job's batch). */
  batchSize?: number;
  /** Untimed steps per kernel set before timing (default 3). */
  warmup?: number;
  /** Timed steps per kernel set; the median is reported (default 15). */
  steps?: number;
  /** Steps run under tf.profile per variant for the per-kernel times (default 5). */
  profileSteps?: number;
  /** JSON result file (default bench/results/step-<YYYYMMDD-HHMMSS>.json under the workspace root). */
  out?: string;
  /** Where the table goes, line by line (default: nowhere). */
  log?: (line: string) => void;
  /** Variants to compare, in order (default ['naive', 'before', 'ddp']). */
  sets?: StepVariant[];
  /** Rounds of the per-core comparison with PyTorch; 0 skips it (default 3). */
  rounds?: number;
  /** Training steps timed per round and side (default 100). */
  trainSteps?: number;
  /** 'auto': measure PyTorch where a python3 imports torch, else use the recorded figure; 'off': the recorded figure. */
  pytorch?: 'auto' | 'off';
}

export interface KernelSetStepResult {
  set: StepVariant;
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
  /** samples/s of 'ddp' over samples/s of 'before' (the gain of the fused layers and the transposed-im2col route), when both ran. */
  speedupOverBefore: number | null;
  /** The per-core comparison with PyTorch; null when rounds is 0. */
  perCore: PerCoreResult | null;
  /** Where the JSON was written. */
  file: string;
}

export interface PerCoreResult {
  batchSize: number;
  /** Training steps per round and side. */
  trainSteps: number;
  /** ddp's whole training steps (exact micro-shards + Adam), samples/s, one figure per round. */
  ddpSamplesPerSec: number[];
  pytorch:
    | { source: 'measured'; python: string; version: string; samplesPerSec: number[] }
    | { source: 'recorded'; reason: string; version: string; date: string; samplesPerSec: number };
  /** ddp / PyTorch: the median of the rounds' ratios (measured), or ddp's median over the recorded figure. */
  ratio: number;
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

function useVariant(set: StepVariant): void {
  setWasmKernelSet(VARIANTS[set].kernels);
  setLayerFusion(VARIANTS[set].fusion);
  setTransposedIm2colRoute(VARIANTS[set].transposedIm2col);
}

/**
 * Times the variants step by step in turn (the order reversed every other step), so that a change
 * in the machine's load weighs on all of them alike; then profiles each.
 */
async function measureSets(sets: StepVariant[], step: () => void, warmup: number, steps: number, profileSteps: number): Promise<KernelSetStepResult[]> {
  for (const set of sets) {
    useVariant(set);
    for (let i = 0; i < warmup; i++) step();
  }
  const stepMs = new Map<StepVariant, number[]>(sets.map((s) => [s, []]));
  for (let i = 0; i < steps; i++) {
    for (const set of i % 2 === 0 ? sets : [...sets].reverse()) {
      useVariant(set);
      const t0 = performance.now();
      step();
      stepMs.get(set)!.push(performance.now() - t0);
    }
  }
  const results: KernelSetStepResult[] = [];
  for (const set of sets) {
    useVariant(set);
    const { kernelMs, kernelCalls } = await profileKernels(step, profileSteps);
    const ms = stepMs.get(set)!;
    results.push({ set, medianStepMs: median(ms), minStepMs: Math.min(...ms), samplesPerSec: 0, stepMs: ms, kernelMs, kernelCalls });
  }
  return results;
}

/**
 * Median per-kernel time per step over `profileSteps` profiled steps. Only registered kernels
 * count: tf.profile also lists composite ops (a customGrad's 'forward', 'logSoftmax__op'), whose
 * time is that of the kernels inside them, which it lists as well.
 */
async function profileKernels(step: () => void, profileSteps: number): Promise<{ kernelMs: Record<string, number>; kernelCalls: Record<string, number> }> {
  const perStep: Array<Map<string, number>> = [];
  const kernelCalls: Record<string, number> = {};
  for (let i = 0; i < profileSteps; i++) {
    const info = await tf.profile(() => {
      step();
    });
    const totals = new Map<string, number>();
    const calls: Record<string, number> = {};
    for (const k of info.kernels) {
      if (tf.getKernel(k.name, tf.getBackend()) === undefined) continue;
      totals.set(k.name, (totals.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      calls[k.name] = (calls[k.name] ?? 0) + 1;
    }
    perStep.push(totals);
    Object.assign(kernelCalls, calls);
  }
  const names = new Set(perStep.flatMap((m) => [...m.keys()]));
  const kernelMs: Record<string, number> = {};
  for (const name of names) kernelMs[name] = median(perStep.map((m) => m.get(name) ?? 0));
  return { kernelMs, kernelCalls };
}

const fmt = (v: number | undefined, digits = 2) => (v === undefined ? '-' : v.toFixed(digits));

export function formatStepBench(r: Omit<StepBenchResult, 'file'>): string[] {
  const lines: string[] = [];
  lines.push(`step benchmark: seed CNN, batch ${r.batchSize}, forward + backward on ${r.machine.backend} (${r.machine.cpuModel}, ${r.machine.nproc} cores, node ${r.machine.nodeVersion}, tfjs ${r.machine.tfjsVersion})`);
  lines.push(`load average ${r.machine.loadAverage.join(' ')}, nice ${r.machine.niceness} (figures are lower when other work runs)`);
  lines.push(`${'variant'.padEnd(12)}${'ms/step'.padStart(10)}${'samples/s'.padStart(12)}${'min ms/step'.padStart(13)}`);
  for (const s of r.sets) lines.push(`${s.set.padEnd(12)}${fmt(s.medianStepMs).padStart(10)}${fmt(s.samplesPerSec, 1).padStart(12)}${fmt(s.minStepMs).padStart(13)}`);
  if (r.speedup !== null) lines.push(`ddp / naive: ${r.speedup.toFixed(2)}x`);
  if (r.speedupOverBefore !== null) lines.push(`ddp / before: ${r.speedupOverBefore.toFixed(2)}x`);
  for (const s of r.sets) lines.push(`  ${s.set}: ${VARIANTS[s.set].about}`);
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
  if (r.perCore) lines.push('', ...formatPerCore(r.perCore));
  return lines;
}

function formatPerCore(p: PerCoreResult): string[] {
  const lines = [`per core against PyTorch: whole training steps (batch ${p.batchSize}, ${p.trainSteps} steps a round; ddp: exact micro-shards + Adam, as ddp train --workers 0)`];
  const py = p.pytorch;
  if (py.source === 'measured') {
    lines.push(`PyTorch ${py.version} (${py.python}, one thread), interleaved rounds:`);
    p.ddpSamplesPerSec.forEach((d, i) => lines.push(`  round ${i + 1}: ddp ${d.toFixed(0)} samples/s, PyTorch ${py.samplesPerSec[i]!.toFixed(0)} samples/s, ratio ${(d / py.samplesPerSec[i]!).toFixed(2)}`));
    lines.push(`ddp / PyTorch per core: ${p.ratio.toFixed(2)}x (median of the rounds)`);
  } else {
    lines.push(`PyTorch not measured: ${py.reason}`);
    lines.push(`ddp: ${p.ddpSamplesPerSec.map((d) => d.toFixed(0)).join(', ')} samples/s; recorded PyTorch ${py.version} figure (${py.date}): ${py.samplesPerSec} samples/s`);
    lines.push(`ddp / PyTorch per core: ${p.ratio.toFixed(2)}x (against the recorded figure)`);
  }
  return lines;
}

/** samples/s of `steps` whole training steps as `ddp train --workers 0` runs them, after 3 untimed ones. */
function timeTrainSteps(gradient: BatchGradient, params: Float32Array, adam: Adam, batch: { images: Float32Array; labels: Int32Array }, n: number, steps: number): number {
  const one = () => adam.stepFromSum(params, gradient.compute(params, batch.images, batch.labels, n).grad, n);
  for (let i = 0; i < 3; i++) one();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) one();
  return (n * steps * 1000) / (performance.now() - t0);
}

async function measurePerCore(batchSize: number, rounds: number, trainSteps: number, pytorch: 'auto' | 'off', log: (l: string) => void): Promise<PerCoreResult> {
  useVariant('ddp'); // whatever variant the gradient comparison timed last
  const params = initSeedCnnParams(2);
  const adam = new Adam(SEED_CNN_PARAM_COUNT);
  const gradient = new BatchGradient('exact');
  const batch = syntheticBatch(batchSize);
  const probe = pytorch === 'auto' ? await findPytorch() : { python: null, reason: 'not asked for (--pytorch off)' };
  const ddp: number[] = [];
  const torch: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate who goes first, so a drift in the machine's load favours neither.
    const sides = r % 2 === 0 ? ['ddp', 'torch'] : ['torch', 'ddp'];
    for (const side of sides) {
      if (side === 'ddp') ddp.push(timeTrainSteps(gradient, params, adam, batch, batchSize, trainSteps));
      else if (probe.python !== null) torch.push(await runPytorchStep(probe.python, trainSteps, batchSize));
    }
    log(`round ${r + 1}/${rounds}: ddp ${ddp[r]!.toFixed(0)} samples/s${probe.python !== null ? `, PyTorch ${torch[r]!.toFixed(0)} samples/s` : ''}`);
  }
  if (probe.python !== null) {
    return {
      batchSize, trainSteps, ddpSamplesPerSec: ddp,
      pytorch: { source: 'measured', python: probe.python, version: probe.version, samplesPerSec: torch },
      ratio: median(ddp.map((d, i) => d / torch[i]!)),
    };
  }
  return {
    batchSize, trainSteps, ddpSamplesPerSec: ddp,
    pytorch: { source: 'recorded', reason: probe.reason, version: RECORDED_PYTORCH.torch, date: RECORDED_PYTORCH.date, samplesPerSec: RECORDED_PYTORCH.samplesPerSec },
    ratio: median(ddp) / RECORDED_PYTORCH.samplesPerSec,
  };
}

export async function runStepBench(opts: StepBenchOptions = {}): Promise<StepBenchResult> {
  const batchSize = checkCount('batchSize', opts.batchSize ?? 64, 1);
  const warmup = checkCount('warmup', opts.warmup ?? 3, 0);
  const steps = checkCount('steps', opts.steps ?? 15, 1);
  const profileSteps = checkCount('profileSteps', opts.profileSteps ?? 5, 1);
  const rounds = checkCount('rounds', opts.rounds ?? 3, 0);
  const trainSteps = checkCount('trainSteps', opts.trainSteps ?? 100, 1);
  const pytorch = opts.pytorch ?? 'auto';
  if (pytorch !== 'auto' && pytorch !== 'off') throw new RangeError(`runStepBench: pytorch must be 'auto' or 'off', got ${JSON.stringify(pytorch)}`);
  const sets = opts.sets ?? (['naive', 'before', 'ddp'] as StepVariant[]);
  for (const set of sets) if (!(set in VARIANTS)) throw new RangeError(`runStepBench: unknown variant ${JSON.stringify(set)} (expected ${Object.keys(VARIANTS).join(', ')})`);
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
  let perCore: PerCoreResult | null = null;
  const fusionBefore = setLayerFusion(true);
  const routeBefore = setTransposedIm2colRoute(true);
  try {
    for (const r of await measureSets(sets, step, warmup, steps, profileSteps)) {
      r.samplesPerSec = (batchSize * 1000) / r.medianStepMs;
      results.push(r);
      log(`${r.set}: ${r.medianStepMs.toFixed(2)} ms/step, ${r.samplesPerSec.toFixed(1)} samples/s`);
    }
    if (rounds > 0) perCore = await measurePerCore(batchSize, rounds, trainSteps, pytorch, log);
  } finally {
    registerDdpWasmKernels(); // leave the fast kernels in place whatever happened
    setLayerFusion(fusionBefore);
    setTransposedIm2colRoute(routeBefore);
  }
  const of = (v: StepVariant) => results.find((r) => r.set === v);
  const ratio = (a?: KernelSetStepResult, b?: KernelSetStepResult) => (a && b ? a.samplesPerSec / b.samplesPerSec : null);
  const result = {
    ...resultHeader('step'),
    model: 'seed-cnn' as const,
    batchSize,
    warmup,
    steps,
    sets: results,
    speedup: ratio(of('ddp'), of('naive')),
    speedupOverBefore: ratio(of('ddp'), of('before')),
    perCore,
  };
  for (const line of formatStepBench(result)) log(line);
  const file = writeResultFile(opts.out ?? defaultResultFile('step'), result);
  log(`written ${file}`);
  return { ...result, file };
}
