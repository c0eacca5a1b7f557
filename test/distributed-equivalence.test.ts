/**
 * Star mode with --reduction fast (float32 sums; the default, exact, is in exact-equivalence.test.ts):
 * N workers train the same model as one process up to float rounding. Same seed, batch 64, 50 steps, real
 * processes and sockets (`ddp train --workers N --allreduce star`: a coordinator and N workers).
 * (Ring mode's guarantees are in ring-training.test.ts.)
 *
 * What float arithmetic allows, and what these tests hold to:
 * - N = 1 is the single-process computation in another process: bitwise the same weights.
 * - Two runs with N = 2 are bitwise identical (the sum is in rank order, whatever the arrival order).
 * - N = 2 and N = 3 are bitwise equal to an in-process reference that computes the same shards and
 *   adds them in rank order: the coordinator sums the right shards, in the right order, once a step.
 * - At every one of the 50 steps, the 2- and 3-shard sums equal the whole batch's gradient up to
 *   float rounding (relative 1e-5): the sharded step is the single-process step.
 * - The weights after 50 steps are NOT held to within 1e-4 of the single-process run by default.
 *   The per-shard batch reductions round differently (about 1e-7 in the weights), and once such a
 *   difference flips a ReLU or max-pool decision the two trajectories drift apart: measured here
 *   from 4.5e-7 to 7.6e-3 depending on N, the seed and the kernel versions of the day. That check
 *   runs with DDP_E2E_STRICT=1; --reduction exact (the default) closes the gap (exact-equivalence.test.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './cli-helpers.js';
import { bitwiseEqual, maxAbsDiff, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir } from './distributed-helpers.js';
import { loadTrain, referenceStart, referenceSteps } from './reference.js';
import { epochPermutation, gatherImages, gatherLabels, globalBatch, gradientSum, shardBatch } from '@ddp/core';

const STEPS = 50;
const LIMIT_TRAIN = 6400;
const JOB = ['--allreduce', 'star', '--max-steps', String(STEPS), '--batch-size', '64', '--seed', '42', '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm', '--reduction', 'fast'];

interface Trained {
  run: CliRun;
  weights: Float32Array;
}

async function train(workers: number): Promise<Trained> {
  const out = tmpDir();
  const run = await runCli(['train', '--workers', String(workers), ...JOB, '--out', out, '--log-format', 'json'], { json: true, timeoutMs: 180_000 });
  expect(run.code, run.stderr).toBe(0);
  expect(stepNumbers(run.events)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  expect(run.events.at(-1)).toMatchObject({ event: 'done', steps: STEPS, workers });
  return { run, weights: readWeights(out) };
}

const runs = new Map<string, Trained>();

beforeAll(async () => {
  for (const [key, n] of [['0', 0], ['1', 1], ['2', 2], ['2b', 2], ['3', 3]] as const) runs.set(key, await train(n));
}, 600_000);

describe('N workers train the same model as one process (50 steps, batch 64)', () => {
  it('N = 1: bitwise the single-process weights, and the same test loss (evaluated by the worker)', () => {
    expect(bitwiseEqual(runs.get('1')!.weights, runs.get('0')!.weights)).toBe(true);
    expect(runs.get('1')!.run.events.at(-1)!.testLoss).toBe(runs.get('0')!.run.events.at(-1)!.testLoss);
  });

  it('N = 2, twice: bitwise-identical weights', () => {
    expect(bitwiseEqual(runs.get('2')!.weights, runs.get('2b')!.weights)).toBe(true);
  });

  it('N = 2 and N = 3: bitwise the in-process reference (same shards, rank-order sum, one Adam step a step)', async () => {
    const train = loadTrain(LIMIT_TRAIN);
    for (const n of [1, 2, 3]) {
      const ref = await referenceStart(42);
      await referenceSteps(ref, train, 42, STEPS, n);
      expect(bitwiseEqual(runs.get(n === 1 ? '0' : String(n))!.weights, ref.params), `N = ${n}`).toBe(true);
    }
  }, 180_000);

  it('at every step, the 2- and 3-shard gradient sums are the whole batch\'s gradient up to rounding', async () => {
    const train = loadTrain(LIMIT_TRAIN);
    const ref = await referenceStart(42);
    const perm = epochPermutation(42, 0, train.count);
    let worst = 0;
    for (let s = 0; s < STEPS; s++) {
      const batch = globalBatch(perm, s, 64);
      const whole = gradientSum(ref.params, gatherImages(train, batch), gatherLabels(train, batch), batch.length).grad;
      const scale = whole.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (const n of [2, 3]) {
        const sum = new Float32Array(whole.length);
        for (const shard of shardBatch(batch, n)) {
          const g = gradientSum(ref.params, gatherImages(train, shard), gatherLabels(train, shard), shard.length).grad;
          for (let i = 0; i < sum.length; i++) sum[i] += g[i];
        }
        let d = 0;
        for (let i = 0; i < sum.length; i++) d = Math.max(d, Math.abs(sum[i] - whole[i]));
        worst = Math.max(worst, d / scale);
      }
      await referenceSteps(ref, train, 42, 1, 1);
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
  }, 180_000);

  it.skipIf(!process.env.DDP_E2E_STRICT)('N = 2 and N = 3: within 1e-4 of the single-process run (not robust: see the header)', () => {
    for (const n of ['2', '3']) expect(maxAbsDiff(runs.get(n)!.weights, runs.get('0')!.weights), `N = ${n}`).toBeLessThanOrEqual(1e-4);
  });

  it('--serve-data: workers with no copy of the data set compute the same bits', async () => {
    const out = tmpDir();
    const env = { DDP_TOKEN: 'e2e-serve' };
    const { coord, url } = await startCoordinator(['--workers', '2', '--serve-data', ...JOB, '--out', out], env);
    // A data folder that does not exist: the workers must not need it.
    const workers = [1, 2].map(() => startWorker(url, ['--data-dir', '/nonexistent/ddp-data', '--backend', 'wasm'], env));
    const [c, ...w] = await Promise.all([coord.exit, ...workers.map((x) => x.exit)]);
    expect(c.code, coord.stderr()).toBe(0);
    expect(w.map((x) => x.code)).toEqual([0, 0]);
    expect(bitwiseEqual(readWeights(out), runs.get('2')!.weights)).toBe(true);
  }, 120_000);
});
