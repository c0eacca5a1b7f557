/**
 * `ddp bench memory` end to end, with tiny settings: it runs the training steps, prints its samples
 * and writes the JSON result (header, samples every --every steps and after the last), in which the
 * live tensor count stays flat.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-bench-memory-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

it('ddp bench memory --steps 10 --batch-size 4 writes samples with a flat tensor count', async () => {
  const out = path.join(tmp, 'memory.json');
  const run = await runCli(['bench', 'memory', '--steps', '10', '--batch-size', '4', '--every', '3', '--out', out], { timeoutMs: 120_000 });
  expect(run.code, run.stderr + run.stdout).toBe(0);
  expect(run.stdout).toContain(`written ${out}`);
  const result = JSON.parse(fs.readFileSync(out, 'utf8'));
  expect(result).toMatchObject({ benchmark: 'memory', steps: 10, batchSize: 4 });
  expect(result.machine).toMatchObject({ backend: 'wasm', nodeVersion: process.version });
  expect(result.samples.map((s: { step: number }) => s.step)).toEqual([0, 3, 6, 9, 10]);
  // Sample 0 is taken before any step; from the first step on the count must not move.
  const counts = result.samples.slice(1).map((s: { numTensors: number }) => s.numTensors);
  expect(new Set(counts).size, `numTensors ${counts.join(', ')}`).toBe(1);
  expect(result.tensorGrowth).toBe(result.samples.at(-1).numTensors - result.samples[0].numTensors);
});
