/**
 * `ddp train --workers N` starts a coordinator and N workers, labels and forwards their output,
 * returns the coordinator's exit code, and leaves no child process behind: not after a normal run,
 * not after SIGTERM, not even after the launcher itself is SIGKILLed.
 */
import { describe, expect, it } from 'vitest';
import { childPids, eventually, isAlive, startDdp, type Live } from './distributed-helpers.js';

const SMALL = ['--limit-train', '1280', '--limit-test', '100', '--batch-size', '64', '--backend', 'wasm'];

/** Collects the launcher's children (coordinator + workers) while they run. */
function watchChildren(launcher: Live): { pids: Set<number>; stop: () => void } {
  const pids = new Set<number>();
  const timer = setInterval(() => childPids(launcher.pid).forEach((p) => pids.add(p)), 50);
  return { pids, stop: () => clearInterval(timer) };
}

describe('ddp train --workers N (local launcher)', () => {
  it('json: stdout is pure NDJSON from the coordinator, workers go to stderr labelled, no child left', async () => {
    const launcher = startDdp(['train', '--workers', '2', '--max-steps', '8', ...SMALL, '--log-format', 'json']);
    const watch = watchChildren(launcher);
    const { code } = await launcher.exit;
    watch.stop();
    expect(code, launcher.stderr()).toBe(0);
    const events = launcher.events();
    expect(events.filter((e) => e.event === '__not_json__')).toEqual([]);
    expect(events[0]).toMatchObject({ event: 'worker_joined' });
    expect(events.find((e) => e.event === 'start')).toMatchObject({ workers: 2, backend: 'wasm' });
    expect(events.at(-1)).toMatchObject({ event: 'done', steps: 8, workers: 2 });
    const err = launcher.stderr();
    // Worker lines are labelled by the rank each worker got.
    expect(err).toMatch(/^\[rank 0\] worker: connected to ws:\/\/127\.0\.0\.1:\d+ as rank 0 of 2/m);
    expect(err).toMatch(/^\[rank 1\] worker: connected to ws:\/\/127\.0\.0\.1:\d+ as rank 1 of 2/m);
    expect(err).toMatch(/^\[coordinator\] coordinator: listening on/m);
    expect(watch.pids.size).toBe(3);
    expect([...watch.pids].filter(isAlive)).toEqual([]);
  }, 120_000);

  it('text: every line says who wrote it, progress from the first step on, the test accuracy at the end', async () => {
    const launcher = startDdp(['train', '--workers', '1', '--max-steps', '4', ...SMALL]);
    const { code } = await launcher.exit;
    expect(code, launcher.stderr()).toBe(0);
    const lines = launcher.stdout().trim().split('\n');
    for (const line of lines) expect(line).toMatch(/^\[(coordinator|rank 0)\] /);
    // On a pipe the live line is a plain line every few seconds; the first step always gets one.
    expect(launcher.stdout()).toMatch(/^\[coordinator\] epoch 1\/\d+ step 1\/4 loss \d+\.\d{4} \d+ samples\/s 1 worker ETA /m);
    expect(launcher.stdout()).toMatch(/^\[coordinator\] test accuracy: \d+\.\d\d%$/m);
    expect(launcher.stdout()).toMatch(/^\[rank 0\] worker: connected/m);
  }, 120_000);

  it('SIGTERM to the launcher stops every child and exits 143', async () => {
    const launcher = startDdp(['train', '--workers', '2', '--max-steps', '100000', ...SMALL, '--log-format', 'json']);
    const watch = watchChildren(launcher);
    await launcher.waitForEvent((e) => e.event === 'step' && (e.step as number) >= 3);
    launcher.proc.kill('SIGTERM');
    const { code } = await launcher.exit;
    watch.stop();
    expect(code).toBe(143);
    expect(watch.pids.size).toBe(3);
    expect([...watch.pids].filter(isAlive)).toEqual([]);
  }, 120_000);

  it('SIGKILL to the launcher: the children notice the lost IPC channel and exit on their own', async () => {
    const launcher = startDdp(['train', '--workers', '2', '--max-steps', '100000', ...SMALL, '--log-format', 'json']);
    const watch = watchChildren(launcher);
    await launcher.waitForEvent((e) => e.event === 'step' && (e.step as number) >= 3);
    watch.stop();
    const pids = [...watch.pids];
    expect(pids).toHaveLength(3);
    launcher.proc.kill('SIGKILL');
    await launcher.exit;
    expect(await eventually(() => pids.every((p) => !isAlive(p)), 10_000)).toBe(true);
  }, 120_000);

  it('returns the coordinator\'s exit code when it fails (a bad data folder: 2), and leaves no worker behind', async () => {
    const launcher = startDdp(['train', '--workers', '2', '--data-dir', '/nonexistent/ddp', '--max-steps', '2']);
    const watch = watchChildren(launcher);
    const { code } = await launcher.exit;
    watch.stop();
    expect(code).toBe(2);
    expect(launcher.stderr()).toMatch(/^\[coordinator\] ddp: mnist: data folder \/nonexistent\/ddp does not exist/m);
    expect(launcher.stderr()).not.toMatch(/\[worker/);
    expect([...watch.pids].filter(isAlive)).toEqual([]);
  }, 60_000);
});
