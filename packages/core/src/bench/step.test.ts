import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { getWasmKernelSet } from '../backend/kernels/index.js';
import { layerFusion } from '../model/fused-layers.js';
import { findPytorch, RECORDED_PYTORCH, runPytorchStep } from './pytorch-step.js';
import { median } from './stats.js';
import { runStepBench } from './step.js';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-step-'));
  dirs.push(d);
  return d;
};
const savedPython = process.env.DDP_PYTHON;
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  if (savedPython === undefined) delete process.env.DDP_PYTHON;
  else process.env.DDP_PYTHON = savedPython;
});

it('runStepBench measures the three variants, the ratio against the recorded PyTorch figure, writes the JSON and leaves the fast path in place', async () => {
  const out = path.join(tmp(), 'nested', 'step.json');
  const lines: string[] = [];
  const r = await runStepBench({ batchSize: 2, warmup: 0, steps: 2, profileSteps: 1, rounds: 2, trainSteps: 2, pytorch: 'off', out, log: (l) => lines.push(l) });

  expect(r.sets.map((s) => s.set)).toEqual(['naive', 'before', 'ddp']);
  for (const s of r.sets) {
    expect(s.stepMs).toHaveLength(2);
    expect(s.samplesPerSec).toBeCloseTo((2 * 1000) / s.medianStepMs, 6);
    // Every gradient kernel of the seed CNN ran once per conv layer (the first layer needs no dx).
    expect(s.kernelCalls.Conv2DBackpropFilter).toBe(3);
    expect(s.kernelCalls.Conv2DBackpropInput).toBe(2);
    expect(s.kernelCalls.MaxPoolGrad).toBe(2);
    expect(s.kernelMs.Conv2DBackpropFilter).toBeGreaterThan(0);
    // Composite ops (a customGrad's 'forward') are not kernels and are not counted twice.
    expect(s.kernelCalls.forward).toBeUndefined();
  }
  const [naive, before, ddp] = r.sets;
  // Before the fused layers: the bias Add and the Relu run apart; after: one FusedConv2D per conv
  // layer, and one DdpReluBiasGrad per layer with a relu (3 conv + the hidden dense layer).
  expect(before!.kernelCalls.Relu).toBe(4);
  expect(ddp!.kernelCalls.Relu).toBeUndefined();
  expect(ddp!.kernelCalls.Add).toBeUndefined();
  expect(ddp!.kernelCalls.FusedConv2D).toBe(3);
  expect(ddp!.kernelCalls.DdpReluBiasGrad).toBe(4);
  expect(naive!.kernelCalls.DdpReluBiasGrad).toBeUndefined();
  expect(r.speedup).toBeCloseTo(ddp!.samplesPerSec / naive!.samplesPerSec, 6);
  expect(r.speedupOverBefore).toBeCloseTo(ddp!.samplesPerSec / before!.samplesPerSec, 6);

  const perCore = r.perCore!;
  expect(perCore.ddpSamplesPerSec).toHaveLength(2);
  expect(perCore.pytorch).toMatchObject({ source: 'recorded', samplesPerSec: RECORDED_PYTORCH.samplesPerSec, reason: expect.stringContaining('--pytorch off') });
  expect(perCore.ratio).toBeCloseTo(median(perCore.ddpSamplesPerSec) / RECORDED_PYTORCH.samplesPerSec, 9);
  expect(lines.some((l) => l.startsWith('ddp / PyTorch per core:') && l.includes('against the recorded figure'))).toBe(true);

  const written = JSON.parse(fs.readFileSync(out, 'utf8'));
  expect(written.sets).toHaveLength(3);
  expect(written.perCore.pytorch.source).toBe('recorded');
  expect(written.machine.backend).toBe('wasm');
  expect(written.machine.backendFlags).toHaveProperty('WASM_HAS_SIMD_SUPPORT');
  expect(r.file).toBe(path.resolve(out));
  expect(lines.some((l) => l.startsWith('ddp / naive:'))).toBe(true);
  expect(lines.some((l) => l.startsWith('ddp / before:'))).toBe(true);
  expect(getWasmKernelSet()).toBe('ddp');
  expect(layerFusion()).toBe(true);
  expect(tf.getBackend()).toBe('wasm');
}, 60_000);

it('runs PyTorch where a python3 imports torch: interleaved rounds, one ratio per round, the median', async () => {
  // A stand-in interpreter (DDP_PYTHON is tried first): answers the torch probe with a version and
  // the step program with a figure, and records the step count and batch size it was given.
  const dir = tmp();
  const python = path.join(dir, 'python3');
  fs.writeFileSync(python, `#!/bin/sh\ncase "$2" in\n  *"torch.__version__"*) echo 9.9.9-stub ;;\n  *) echo "$3 $4" >> "${dir}/calls"; echo 400 ;;\nesac\n`, { mode: 0o755 });
  process.env.DDP_PYTHON = python;
  const lines: string[] = [];
  const r = await runStepBench({ batchSize: 16, warmup: 0, steps: 1, profileSteps: 1, rounds: 3, trainSteps: 2, sets: ['ddp'], out: path.join(dir, 's.json'), log: (l) => lines.push(l) });
  const p = r.perCore!;
  expect(p.pytorch).toEqual({ source: 'measured', python, version: '9.9.9-stub', samplesPerSec: [400, 400, 400] });
  expect(p.ratio).toBeCloseTo(median(p.ddpSamplesPerSec.map((d) => d / 400)), 9);
  expect(fs.readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n')).toEqual(['2 16', '2 16', '2 16']);
  expect(lines.filter((l) => /^ {2}round \d: ddp \d+ samples\/s, PyTorch 400 samples\/s, ratio /.test(l))).toHaveLength(3);
}, 60_000);

// The real PyTorch step program, where a python3 here imports torch (Debian: python3-torch); CI has none and skips.
const torch = await findPytorch();
it.skipIf(torch.python === null)(`the PyTorch step program runs and reports samples/s (${torch.python ?? 'no python3 with torch here'})`, async () => {
  const v = await runPytorchStep(torch.python!, 3, 8);
  expect(Number.isFinite(v) && v > 0).toBe(true);
}, 120_000);

it('runStepBench rejects bad options before running anything', async () => {
  await expect(runStepBench({ steps: 0 })).rejects.toThrow(/steps must be an integer >= 1, got 0/);
  await expect(runStepBench({ batchSize: 1.5 })).rejects.toThrow(/batchSize must be an integer >= 1, got 1.5/);
  await expect(runStepBench({ rounds: -1 })).rejects.toThrow(/rounds must be an integer >= 0, got -1/);
  await expect(runStepBench({ sets: ['fast' as never] })).rejects.toThrow(/unknown variant "fast"/);
  await expect(runStepBench({ pytorch: 'yes' as never })).rejects.toThrow(/pytorch must be 'auto' or 'off'/);
});
