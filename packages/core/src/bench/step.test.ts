import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { getWasmKernelSet } from '../backend/kernels/index.js';
import { runStepBench } from './step.js';

it('runStepBench measures both kernel sets, writes the JSON and leaves the ddp kernels in place', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-step-'));
  const out = path.join(dir, 'nested', 'step.json');
  const lines: string[] = [];
  const r = await runStepBench({ batchSize: 2, warmup: 0, steps: 2, profileSteps: 1, out, log: (l) => lines.push(l) });

  expect(r.sets.map((s) => s.set)).toEqual(['naive', 'ddp']);
  for (const s of r.sets) {
    expect(s.stepMs).toHaveLength(2);
    expect(s.samplesPerSec).toBeCloseTo((2 * 1000) / s.medianStepMs, 6);
    // Every gradient kernel of the seed CNN ran once per conv layer (the first layer needs no dx).
    expect(s.kernelCalls.Conv2DBackpropFilter).toBe(3);
    expect(s.kernelCalls.Conv2DBackpropInput).toBe(2);
    expect(s.kernelCalls.MaxPoolGrad).toBe(2);
    expect(s.kernelMs.Conv2DBackpropFilter).toBeGreaterThan(0);
  }
  expect(r.speedup).toBeCloseTo(r.sets[1].samplesPerSec / r.sets[0].samplesPerSec, 6);
  const written = JSON.parse(fs.readFileSync(out, 'utf8'));
  expect(written.sets).toHaveLength(2);
  expect(written.machine.backend).toBe('wasm');
  expect(written.machine.backendFlags).toHaveProperty('WASM_HAS_SIMD_SUPPORT');
  expect(r.file).toBe(path.resolve(out));
  expect(lines.some((l) => l.startsWith('ddp / naive:'))).toBe(true);
  expect(getWasmKernelSet()).toBe('ddp');
  expect(tf.getBackend()).toBe('wasm');
  fs.rmSync(dir, { recursive: true, force: true });
}, 30_000);

it('runStepBench rejects bad options before running anything', async () => {
  await expect(runStepBench({ steps: 0 })).rejects.toThrow(/steps must be an integer >= 1, got 0/);
  await expect(runStepBench({ batchSize: 1.5 })).rejects.toThrow(/batchSize must be an integer >= 1, got 1.5/);
});
