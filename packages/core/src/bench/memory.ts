import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core registers no gradient functions by itself (ESM or node bundle); tfjs-layers does, as a
// side effect of being imported. gradientSum needs them.
import '@tensorflow/tfjs-layers';
import { registerDdpWasmKernels } from '../backend/kernels/index.js';
import { createRng } from '../data/random.js';
import { initSeedCnnParams } from '../model/init.js';
import { gradientSum } from '../model/seed-cnn.js';
import { IMAGE_SIZE, NUM_CLASSES } from '../model/seed-cnn-layout.js';
import { defaultResultFile, resultHeader, writeResultFile, type ResultHeader } from './results-file.js';

/**
 * The memory check: runs training steps (gradientSum on the seed CNN, as a worker does) and records
 * the process RSS, tfjs's live tensor count and the backend's live buffer count (which also counts
 * kernel-internal temporaries that a kernel forgot to free) every `every` steps. Flat is good.
 *
 *   await runMemoryBench({ steps: 2000, log: console.log });
 */
export interface MemoryBenchOptions {
  /** Training steps to run (default 2000). */
  steps?: number;
  /** Samples per step (default 64). */
  batchSize?: number;
  /** Record a sample every this many steps (default 100). */
  every?: number;
  /** JSON result file; default bench/results/memory-<YYYYMMDD-HHMMSS>.json. Pass null to write none. */
  out?: string | null;
  log?: (line: string) => void;
}

export interface MemorySample {
  step: number;
  rssMB: number;
  /** V8's used JS heap: RSS growth without JS heap growth points at native memory. */
  jsHeapMB: number;
  numTensors: number;
  /** Buffers the backend holds (tensors' data plus any leaked kernel temporaries). */
  backendBuffers: number;
  /** Size of the wasm heap (it grows, never shrinks), when on wasm. */
  wasmHeapMB: number | null;
}

export interface MemoryBenchResult extends ResultHeader<'memory'> {
  batchSize: number;
  steps: number;
  samples: MemorySample[];
  /** Growth from the first sample to the last. */
  tensorGrowth: number;
  backendBufferGrowth: number;
  /** RSS growth from the first sample at or after 10% of the steps (allocators and JIT warm up first). */
  rssGrowthMB: number;
  rssSettledFromStep: number;
  file: string | null;
}

function sample(step: number): MemorySample {
  const backend = tf.backend() as unknown as { numDataIds(): number; wasm?: { HEAPU8: Uint8Array } };
  return {
    step,
    rssMB: process.memoryUsage().rss / 2 ** 20,
    jsHeapMB: process.memoryUsage().heapUsed / 2 ** 20,
    numTensors: tf.memory().numTensors,
    backendBuffers: backend.numDataIds(),
    wasmHeapMB: backend.wasm ? backend.wasm.HEAPU8.length / 2 ** 20 : null,
  };
}

export async function runMemoryBench(opts: MemoryBenchOptions = {}): Promise<MemoryBenchResult> {
  const steps = opts.steps ?? 2000;
  const batchSize = opts.batchSize ?? 64;
  const every = opts.every ?? 100;
  for (const [name, v] of [['steps', steps], ['batchSize', batchSize], ['every', every]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`runMemoryBench: ${name} must be a positive integer, got ${v}`);
  }
  const log = opts.log ?? (() => {});
  if (tf.getBackend() !== 'wasm') {
    registerDdpWasmKernels();
    if (!(await tf.setBackend('wasm'))) throw new Error('runMemoryBench: the wasm backend failed to initialise');
  }
  await tf.ready();

  const rng = createRng(7);
  let params = initSeedCnnParams(1);
  const images = Float32Array.from({ length: batchSize * IMAGE_SIZE * IMAGE_SIZE }, () => rng.nextFloat());
  const labels = Int32Array.from({ length: batchSize }, () => rng.nextBelow(NUM_CLASSES));
  const samples: MemorySample[] = [];
  log(`${'step'.padStart(6)}${'rss MB'.padStart(9)}${'js MB'.padStart(8)}${'tensors'.padStart(9)}${'buffers'.padStart(9)}${'heap MB'.padStart(9)}`);
  const record = (step: number) => {
    const s = sample(step);
    samples.push(s);
    log(`${String(s.step).padStart(6)}${s.rssMB.toFixed(1).padStart(9)}${s.jsHeapMB.toFixed(1).padStart(8)}${String(s.numTensors).padStart(9)}${String(s.backendBuffers).padStart(9)}${(s.wasmHeapMB ?? 0).toFixed(1).padStart(9)}`);
  };
  record(0);
  for (let step = 1; step <= steps; step++) {
    const { grad } = gradientSum(params, images, labels, batchSize);
    // A plain SGD step, so that each step sees new weights (new tensors, new XNNPACK operators).
    const next = new Float32Array(params.length);
    for (let i = 0; i < params.length; i++) next[i] = params[i] - 1e-4 * grad[i];
    params = next;
    if (step % every === 0 || step === steps) record(step);
  }
  const first = samples[0];
  const last = samples[samples.length - 1];
  const settled = samples.find((s) => s.step >= steps / 10) ?? first;
  const result = {
    ...resultHeader('memory'),
    batchSize,
    steps,
    samples,
    tensorGrowth: last.numTensors - first.numTensors,
    backendBufferGrowth: last.backendBuffers - first.backendBuffers,
    rssGrowthMB: last.rssMB - settled.rssMB,
    rssSettledFromStep: settled.step,
  };
  log(`growth over ${steps} steps: ${result.tensorGrowth} tensors, ${result.backendBufferGrowth} backend buffers; RSS ${result.rssGrowthMB.toFixed(1)} MB from step ${settled.step} on`);
  let file: string | null = null;
  if (opts.out !== null) {
    file = writeResultFile(opts.out ?? defaultResultFile('memory'), result);
    log(`written ${file}`);
  }
  return { ...result, file };
}
