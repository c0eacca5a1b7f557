/**
 * Losing workers: a worker killed (SIGKILL) or frozen (SIGSTOP, so it stops answering heartbeats) in
 * the middle of a run: the others recompute its shard, every step is applied exactly once, and the run
 * completes. The final weights must be bitwise those of an in-process reference that uses N shards up
 * to the step of the loss and N-1 after it: a step applied twice, a shard dropped or added twice would
 * all show.
 */
import { describe, expect, it } from 'vitest';
import {
  bitwiseEqual,
  readWeights,
  startCoordinator,
  startWorker,
  stepNumbers,
  tmpDir,
  type DdpEventLine,
  type Live,
} from './distributed-helpers.js';
import { cloneRun, loadTrain, referenceStart, referenceSteps } from './reference-training.js';

const LIMIT_TRAIN = 6400;
const job = (steps: number) => ['--max-steps', String(steps), '--batch-size', '64', '--seed', '42', '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm'];
const ENV = { DDP_TOKEN: 'e2e-faults' };
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * The weights must equal the reference with `before` shards up to the loss and `after` shards from
 * then on. Whether the step named in the worker_lost event still ran with `before` shards (the loss
 * came mid-step: the shard was recomputed) or already with `after` (it came between steps) depends on
 * timing, so both are tried.
 */
async function expectReference(weights: Float32Array, steps: number, lostAt: number, before: number, after: number): Promise<void> {
  const train = loadTrain(LIMIT_TRAIN);
  const base = await referenceStart(42);
  referenceSteps(base, train, 42, lostAt - 1, before);
  const lostStepWithBefore = cloneRun(base);
  referenceSteps(lostStepWithBefore, train, 42, 1, before);
  referenceSteps(lostStepWithBefore, train, 42, steps - lostAt, after);
  if (bitwiseEqual(weights, lostStepWithBefore.params)) return;
  referenceSteps(base, train, 42, steps - lostAt + 1, after);
  expect(bitwiseEqual(weights, base.params), `weights match neither reference (loss at step ${lostAt})`).toBe(true);
}

const lostEvents = (c: Live) => c.events().filter((e) => e.event === 'worker_lost');
const atStep = (n: number) => (e: DdpEventLine) => e.event === 'step' && (e.step as number) >= n;

describe('losing workers in the middle of a run', () => {
  it('a worker killed with SIGKILL: the run completes, every step once, weights as the reference', async () => {
    const steps = 40;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '3', ...job(steps), '--out', out], ENV);
    const workers = [0, 1, 2].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    workers[1].proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    const lost = lostEvents(coord);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ workers: 2 });
    expect(String(lost[0].reason)).toMatch(/^DDP_CLOSED: connection closed \(code 1006\)/);
    expect(coord.events().at(-1)).toMatchObject({ event: 'done', steps, workers: 2 });
    expect((await workers[1].exit).signal).toBe('SIGKILL');
    expect((await Promise.all([workers[0].exit, workers[2].exit])).map((e) => e.code)).toEqual([0, 0]);
    await expectReference(readWeights(out), steps, lost[0].step as number, 3, 2);
  }, 180_000);

  it('a worker frozen with SIGSTOP stops answering heartbeats: dropped with DDP_TIMEOUT, the run completes', async () => {
    const steps = 30;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '2', '--heartbeat-timeout', '1.5', ...job(steps), '--out', out], ENV);
    const workers = [0, 1].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    workers[0].proc.kill('SIGSTOP');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    const lost = lostEvents(coord);
    expect(lost).toHaveLength(1);
    expect(String(lost[0].reason)).toMatch(/^DDP_TIMEOUT: no message for \d+\.\d s \(heartbeat timeout/);
    expect((await workers[1].exit).code).toBe(0);
    // Thawed, the dropped worker learns why and exits non-zero.
    workers[0].proc.kill('SIGCONT');
    expect((await workers[0].exit).code).toBe(1);
    expect(workers[0].stderr()).toMatch(/DDP_TIMEOUT/);
    await expectReference(readWeights(out), steps, lost[0].step as number, 2, 1);
  }, 180_000);

  it('the last worker lost: a new one that joins within --worker-timeout takes over', async () => {
    const steps = 20;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '1', '--worker-timeout', '60', ...job(steps), '--out', out], ENV);
    const first = startWorker(url, ['--backend', 'wasm'], ENV);
    await coord.waitForEvent(atStep(5));
    first.proc.kill('SIGKILL');
    await coord.waitForStderr(/no worker left at step \d+: waiting up to 60 s/);
    const second = startWorker(url, ['--backend', 'wasm'], ENV);
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    expect(coord.events().filter((e) => e.event === 'worker_joined').map((e) => e.rank)).toEqual([0, 0]);
    expect((await second.exit).code).toBe(0);
    const lost = lostEvents(coord);
    await expectReference(readWeights(out), steps, lost[0].step as number, 1, 1);
  }, 180_000);

  it('the last worker lost and none comes back: the coordinator fails after --worker-timeout, saying why', async () => {
    const { coord, url } = await startCoordinator(['--workers', '1', '--worker-timeout', '1.5', ...job(200)], ENV);
    const only = startWorker(url, ['--backend', 'wasm'], ENV);
    await coord.waitForEvent(atStep(3));
    only.proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code).toBe(1);
    expect(coord.stderr()).toMatch(/ddp: no worker left at step \d+ and none joined within 1.5 s \(--worker-timeout\); the run cannot go on/);
  }, 120_000);
});
