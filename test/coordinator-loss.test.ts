/**
 * Workers outlive their coordinator. A coordinator killed with SIGKILL mid-run: its worker waits
 * (--reconnect-timeout) and rejoins a coordinator started on the same port, if that one serves the
 * same job (same --job-id and job flags); another job refuses it at the hello, without giving it a
 * seat, and it leaves with DDP_JOB_CHANGED (exit 3); no coordinator in time, exit 1. Real processes (the built CLI), small data, a few steps.
 *
 * (The restarted coordinator here trains the job from its start: continuing from a checkpoint is the
 * coordinator's business, not the worker's.)
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { startCoordinator, startDdp, startWorker, type DdpEventLine, type Live } from './distributed-helpers.js';

const STEPS = 24;
const ENV = { DDP_TOKEN: 'e2e-coordinator-loss' };
const job = (mode: 'ring' | 'star', over: string[] = []) => [
  '--allreduce', mode, '--max-steps', String(STEPS), '--batch-size', '32', '--seed', '7', '--limit-train', '640', '--limit-test', '64', '--no-eval', '--backend', 'wasm', ...over,
];
const atStep = (n: number) => (e: DdpEventLine) => e.event === 'step' && (e.step as number) >= n;

/** A coordinator of job `jobId` with one worker, SIGKILLed at step 3; resolves once the worker said it lost it. */
async function coordinatorKilledMidRun(jobId: string, coordArgs: string[], workerArgs: string[] = []): Promise<{ worker: Live; port: number; killedAt: number }> {
  const { coord, url, port } = await startCoordinator(['--workers', '1', '--job-id', jobId, ...coordArgs], ENV);
  const worker = startWorker(url, ['--backend', 'wasm', '--log-format', 'json', ...workerArgs], ENV);
  await coord.waitForEvent(atStep(3));
  coord.proc.kill('SIGKILL');
  const killedAt = performance.now();
  expect((await coord.exit).signal).toBe('SIGKILL');
  await worker.waitForStderr(/worker: lost the coordinator \(.*\); reconnecting for up to \d+ s \(--reconnect-timeout\)/, 20_000);
  return { worker, port, killedAt };
}

/** `ddp coordinator start` on a given port (the one the killed coordinator had). */
const coordinatorOn = (port: number, args: string[]) => startDdp(['coordinator', 'start', '--port', String(port), '--log-format', 'json', '--workers', '1', ...args], ENV);

describe('a worker whose coordinator is killed mid-run', () => {
  it.each(['ring', 'star'] as const)('rejoins a coordinator of the same job restarted on the same port, and finishes its job (--allreduce %s)', async (mode) => {
    const { worker, port } = await coordinatorKilledMidRun('loss-e2e-1', job(mode));
    const again = coordinatorOn(port, ['--job-id', 'loss-e2e-1', ...job(mode)]);
    const c = await again.exit;
    expect(c.code, again.stderr()).toBe(0);
    expect(again.events().filter((e) => e.event === 'worker_joined')).toMatchObject([{ rank: 0 }]);
    expect(again.events().at(-1)).toMatchObject({ event: 'done', steps: STEPS, workers: 1 });
    const w = await worker.exit;
    expect(w.code, worker.stderr()).toBe(0);
    expect(worker.stderr()).toMatch(/worker: rejoined job loss-e2e-1 at ws:\/\/127\.0\.0\.1:\d+ as rank 0 of 1/);
    expect(worker.stdout()).toBe(''); // json mode: notes go to stderr, and a worker has no events
  }, 90_000);

  it.each([
    ['another --job-id', ['--job-id', 'loss-e2e-other', ...job('ring')]],
    ['the same --job-id with another --seed', ['--job-id', 'loss-e2e-2', ...job('ring', ['--seed', '8'])]],
  ])('leaves with exit 3 (DDP_JOB_CHANGED) when the coordinator on that port has %s', async (_what, args) => {
    const { worker, port } = await coordinatorKilledMidRun('loss-e2e-2', job('ring'));
    const other = coordinatorOn(port, ['--join-timeout', '30', ...args]);
    const w = await worker.exit;
    expect(w.code, worker.stderr()).toBe(3);
    expect(worker.stderr()).toMatch(
      /^ddp worker: refused by the coordinator: DDP_JOB_CHANGED: this coordinator serves another job \(job \S+, fingerprint [^)]+\) than the worker's \(job loss-e2e-2, fingerprint [^)]+\)/m,
    );
    // The other job's coordinator refused it at the hello: it never took a seat there.
    await other.waitForStderr(/refused a connection from \S+: DDP_JOB_CHANGED/, 10_000);
    expect(other.events().filter((e) => e.event === 'worker_joined' || e.event === 'start')).toEqual([]);
    other.proc.kill('SIGKILL');
  }, 90_000);

  it('with --reconnect-timeout 2 and no coordinator coming back: exit 1 within a few seconds, saying so', async () => {
    const { worker, killedAt } = await coordinatorKilledMidRun('loss-e2e-3', job('ring'), ['--reconnect-timeout', '2']);
    const w = await worker.exit;
    const seconds = (performance.now() - killedAt) / 1000;
    expect(w.code, worker.stderr()).toBe(1);
    expect(seconds).toBeLessThan(6);
    expect(worker.stderr()).toMatch(/reconnecting for up to 2 s \(--reconnect-timeout\)/);
    expect(worker.stderr()).toMatch(/^ddp worker: lost the coordinator and no coordinator of job loss-e2e-3 took this worker back within 2 s \(--reconnect-timeout\); last error: ECONNREFUSED at ws:\/\/127\.0\.0\.1:\d+$/m);
  }, 60_000);
});

describe('the flags', () => {
  it('bad flags: a --job-id with a space or over 64 characters, a negative --reconnect-timeout (exit 2, one line)', async () => {
    for (const id of ['has space', 'x'.repeat(65)]) {
      const r = await runCli(['coordinator', 'start', '--workers', '1', '--job-id', id], { timeoutMs: 30_000 });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^ddp: --job-id expects 1 to 64 letters, digits or punctuation \(no spaces\)/);
    }
    const w = await runCli(['worker', '--connect', 'ws://127.0.0.1:1', '--reconnect-timeout', '-1'], { timeoutMs: 30_000 });
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/--reconnect-timeout must be at least 0/);
  });
});
