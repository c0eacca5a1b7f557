/**
 * Losing workers in the middle of a run, in both modes. A worker killed (SIGKILL) or frozen
 * (SIGSTOP, so it stops answering heartbeats): the run goes on with the others, every step is
 * applied exactly once, and the final weights are bitwise those of an in-process reference that
 * reduces as the mode does with the group sizes the run had. A step applied twice, a shard dropped or
 * added twice, a wrong roll-back or re-sharding would all show.
 *
 * Where a size change took effect: in ring mode the `ring_formed` events say it (a new ring, its
 * size and the step it starts at). In star mode a loss can land mid-step (the lost shard is then
 * recomputed by a survivor: that step still has the old number of shards) or between steps, so both
 * references are tried.
 */
import { describe, expect, it } from 'vitest';
import { bitwiseEqual, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir, type DdpEventLine, type Live } from './distributed-helpers.js';
import { cloneRun, loadTrain, referenceOverSegments, referenceStart, referenceSteps, replicaHash, type Mode } from './reference.js';

const LIMIT_TRAIN = 6400;
const SEED = 42;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const atStep = (n: number) => (e: DdpEventLine) => e.event === 'step' && (e.step as number) >= n;
const lostEvents = (c: Live) => c.events().filter((e) => e.event === 'worker_lost');

/** The reference weights for a run of `steps` steps that went from `before` to `after` workers at 1-based step `lostAt`. */
async function expectReference(mode: Mode, coord: Live, weights: Float32Array, steps: number, lostAt: number, before: number, after: number): Promise<void> {
  const train = loadTrain(LIMIT_TRAIN);
  if (mode === 'ring') {
    const segments = coord.events().filter((e) => e.event === 'ring_formed').map((e) => ({ from: (e.step as number) + 1, size: e.size as number }));
    expect(segments[0]).toEqual({ from: 1, size: before });
    const ref = await referenceOverSegments(SEED, train, steps, segments, { mode });
    expect(bitwiseEqual(weights, ref), `weights differ from the ring reference over ${JSON.stringify(segments)}`).toBe(true);
    return;
  }
  const base = await referenceStart(SEED);
  await referenceSteps(base, train, SEED, lostAt - 1, before);
  const lostStepWithBefore = cloneRun(base);
  await referenceSteps(lostStepWithBefore, train, SEED, 1, before);
  await referenceSteps(lostStepWithBefore, train, SEED, steps - lostAt, after);
  if (bitwiseEqual(weights, lostStepWithBefore.params)) return;
  await referenceSteps(base, train, SEED, steps - lostAt + 1, after);
  expect(bitwiseEqual(weights, base.params), `weights match neither star reference (loss at step ${lostAt})`).toBe(true);
}

describe.each(['star', 'ring'] as const)('losing workers in the middle of a run (--allreduce %s)', (mode) => {
  // --reduction fast: the references reduce as the fast path does with the group sizes the run had
  // (with the default, exact, a loss changes nothing at all: exact-equivalence.test.ts).
  const job = (steps: number) => ['--reduction', 'fast', '--allreduce', mode, '--max-steps', String(steps), '--batch-size', '64', '--seed', String(SEED), '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm'];
  const ENV = { DDP_TOKEN: `e2e-faults-${mode}` };

  it('a worker killed with SIGKILL: the run completes, every step once, weights as the reference', async () => {
    const steps = 30;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '3', ...job(steps), '--out', out], ENV);
    const workers = [0, 1, 2].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    workers[1]!.proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    const lost = lostEvents(coord);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ workers: 2, code: 'DDP_CLOSED' });
    const done = coord.events().at(-1)!;
    expect(done).toMatchObject({ event: 'done', steps, workers: 2 });
    expect((await workers[1]!.exit).signal).toBe('SIGKILL');
    expect((await Promise.all([workers[0]!.exit, workers[2]!.exit])).map((e) => e.code)).toEqual([0, 0]);
    const weights = readWeights(out);
    if (mode === 'ring') {
      // The survivors formed a new ring without the lost rank, and the saved weights are the replicas'.
      const survivors = [0, 1, 2].filter((r) => r !== lost[0]!.rank);
      expect(coord.events().filter((e) => e.event === 'ring_formed').at(-1)).toMatchObject({ size: 2, ranks: survivors });
      expect(done.weightsHash).toBe(replicaHash(weights));
      expect((done.replicaHashes as Array<{ rank: number }>).map((r) => r.rank)).toEqual(survivors);
    }
    await expectReference(mode, coord, weights, steps, lost[0]!.step as number, 3, 2);
  }, 180_000);

  it('a worker frozen with SIGSTOP stops answering heartbeats: dropped with DDP_TIMEOUT, the run completes', async () => {
    const steps = 20;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '2', '--heartbeat-timeout', '1.5', ...job(steps), '--out', out], ENV);
    const workers = [0, 1].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    workers[0]!.proc.kill('SIGSTOP');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    const lost = lostEvents(coord);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ code: 'DDP_TIMEOUT' });
    expect((await workers[1]!.exit).code).toBe(0);
    // Thawed, the dropped worker learns why and exits non-zero.
    workers[0]!.proc.kill('SIGCONT');
    expect((await workers[0]!.exit).code).toBe(1);
    expect(workers[0]!.stderr()).toMatch(/DDP_TIMEOUT/);
    await expectReference(mode, coord, readWeights(out), steps, lost[0]!.step as number, 2, 1);
  }, 180_000);

  it('a replacement worker joins mid-run and takes part (ring: it gets the replica from a member)', async () => {
    const steps = mode === 'ring' ? 100 : 20; // ring: one epoch of the 6400 samples
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', mode === 'ring' ? '2' : '1', '--worker-timeout', '60', ...job(steps), '--out', out], ENV);
    const first = (mode === 'ring' ? [0, 1] : [0]).map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    first[0]!.proc.kill('SIGKILL');
    await coord.waitForEvent((e) => e.event === 'worker_lost');
    const replacement = startWorker(url, ['--backend', 'wasm'], ENV);
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    expect((await replacement.exit).code).toBe(0);
    const lost = lostEvents(coord);
    if (mode === 'ring') {
      expect(coord.events().filter((e) => e.event === 'worker_joined')).toHaveLength(3);
      // 2 members, then 1 after the loss, then 2 again with the replacement.
      expect(coord.events().filter((e) => e.event === 'ring_formed').map((e) => e.size)).toEqual([2, 1, 2]);
      await expectReference(mode, coord, readWeights(out), steps, lost[0]!.step as number, 2, 1);
    } else {
      expect(coord.events().filter((e) => e.event === 'worker_joined').map((e) => e.rank)).toEqual([0, 0]);
      await expectReference(mode, coord, readWeights(out), steps, lost[0]!.step as number, 1, 1);
    }
  }, 180_000);

  it('every worker lost: the run fails with DDP_NO_WORKERS (star: after --worker-timeout; ring: at once, the weights are gone)', async () => {
    const { coord, url } = await startCoordinator(['--workers', '1', '--worker-timeout', '1.5', ...job(200)], ENV);
    const only = startWorker(url, ['--backend', 'wasm'], ENV);
    await coord.waitForEvent(atStep(3));
    only.proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code).toBe(1);
    expect(coord.events().at(-1)).toMatchObject({ event: 'error', code: 'DDP_NO_WORKERS' });
  }, 120_000);
});
