/**
 * `--reduction exact`, the default (these runs give no --reduction; one checks that the explicit flag
 * is the same computation): every batch is computed in fixed micro-shards of 16 samples (the one model
 * definition, gradientSum) whose float32 sums are added exactly and rounded once
 * (packages/core/src/model/reduction.ts). So a run's final weights, and every step's loss, are
 * bitwise those of `ddp train --workers 0`, whatever the number of workers, in
 * star and in ring mode, and when a worker is killed mid-run (and a replacement joins).
 *
 * The job crosses an epoch boundary with a short last batch (1000 = 15 x 64 + 40: a short last
 * micro-shard of 8), and the seed is drawn afresh each run (printed, so a failure can be rerun with
 * DDP_EXACT_SEED=<seed>).
 */
import { randomInt } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { bitwiseEqual, maxAbsDiff, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir, type DdpEventLine } from './distributed-helpers.js';

const STEPS = 24;
const SEED = process.env.DDP_EXACT_SEED ? Number(process.env.DDP_EXACT_SEED) : randomInt(1, 1_000_000);
const JOB = ['--max-steps', String(STEPS), '--batch-size', '64', '--seed', String(SEED), '--limit-train', '1000', '--limit-test', '200',
  '--backend', 'wasm'];
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const losses = (events: DdpEventLine[]) => events.filter((e) => e.event === 'step').map((e) => e.loss as number);

let reference: Float32Array;
let referenceLosses: number[];

/** The kill-and-replace runs are longer (the replacement must join before the end): their own reference, computed once. */
const FAULT_STEPS = 60;
const faultJob = () => JOB.map((a) => (a === String(STEPS) ? String(FAULT_STEPS) : a));
let faultReference: Promise<{ weights: Float32Array; losses: number[] }> | null = null;
function referenceForFaults() {
  faultReference ??= (async () => {
    const out = tmpDir();
    const run = await runCli(['train', '--workers', '0', ...faultJob(), '--log-format', 'json', '--out', out], { json: true, timeoutMs: 180_000 });
    expect(run.code, run.stderr).toBe(0);
    return { weights: readWeights(out), losses: losses(run.events) };
  })();
  return faultReference;
}

beforeAll(async () => {
  console.log(`exact-equivalence: seed ${SEED} (rerun with DDP_EXACT_SEED=${SEED})`);
  const out = tmpDir();
  const run = await runCli(['train', '--workers', '0', ...JOB, '--log-format', 'json', '--out', out], { json: true, timeoutMs: 180_000 });
  expect(run.code, run.stderr).toBe(0);
  expect(stepNumbers(run.events)).toEqual(range(STEPS));
  reference = readWeights(out);
  referenceLosses = losses(run.events);
}, 200_000);

describe.each(['star', 'ring'] as const)(`default reduction (exact), --allreduce %s: bitwise one process (${STEPS} steps of batch 64)`, (mode) => {
  for (const n of [1, 2, 3, 4]) {
    it(`N = ${n} workers: the weights and every step's loss of --workers 0`, async () => {
      const out = tmpDir();
      const run = await runCli(['train', '--workers', String(n), '--allreduce', mode, ...JOB, '--log-format', 'json', '--out', out], { json: true, timeoutMs: 180_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(stepNumbers(run.events)).toEqual(range(STEPS));
      expect(run.events.at(-1)).toMatchObject({ event: 'done', steps: STEPS, workers: n });
      const weights = readWeights(out);
      expect(bitwiseEqual(weights, reference), `max abs diff ${maxAbsDiff(weights, reference)} (seed ${SEED})`).toBe(true);
      expect(losses(run.events)).toEqual(referenceLosses);
    }, 180_000);
  }

  it(`a worker killed mid-run (SIGKILL), then a replacement joining: still bitwise one process (${FAULT_STEPS} steps)`, async () => {
    const ref = await referenceForFaults();
    const out = tmpDir();
    const env = { DDP_TOKEN: `e2e-exact-${mode}` };
    const { coord, url } = await startCoordinator(['--workers', '3', '--allreduce', mode, '--worker-timeout', '60', ...faultJob(), '--out', out], env);
    const workers = [0, 1, 2].map(() => startWorker(url, ['--backend', 'wasm'], env));
    await coord.waitForEvent((e) => e.event === 'step' && (e.step as number) >= 4);
    workers[1]!.proc.kill('SIGKILL');
    await coord.waitForEvent((e) => e.event === 'worker_lost');
    const replacement = startWorker(url, ['--backend', 'wasm'], env);
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    await replacement.exit;
    const events = coord.events();
    expect(stepNumbers(events)).toEqual(range(FAULT_STEPS));
    const lost = events.filter((e) => e.event === 'worker_lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.step as number).toBeLessThan(FAULT_STEPS - 10);
    // The membership did change mid-run: 3 workers, 2, then 3 again with the replacement.
    expect(events.filter((e) => e.event === 'worker_joined')).toHaveLength(4);
    if (mode === 'ring') expect(events.filter((e) => e.event === 'ring_formed').map((e) => e.size)).toEqual([3, 2, 3]);
    const weights = readWeights(out);
    expect(bitwiseEqual(weights, ref.weights), `max abs diff ${maxAbsDiff(weights, ref.weights)} (seed ${SEED})`).toBe(true);
    expect(losses(events)).toEqual(ref.losses);
  }, 240_000);
});

describe('--reduction exact: what it guarantees is tested against something that differs', () => {
  it('--reduction exact given explicitly (flag, or DDP_REDUCTION) is the default: the same bits; --reduction fast is not', async () => {
    const out = tmpDir();
    const r = await runCli(['train', '--workers', '2', '--allreduce', 'ring', ...JOB, '--reduction', 'exact', '--log-format', 'json', '--out', out], { json: true, timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(bitwiseEqual(readWeights(out), reference)).toBe(true);
    const viaEnv = tmpDir();
    const e = await runCli(['train', '--workers', '0', ...JOB, '--log-format', 'json', '--out', viaEnv], { json: true, timeoutMs: 180_000, env: { DDP_REDUCTION: 'exact' } });
    expect(e.code, e.stderr).toBe(0);
    expect(bitwiseEqual(readWeights(viaEnv), reference)).toBe(true);
    const fastOut = tmpDir();
    const f = await runCli(['train', '--workers', '0', ...JOB, '--reduction', 'fast', '--log-format', 'json', '--out', fastOut], { json: true, timeoutMs: 180_000 });
    expect(f.code, f.stderr).toBe(0);
    expect(bitwiseEqual(readWeights(fastOut), reference)).toBe(false);
  }, 400_000);

  it('the weights moved (the comparison is not between two initial states)', async () => {
    const out = tmpDir();
    const r = await runCli(['train', '--workers', '0', ...JOB.map((a) => (a === String(STEPS) ? '1' : a)), '--log-format', 'json', '--out', out], { json: true });
    expect(r.code, r.stderr).toBe(0);
    expect(maxAbsDiff(readWeights(out), reference)).toBeGreaterThan(1e-3);
  });

  it('is refused with fp16 compression (float16 rounds partial sums: the split would show), with one line and exit code 2', async () => {
    for (const mode of ['star', 'ring']) {
      const r = await runCli(['coordinator', 'start', '--workers', '1', '--port', '0', '--reduction', 'exact', '--allreduce', mode, '--compress', 'fp16']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--reduction exact cannot be combined with --compress fp16/);
    }
  });
});
