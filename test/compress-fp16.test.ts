/**
 * --compress fp16. Gradients travel as float16: in star mode the worker's gradient
 * message carries the half bits and the coordinator widens and adds them in float32, in rank order;
 * in ring mode every chunk on the peer links is half. The bytes on the wire halve, and training
 * still works. fp16 cannot be exact: --compress fp16 without --reduction selects --reduction fast
 * (these runs give none), and an explicit --reduction exact with it is a usage error. The float32
 * runs it is compared with are --reduction fast too (the same float32 sums, only the wire differs).
 *
 * The accuracy claim (after 1 epoch, within 0.2 points of float32) takes 12 one-epoch runs (about
 * 10 minutes on the 2-core build machine), so it runs only with DDP_E2E_FULL=1:
 *   cd test && DDP_E2E_FULL=1 npx vitest run compress-fp16 -t 'one epoch'
 */
import { describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './cli-helpers.js';
import { bitwiseEqual, readWeights, tmpDir } from './distributed-helpers.js';
import { loadTrain, referenceStart, referenceSteps } from './reference.js';

const LIMIT_TRAIN = 6400;
const STEPS = 30;
const JOB = ['--max-steps', String(STEPS), '--batch-size', '64', '--seed', '42', '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm', '--log-format', 'json'];

async function train(args: string[]): Promise<{ run: CliRun; weights: Float32Array; bytes: number; losses: number[] }> {
  const out = tmpDir();
  const run = await runCli(['train', '--workers', '2', ...JOB, ...args, '--out', out], { json: true, timeoutMs: 180_000 });
  expect(run.code, run.stderr).toBe(0);
  const done = run.events.at(-1)!;
  expect(done).toMatchObject({ event: 'done', steps: STEPS });
  return { run, weights: readWeights(out), bytes: done.gradientBytesPerStep as number, losses: run.events.filter((e) => e.event === 'step').map((e) => e.loss as number) };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('--compress fp16', () => {
  it.each(['star', 'ring'])('%s: the gradient bytes per step halve, and the loss falls as with float32', async (allreduce) => {
    const f32 = await train(['--allreduce', allreduce, '--reduction', 'fast']);
    const f16 = await train(['--allreduce', allreduce, '--compress', 'fp16']);
    const ratio = f16.bytes / f32.bytes;
    if (allreduce === 'ring') {
      expect(ratio).toBe(0.5); // payload bytes only: 2 per value instead of 4
    } else {
      // The whole gradient frame: the same small msgpack header around 2 instead of 4 bytes a value.
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(0.501);
    }
    expect(bitwiseEqual(f16.weights, f32.weights)).toBe(false); // the gradients were rounded
    const first = mean(f16.losses.slice(0, 5));
    const last = mean(f16.losses.slice(-5));
    expect(last).toBeLessThan(0.6 * first);
    expect(Math.abs(last - mean(f32.losses.slice(-5)))).toBeLessThan(0.1 * mean(f32.losses.slice(-5)));
  }, 240_000);

  it('ring: bitwise the in-process reference running ringAllreduce with fp16 (rounded at each hop, summed in float32)', async () => {
    const f16 = await train(['--allreduce', 'ring', '--compress', 'fp16']);
    const ref = await referenceStart(42);
    await referenceSteps(ref, loadTrain(LIMIT_TRAIN), 42, STEPS, 2, { mode: 'ring', compress: 'fp16' });
    expect(bitwiseEqual(f16.weights, ref.params)).toBe(true);
  }, 180_000);

  it('without --reduction it selects fast; with --reduction exact (flag or DDP_REDUCTION) it is refused with one line and exit code 2', async () => {
    // Given explicitly, fast is the same run as left out.
    const quick = ['--max-steps', '3', '--batch-size', '64', '--seed', '5', '--limit-train', '640', '--limit-test', '100', '--backend', 'wasm', '--log-format', 'json', '--allreduce', 'star', '--compress', 'fp16'];
    const runs = [];
    for (const extra of [[], ['--reduction', 'fast']]) {
      const out = tmpDir();
      const run = await runCli(['train', '--workers', '2', ...quick, ...extra, '--out', out], { json: true, timeoutMs: 120_000 });
      expect(run.code, run.stderr).toBe(0);
      runs.push(readWeights(out));
    }
    expect(bitwiseEqual(runs[0]!, runs[1]!)).toBe(true);
    const refused = [
      await runCli(['train', '--workers', '2', ...quick, '--reduction', 'exact']),
      await runCli(['coordinator', 'start', '--workers', '1', '--port', '0', '--compress', 'fp16'], { env: { DDP_REDUCTION: 'exact' } }),
      await runCli(['deploy', 'k8s', '--workers', '2', '--image', 'ddp:1', '--compress', 'fp16', '--reduction', 'exact']),
    ];
    for (const r of refused) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--reduction exact cannot be combined with --compress fp16/);
    }
  }, 240_000);
});

/**
 * The accuracy claim is about the method, so it is tested as a mean over four seeds fixed here
 * (42, 1, 2, 3), not on one seed: after 938 steps any change in rounding sends training down another
 * trajectory, and float32 alone moves the 1-epoch accuracy by as much as the claim allows. Measured on
 * the build machine, seed 42, float32 only: one process 98.52 %, 2 workers 98.68 %, 3 workers 98.56 %.
 * About 12 runs of 40-60 s.
 */
describe.skipIf(!process.env.DDP_E2E_FULL)('one epoch on MNIST, 2 workers: fp16 gradients vs float32', () => {
  it('mean test accuracy over 4 seeds within 0.2 points of float32 (ring and star)', async () => {
    const seeds = [42, 1, 2, 3];
    const configs = {
      f32: ['--allreduce', 'ring', '--reduction', 'fast'],
      'fp16 ring': ['--allreduce', 'ring', '--compress', 'fp16'],
      'fp16 star': ['--allreduce', 'star', '--compress', 'fp16'],
    } as const;
    const acc: Record<string, number[]> = { f32: [], 'fp16 ring': [], 'fp16 star': [] };
    for (const seed of seeds) {
      for (const [name, extra] of Object.entries(configs)) {
        const args = ['train', '--workers', '2', '--epochs', '1', '--batch-size', '64', '--seed', String(seed), '--backend', 'wasm', '--log-format', 'json', ...extra];
        const run = await runCli(args, { json: true, timeoutMs: 900_000 });
        expect(run.code, run.stderr).toBe(0);
        expect(run.events.at(-1)).toMatchObject({ event: 'done', steps: 938 });
        acc[name]!.push(run.events.at(-1)!.testAccuracy as number);
      }
    }
    for (const [name, a] of Object.entries(acc)) console.log(`1-epoch test accuracy, ${name}, seeds ${seeds.join(', ')}: ${a.map((x) => (x * 100).toFixed(2)).join(', ')} (mean ${(mean(a) * 100).toFixed(3)})`);
    expect(Math.min(...acc.f32)).toBeGreaterThan(0.97);
    expect(Math.abs(mean(acc['fp16 ring']!) - mean(acc.f32))).toBeLessThanOrEqual(0.002);
    expect(Math.abs(mean(acc['fp16 star']!) - mean(acc.f32))).toBeLessThanOrEqual(0.002);
  }, 3_600_000);
});
