/**
 * With `--reduction exact` (per-sample gradient contributions added in float64, so the sum does not
 * depend on how the batch is split), the final weights with N = 1, 2 and 3 workers are within 1e-4
 * (max abs) of the single-process run after 50 steps of batch 64, and in fact bitwise identical. The
 * default float32 reduction is covered, with what it can promise, in distributed-equivalence.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { bitwiseEqual, maxAbsDiff, readWeights, stepNumbers, tmpDir } from './distributed-helpers.js';

const STEPS = 50;
const JOB = ['--max-steps', String(STEPS), '--batch-size', '64', '--seed', '42', '--limit-train', '6400', '--limit-test', '200',
  '--backend', 'wasm', '--reduction', 'exact', '--log-format', 'json'];

const weights = new Map<number, Float32Array>();

beforeAll(async () => {
  for (const n of [0, 1, 2, 3]) {
    const out = tmpDir();
    const run = await runCli(['train', '--workers', String(n), ...JOB, '--out', out], { json: true, timeoutMs: 180_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(stepNumbers(run.events)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(run.events.at(-1)).toMatchObject({ event: 'done', steps: STEPS, workers: n });
    weights.set(n, readWeights(out));
  }
}, 600_000);

describe('--reduction exact: N workers train one process\'s model (50 steps, batch 64)', () => {
  for (const n of [1, 2, 3]) {
    it(`N = ${n}: within 1e-4 of --workers 0, and in fact bitwise equal`, () => {
      const single = weights.get(0)!;
      const distributed = weights.get(n)!;
      expect(maxAbsDiff(distributed, single)).toBeLessThanOrEqual(1e-4);
      expect(bitwiseEqual(distributed, single)).toBe(true);
    });
  }

  it('the weights moved (the comparison is not between two initial states)', () => {
    const out = tmpDir();
    return runCli(['train', '--workers', '0', ...JOB.map((a) => (a === String(STEPS) ? '1' : a)), '--out', out], { json: true }).then((r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(maxAbsDiff(readWeights(out), weights.get(0)!)).toBeGreaterThan(1e-3);
    });
  });

  it('is refused with ring allreduce or fp16 compression, with one line and exit code 2', async () => {
    for (const extra of [['--allreduce', 'ring'], ['--compress', 'fp16']]) {
      const r = await runCli(['coordinator', 'start', '--workers', '1', '--port', '0', '--reduction', 'exact', ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--reduction exact/);
    }
  });
});
