/**
 * A worker lost in ring mode: the ring is re-formed without it (new addresses), the survivors roll
 * back whatever part of the step they applied, and the step is redone over the new ring: applied
 * exactly once. The final weights must be bitwise those of an in-process reference that runs the real
 * ringAllreduce with 3 members up to the step of the loss and 2 from it on; a step applied twice or
 * dropped, a wrong roll-back or a wrong re-sharding would all show.
 */
import { describe, expect, it } from 'vitest';
import { bitwiseEqual, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir, type DdpEventLine } from './distributed-helpers.js';
import { loadTrain, referenceStart } from './reference-training.js';
import { replicaHash, ringReferenceSteps } from './ring-reference.js';

const LIMIT_TRAIN = 6400;
const job = (steps: number) => ['--allreduce', 'ring', '--max-steps', String(steps), '--batch-size', '64', '--seed', '42', '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm'];
const ENV = { DDP_TOKEN: 'e2e-ring-faults' };
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const atStep = (n: number) => (e: DdpEventLine) => e.event === 'step' && (e.step as number) >= n;

describe('losing a worker in ring mode', () => {
  it('SIGKILL of one of 3 workers mid-run: ring re-formed, step redone once, weights as the reference', async () => {
    const steps = 30;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '3', ...job(steps), '--out', out], ENV);
    const workers = [0, 1, 2].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(6));
    workers[1].proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    const lost = coord.events().filter((e) => e.event === 'worker_lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ workers: 2 });
    // Workers take ranks in the order they connect: the killed process is whichever rank was lost.
    const survivors = [0, 1, 2].filter((r) => r !== lost[0].rank);
    expect(coord.stderr()).toMatch(new RegExp(`ring 1 formed for step ${lost[0].step}: ranks ${survivors.join(', ')}`));
    const done = coord.events().at(-1)!;
    expect(done).toMatchObject({ event: 'done', steps, workers: 2 });
    expect((done.replicaHashes as Array<{ rank: number }>).map((r) => r.rank)).toEqual(survivors);
    expect((await Promise.all([workers[0].exit, workers[2].exit])).map((e) => e.code)).toEqual([0, 0]);

    const weights = readWeights(out);
    expect(done.weightsHash).toBe(replicaHash(weights));
    // Steps before the one named in worker_lost ran on 3 members; that step and the rest on 2.
    const firstOnTwo = lost[0].step as number;
    const train = loadTrain(LIMIT_TRAIN);
    const ref = await referenceStart(42);
    await ringReferenceSteps(ref, train, 42, firstOnTwo - 1, 3);
    await ringReferenceSteps(ref, train, 42, steps - firstOnTwo + 1, 2);
    expect(bitwiseEqual(weights, ref.params), `weights differ from the reference (3 members for steps 1..${firstOnTwo - 1}, 2 after)`).toBe(true);
  }, 180_000);

  it('a worker frozen with SIGSTOP: dropped at the heartbeat timeout, the survivors abandon the stuck allreduce, the run completes', async () => {
    const steps = 20;
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '2', '--heartbeat-timeout', '1.5', ...job(steps), '--out', out], ENV);
    const workers = [0, 1].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    workers[0].proc.kill('SIGSTOP');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    const lost = coord.events().filter((e) => e.event === 'worker_lost');
    expect(lost).toHaveLength(1);
    expect(String(lost[0].reason)).toMatch(/^DDP_TIMEOUT/);
    workers[0].proc.kill('SIGCONT');
    expect((await workers[1].exit).code).toBe(0);
    const firstOnOne = lost[0].step as number;
    const ref = await referenceStart(42);
    const train = loadTrain(LIMIT_TRAIN);
    await ringReferenceSteps(ref, train, 42, firstOnOne - 1, 2);
    await ringReferenceSteps(ref, train, 42, steps - firstOnOne + 1, 1);
    expect(bitwiseEqual(readWeights(out), ref.params)).toBe(true);
  }, 180_000);

  it('a replacement worker gets the replica (weights and Adam state) from a member and joins the ring', async () => {
    const steps = 100; // one epoch of the 6400 samples (the reference stays in epoch 0)
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '2', ...job(steps), '--out', out], ENV);
    const workers = [0, 1].map(() => startWorker(url, ['--backend', 'wasm'], ENV));
    await coord.waitForEvent(atStep(5));
    workers[0].proc.kill('SIGKILL');
    await coord.waitForEvent((e) => e.event === 'worker_lost');
    const replacement = startWorker(url, ['--backend', 'wasm'], ENV);
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    expect(coord.events().filter((e) => e.event === 'worker_joined')).toHaveLength(3);
    expect(coord.stderr()).toMatch(/rank\(s\) \d got the replica after step \d+ and join the ring/);
    const done = coord.events().at(-1)!;
    expect(done).toMatchObject({ event: 'done', steps, workers: 2 });
    expect((await replacement.exit).code).toBe(0);
    // The ring's size over the run, from the coordinator's notes: 2 members, then 1, then 2 again.
    const formed = [...coord.stderr().matchAll(/ring \d+ formed for step (\d+): ranks ([\d, ]+)/g)].map((m) => ({ from: Number(m[1]), size: m[2].split(',').length }));
    expect(formed.map((f) => f.size)).toEqual([1, 2]);
    const ref = await referenceStart(42);
    const train = loadTrain(LIMIT_TRAIN);
    let size = 2;
    let at = 1;
    for (const f of [...formed, { from: steps + 1, size: 0 }]) {
      await ringReferenceSteps(ref, train, 42, f.from - at, size);
      at = f.from;
      size = f.size;
    }
    expect(bitwiseEqual(readWeights(out), ref.params)).toBe(true);
  }, 180_000);

  it('every worker lost after the first step: the coordinator fails at once, saying the weights are gone', async () => {
    const { coord, url } = await startCoordinator(['--workers', '1', ...job(200)], ENV);
    const only = startWorker(url, ['--backend', 'wasm'], ENV);
    await coord.waitForEvent(atStep(3));
    only.proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code).toBe(1);
    expect(coord.stderr()).toMatch(/every worker holding the weights is gone \(after step \d+\): in ring mode the weights live on the workers/);
  }, 120_000);
});
