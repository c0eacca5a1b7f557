/**
 * Ring mode (the default) with --reduction fast (float32 sums, so the bits depend on the split; the
 * default reduction, exact, is in exact-equivalence.test.ts): the workers draw their own shards, reduce among themselves over direct
 * links and each applies Adam to its own replica. Real processes and sockets.
 *
 * What float arithmetic allows, and what these tests hold to:
 * - N = 1: the ring is the single-process computation: bitwise the --workers 0 weights.
 * - N = 2: a ring adds each chunk as a + b or b + a, and IEEE addition is commutative, so ring and
 *   star give bitwise-identical weights.
 * - N = 3: each chunk is added in a rotation of rank order, so ring and star differ in the last
 *   bits; the ring must be bitwise the in-process reference that runs the same ringAllreduce.
 * - Every epoch, every replica reports the same weight hash, which is the hash of the weights the
 *   coordinator evaluates and saves.
 */
import { describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './cli-helpers.js';
import { bitwiseEqual, readWeights, stepNumbers, tmpDir } from './distributed-helpers.js';
import { loadTrain, referenceStart, referenceSteps, replicaHash } from './reference.js';

const LIMIT_TRAIN = 6400;
const STEPS = 25;
const JOB = ['--reduction', 'fast', '--batch-size', '64', '--seed', '42', '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm', '--log-format', 'json'];

async function train(workers: number, extra: string[]): Promise<{ run: CliRun; weights: Float32Array }> {
  const out = tmpDir();
  const run = await runCli(['train', '--workers', String(workers), ...JOB, ...extra, '--out', out], { json: true, timeoutMs: 180_000 });
  expect(run.code, run.stderr).toBe(0);
  return { run, weights: readWeights(out) };
}

describe('--allreduce ring', () => {
  it('N = 2: ring and star train bitwise the same weights; N = 1 ring is the single process', async () => {
    const steps = ['--max-steps', String(STEPS)];
    const ring = await train(2, [...steps, '--allreduce', 'ring']);
    const star = await train(2, [...steps, '--allreduce', 'star']);
    expect(stepNumbers(ring.run.events)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(ring.run.events.find((e) => e.event === 'start')).toMatchObject({ allreduce: 'ring', workers: 2 });
    expect(ring.run.events.at(-1)).toMatchObject({ event: 'done', steps: STEPS, workers: 2 });
    expect(bitwiseEqual(ring.weights, star.weights)).toBe(true);
    // The weights the coordinator saved are the replicas' weights.
    expect(ring.run.events.at(-1)!.weightsHash).toBe(replicaHash(ring.weights));

    const one = await train(1, [...steps, '--allreduce', 'ring']);
    const single = await train(0, steps);
    expect(bitwiseEqual(one.weights, single.weights)).toBe(true);
    // The evaluation, done by the worker here and by the process there, is the same to the bit.
    expect(one.run.events.at(-1)!.testLoss).toBe(single.run.events.at(-1)!.testLoss);
  }, 240_000);

  it('N = 3: bitwise the in-process ring reference (same shards, ringAllreduce order, Adam on each replica)', async () => {
    const ring = await train(3, ['--max-steps', String(STEPS), '--allreduce', 'ring']);
    const ref = await referenceStart(42);
    await referenceSteps(ref, loadTrain(LIMIT_TRAIN), 42, STEPS, 3, { mode: 'ring' });
    expect(bitwiseEqual(ring.weights, ref.params)).toBe(true);
    // Each chunk travels N - 1 times in the reduce-scatter and N - 1 times in the all-gather:
    // a worker sends 2(N-1)/N of the float32 vector per step, on average.
    expect(ring.run.events.at(-1)!.gradientBytesPerStep as number).toBeCloseTo((2 * 2 * 4 * ref.params.length) / 3, 6);
  }, 180_000);

  it('with --serve-data (the training set sent once to each worker), the same weights as reading the data locally', async () => {
    const steps = ['--max-steps', '12', '--allreduce', 'ring'];
    const served = await train(2, [...steps, '--serve-data']);
    const local = await train(2, steps);
    expect(bitwiseEqual(served.weights, local.weights)).toBe(true);
  }, 180_000);

  it('every epoch, every replica reports the same weight hash: that of the weights evaluated and saved', async () => {
    // 640 samples: 10 steps an epoch, 3 epochs.
    const out = tmpDir();
    const run = await runCli(
      ['train', '--workers', '2', '--allreduce', 'ring', '--epochs', '3', '--batch-size', '64', '--seed', '7', '--limit-train', '640', '--limit-test', '100', '--backend', 'wasm', '--log-format', 'json', '--out', out],
      { json: true, timeoutMs: 180_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    const epochs = run.events.filter((e) => e.event === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    const seen = new Set<string>();
    for (const e of epochs) {
      const replicas = e.replicaHashes as Array<{ rank: number; hash: string }>;
      expect(replicas.map((r) => r.rank)).toEqual([0, 1]);
      for (const r of replicas) expect(r.hash).toBe(e.weightsHash);
      seen.add(e.weightsHash as string);
    }
    expect(seen.size).toBe(3); // the weights moved between epochs
    expect(epochs.at(-1)!.weightsHash).toBe(replicaHash(readWeights(out)));
  }, 180_000);
});
