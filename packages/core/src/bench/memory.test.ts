// tfjs-core registers no gradient functions by itself; importing tfjs-layers does (as in bench/step.ts).
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { registerDdpWasmKernels } from '../backend/kernels/index.js';
import { runMemoryBench } from './memory.js';

beforeAll(async () => {
  registerDdpWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

it('training steps on wasm leak neither tensors nor kernel buffers', async () => {
  // Small batches keep this fast; the first sample is taken after one warm-up step has run.
  const r = await runMemoryBench({ steps: 30, batchSize: 4, every: 5, out: null });
  expect(r.samples.length).toBeGreaterThanOrEqual(7);
  const afterWarmup = r.samples.slice(1);
  for (const s of afterWarmup) {
    expect(s.numTensors, `tensors at step ${s.step}`).toBe(afterWarmup[0].numTensors);
    expect(s.backendBuffers, `backend buffers at step ${s.step}`).toBe(afterWarmup[0].backendBuffers);
  }
});
