/**
 * Elastic membership with real processes: workers join at step boundaries and leave at any time,
 * --min-workers pauses the run (and says how many are missing), --max-workers refuses the extra
 * ones with DDP_FULL. The global batch stays fixed, so the math does not change: with the default
 * reduction (exact; star here) the weights are one process's bits, whatever joined or left; with
 * --reduction fast (ring here) they are those of a reference that reduces with the ring sizes the run
 * had (the ring_formed events say them).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { bitwiseEqual, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir, type DdpEventLine, type Live } from './distributed-helpers.js';
import { loadTrain, referenceOverSegments } from './reference.js';

const SEED = 42;
const LIMIT_TRAIN = 6400;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const atStep = (n: number) => (e: DdpEventLine) => e.event === 'step' && (e.step as number) >= n;
const job = (steps: number) => ['--max-steps', String(steps), '--batch-size', '64', '--seed', String(SEED), '--limit-train', String(LIMIT_TRAIN), '--limit-test', '200', '--backend', 'wasm'];
const WORKER = ['--backend', 'wasm'];

/** Waits for the coordinator's `membership` event with `n` workers after `from` such events. */
const membershipOf = (coord: Live, n: number, from = 0) => coord.waitForEvent((e) => e.event === 'membership' && e.workers === n && coord.events().filter((x) => x.event === 'membership').indexOf(e) >= from);

describe('elastic membership', () => {
  it('ring --reduction fast: a join, a refused extra worker, two losses, a pause below --min-workers and a new worker: bitwise the fast reference over the ring sizes', async () => {
    // Far more steps than the last kill's step 30: on a loaded machine the step events reach the test
    // late, and at 60 steps a kill once landed after the training (during the evaluation).
    const steps = 150;
    const out = tmpDir();
    const ENV = { DDP_TOKEN: 'e2e-elastic-ring' };
    const { coord, url } = await startCoordinator(['--workers', '2', '--min-workers', '2', '--max-workers', '3', '--worker-timeout', '60', ...job(steps), '--reduction', 'fast', '--out', out], ENV);
    const workers = [startWorker(url, WORKER, ENV), startWorker(url, WORKER, ENV)];
    await coord.waitForEvent(atStep(5));
    workers.push(startWorker(url, WORKER, ENV));
    await coord.waitForEvent((e) => e.event === 'ring_formed' && e.size === 3);
    // A fourth is one more than --max-workers: refused, and it says why.
    const extra = startWorker(url, WORKER, ENV);
    expect((await extra.exit).code).toBe(3);
    expect(extra.stderr()).toMatch(/DDP_FULL/);

    await coord.waitForEvent(atStep(20));
    // Each loss is waited for by its own new ring (a ring_formed after the kill, not an earlier one of
    // the same size), and the second kill comes a few steps into that ring, so the two are two events.
    const ringAfter = (from: number, size: number) => coord.waitForEvent((e) => e.event === 'ring_formed' && e.size === size && coord.events().indexOf(e) >= from);
    const mark = coord.events().length;
    workers[0]!.proc.kill('SIGKILL');
    const second = await ringAfter(mark, 2);
    await coord.waitForEvent(atStep((second.step as number) + 5));
    workers[1]!.proc.kill('SIGKILL');
    // One left, fewer than --min-workers 2: the run pauses until one more joins.
    const paused = await coord.waitForEvent((e) => e.event === 'paused');
    expect(paused).toMatchObject({ workers: 1, minWorkers: 2 });
    await coord.waitForStderr(/paused at step \d+: 1 of at least 2 worker\(s\) \(--min-workers\), 1 missing/);
    const stepsBefore = stepNumbers(coord.events()).length;
    await new Promise((r) => setTimeout(r, 500));
    expect(stepNumbers(coord.events()).length).toBe(stepsBefore); // no step while paused
    workers.push(startWorker(url, WORKER, ENV));

    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    expect(coord.events().filter((e) => e.event === 'membership').map((e) => e.workers)).toEqual([1, 2, 3, 2, 1, 2]);
    const segments = coord.events().filter((e) => e.event === 'ring_formed').map((e) => ({ from: (e.step as number) + 1, size: e.size as number }));
    expect(segments.map((s) => s.size)).toEqual([2, 3, 2, 2]);
    const ref = await referenceOverSegments(SEED, loadTrain(LIMIT_TRAIN), steps, segments, { mode: 'ring' });
    expect(bitwiseEqual(readWeights(out), ref), `weights differ from the ring reference over ${JSON.stringify(segments)}`).toBe(true);
    expect((await Promise.all([workers[2]!.exit, workers[3]!.exit])).map((e) => e.code)).toEqual([0, 0]);
  }, 240_000);

  it('star, the default reduction (exact): joins and losses leave the weights bitwise those of one process', async () => {
    const steps = 30;
    const out = tmpDir();
    const ENV = { DDP_TOKEN: 'e2e-elastic-star' };
    const exact = job(steps); // no --reduction: the default
    const { coord, url } = await startCoordinator(['--workers', '1', '--max-workers', '3', '--allreduce', 'star', '--worker-timeout', '60', ...exact, '--out', out], ENV);
    const workers = [startWorker(url, WORKER, ENV)];
    await coord.waitForEvent(atStep(4));
    workers.push(startWorker(url, WORKER, ENV), startWorker(url, WORKER, ENV));
    await membershipOf(coord, 3);
    await coord.waitForEvent(atStep(14));
    workers[0]!.proc.kill('SIGKILL');
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(range(steps));
    expect(coord.events().filter((e) => e.event === 'membership').map((e) => e.workers)).toEqual([1, 2, 3, 2]);

    const one = tmpDir();
    const single = await runCli(['train', '--workers', '0', '--allreduce', 'star', ...exact, '--log-format', 'json', '--out', one], { json: true });
    expect(single.code, single.stderr).toBe(0);
    expect(bitwiseEqual(readWeights(out), readWeights(one))).toBe(true);
  }, 240_000);
});
