/**
 * Checkpoints and --resume with real processes. A run killed with SIGKILL (no chance to clean up)
 * and resumed from its newest complete checkpoint ends with exactly the bits of the run that never
 * stopped; a checkpoint of another job is refused naming the fields that differ; a corrupt newest
 * checkpoint is skipped with a warning that names it and the one before it is used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { bitwiseEqual, childPids, readWeights, startCoordinator, startDdp, startWorker, stepNumbers, tmpDir, type DdpEventLine, type Live } from './distributed-helpers.js';

const STEPS = 30;
const JOB = ['--max-steps', String(STEPS), '--batch-size', '64', '--limit-train', '1280', '--limit-test', '200', '--backend', 'wasm', '--log-format', 'json'];
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const atStep = (n: number) => (e: DdpEventLine) => e.event === 'step' && (e.step as number) >= n;

/** The weights of the run that never stopped (one process; computed once per file). */
let reference: Promise<Float32Array> | null = null;
function referenceWeights(): Promise<Float32Array> {
  reference ??= (async () => {
    const out = tmpDir();
    const run = await runCli(['train', '--workers', '0', ...JOB, '--out', out], { json: true });
    if (run.code !== 0) throw new Error(run.stderr);
    return readWeights(out);
  })();
  return reference;
}

describe('ddp train --workers 0: checkpoints and --resume', () => {
  it('a run SIGKILLed mid-way and resumed ends with the bits of the run that never stopped', async () => {
    const ck = tmpDir();
    const out = tmpDir();
    const args = ['train', '--workers', '0', ...JOB, '--out', out, '--checkpoint-dir', ck, '--checkpoint-every', '4'];
    const first = startDdp(args);
    // Kill after a checkpoint was written and a few more steps went by (they are redone after the resume).
    const written = (await first.waitForEvent((e) => e.event === 'checkpoint' && (e.step as number) >= 8)) as DdpEventLine;
    expect(written).toMatchObject({ path: path.join(ck, 'step-000000008') });
    expect(written.bytes as number).toBeGreaterThan(1_000_000);
    expect(written.seconds as number).toBeGreaterThan(0);
    await first.waitForEvent(atStep(10));
    first.proc.kill('SIGKILL');
    await first.exit;

    const second = await runCli([...args, '--resume'], { json: true });
    expect(second.code, second.stderr).toBe(0);
    const resumed = second.events.find((e) => e.event === 'resumed')!;
    const at = resumed.step as number;
    expect(at % 4).toBe(0);
    expect(at).toBeGreaterThanOrEqual(8);
    expect(resumed.path).toBe(path.join(ck, `step-${String(at).padStart(9, '0')}`));
    // Only the steps after the checkpoint run again, each once.
    expect(stepNumbers(second.events as DdpEventLine[])).toEqual(range(at + 1, STEPS));
    expect(bitwiseEqual(readWeights(out), await referenceWeights())).toBe(true);
    // The newest checkpoint is the final state, and `ddp evaluate` reads it as a model.
    const newest = path.join(ck, `step-${String(STEPS).padStart(9, '0')}`);
    expect(bitwiseEqual(readWeights(newest), await referenceWeights())).toBe(true);
    const ev = await runCli(['evaluate', '--model', newest, '--limit-test', '200', '--log-format', 'json'], { json: true });
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.events.find((e) => e.event === 'evaluate')!.testLoss).toBe(second.events.at(-1)!.testLoss);
    // --keep-checkpoints 3 (the default): older ones are gone.
    expect(fs.readdirSync(ck).filter((n) => n.startsWith('step-')).length).toBe(3);
  }, 120_000);

  it('a checkpoint of another job is refused, naming the fields that differ; a corrupt newest one is skipped with a warning', async () => {
    const ck = tmpDir();
    const args = ['train', '--workers', '0', ...JOB, '--max-steps', '12', '--checkpoint-dir', ck, '--checkpoint-every', '4'];
    const made = await runCli(args, { json: true });
    expect(made.code, made.stderr).toBe(0);

    const other = await runCli([...args, '--resume', '--lr', '0.002', '--batch-size', '32'], { json: true });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/DDP_CHECKPOINT: .*step-000000012 is a checkpoint of another job: /);
    expect(other.stderr).toContain('batch-size: 64 in the checkpoint, 32 now');
    expect(other.stderr).toMatch(/lr: 0\.001 in the checkpoint, 0\.002 now/);
    expect(other.events.find((e) => e.event === 'error')).toMatchObject({ code: 'DDP_CHECKPOINT' });

    // Flip one byte of the newest checkpoint's weights: it is skipped, the one before it is used.
    const newest = path.join(ck, 'step-000000012', 'weights.bin');
    const bytes = fs.readFileSync(newest);
    bytes[100] ^= 0xff;
    fs.writeFileSync(newest, bytes);
    // And a checkpoint whose write never finished (no manifest), newer than all: skipped too.
    fs.mkdirSync(path.join(ck, 'step-000000013'));
    fs.writeFileSync(path.join(ck, 'step-000000013', 'weights.bin'), '');
    const out = tmpDir();
    const resumed = await runCli([...args, '--max-steps', String(STEPS), '--resume', '--out', out], { json: true });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/warning: skipping checkpoint .*step-000000013: .*manifest/);
    expect(resumed.stderr).toMatch(/warning: skipping checkpoint .*step-000000012: weights\.bin: /);
    expect(resumed.events.find((e) => e.event === 'resumed')).toMatchObject({ step: 8 });
    expect(bitwiseEqual(readWeights(out), await referenceWeights())).toBe(true);
  }, 120_000);

  it('--resume with nothing to resume from starts at step 0; without a checkpoint folder it is a usage error', async () => {
    const ck = tmpDir();
    const fresh = await runCli(['train', '--workers', '0', ...JOB, '--max-steps', '2', '--checkpoint-dir', ck, '--resume'], { json: true });
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toContain(`--resume: no complete checkpoint in ${ck}: starting from step 0`);
    expect(stepNumbers(fresh.events as DdpEventLine[])).toEqual([1, 2]);
    const bad = await runCli(['train', '--workers', '0', ...JOB, '--resume'], { json: true });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--resume needs the checkpoint folder');
  }, 60_000);
});

// ---- the coordinator killed mid-run -----------------------------------------------------------

const D_STEPS = 40;
/** 20 steps an epoch: the run crosses an evaluation and the epoch-end checkpoint. */
const distJob = (mode: string) => ['--allreduce', mode, '--max-steps', String(D_STEPS), '--epochs', '2', '--batch-size', '64', '--limit-train', '1280', '--limit-test', '200', '--backend', 'wasm', '--seed', '7'];
const WORKER = ['--backend', 'wasm', '--reconnect-timeout', '60'];

/** The weights and events of the distributed run that never stopped, 2 workers, per mode (computed once). */
const distReference = new Map<string, Promise<{ weights: Float32Array; events: DdpEventLine[] }>>();
function distReferenceRun(mode: string): Promise<{ weights: Float32Array; events: DdpEventLine[] }> {
  if (!distReference.has(mode)) {
    distReference.set(mode, (async () => {
      const out = tmpDir();
      const env = { DDP_TOKEN: `e2e-resume-ref-${mode}` };
      const { coord, url } = await startCoordinator(['--workers', '2', ...distJob(mode), '--out', out], env);
      const workers = [startWorker(url, WORKER, env), startWorker(url, WORKER, env)];
      const c = await coord.exit;
      if (c.code !== 0) throw new Error(coord.stderr());
      await Promise.all(workers.map((w) => w.exit));
      return { weights: readWeights(out), events: coord.events() };
    })());
  }
  return distReference.get(mode)!;
}

const lastCheckpointStep = (c: Live) => Math.max(0, ...c.events().filter((e) => e.event === 'checkpoint').map((e) => e.step as number));

describe.each(['ring', 'star'] as const)('coordinator start --allreduce %s: the coordinator killed mid-run', (mode) => {
  it('SIGKILLed twice and restarted with --resume on its port: the workers rejoin, no step is lost or applied twice, the weights are those of the run that never stopped', async () => {
    const reference = distReferenceRun(mode);
    const ck = tmpDir();
    const out = tmpDir();
    const env = { DDP_TOKEN: `e2e-resume-${mode}` };
    const args = ['--workers', '2', ...distJob(mode), '--checkpoint-dir', ck, '--checkpoint-every', '5', '--job-id', `resume-e2e-${mode}`, '--out', out];
    let { coord, url, port } = await startCoordinator(args, env);
    const workers = [startWorker(url, WORKER, env), startWorker(url, WORKER, env)];
    for (const killAt of [12, 27]) {
      await coord.waitForEvent(atStep(killAt));
      const saved = lastCheckpointStep(coord);
      coord.proc.kill('SIGKILL');
      await coord.exit;
      const killed = performance.now();
      coord = startDdp(['coordinator', 'start', '--port', String(port), '--log-format', 'json', ...args, '--resume'], env);
      const resumed = await coord.waitForEvent((e) => e.event === 'resumed');
      // The newest checkpoint the killed coordinator finished (its event may not have been printed yet).
      expect(resumed.step as number).toBeGreaterThanOrEqual(saved);
      expect((resumed.step as number) % 5 === 0 || (resumed.step as number) % 20 === 0).toBe(true);
      const first = await coord.waitForEvent((e) => e.event === 'step');
      expect(first.step).toBe((resumed.step as number) + 1);
      console.log(`${mode}: coordinator SIGKILLed at step ${killAt}; resumed at ${resumed.step}; ${((performance.now() - killed) / 1000).toFixed(2)} s from the kill to the first resumed step`);
    }
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    const resumedAt = coord.events().find((e) => e.event === 'resumed')!.step as number;
    expect(stepNumbers(coord.events())).toEqual(range(resumedAt + 1, D_STEPS));
    expect((await Promise.all(workers.map((w) => w.exit))).map((e) => e.code)).toEqual([0, 0]);
    for (const w of workers) expect(w.stderr()).toMatch(/lost the coordinator/);
    const ref = await reference;
    expect(bitwiseEqual(readWeights(out), ref.weights)).toBe(true);
    // The epoch the last coordinator finished reports the training loss of the whole epoch, as the
    // run that never stopped does: the checkpoint kept the loss of the steps before it.
    const epochLoss = (events: DdpEventLine[]) => events.filter((e) => e.event === 'epoch').at(-1)!.trainLoss;
    expect(epochLoss(coord.events())).toBe(epochLoss(ref.events));
  }, 240_000);
});

describe('ddp train --workers 2: the launcher supervises its coordinator', () => {
  /** The coordinator the launcher runs now (its child whose command line says so). */
  const coordinatorOf = (launcher: Live): number | undefined =>
    childPids(launcher.pid).find((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('coordinator');
      } catch {
        return false;
      }
    });

  it('a coordinator SIGKILLed twice is restarted with --resume; the workers it started rejoin; the weights are those of the run that never stopped', async () => {
    const reference = distReferenceRun('ring');
    const out = tmpDir();
    const launcher = startDdp(['train', '--workers', '2', ...distJob('ring'), '--checkpoint-every', '5', '--out', out, '--log-format', 'json']);
    let restarts = 0;
    for (const killAt of [12, 27]) {
      await launcher.waitForEvent((e) => e.event === 'step' && (e.step as number) >= killAt && launcher.events().filter((x) => x.event === 'coordinator_restarted').length === restarts, 120_000);
      const pid = coordinatorOf(launcher);
      expect(pid).toBeDefined();
      process.kill(pid!, 'SIGKILL');
      restarts += 1;
      const restarted = await launcher.waitForEvent((e) => e.event === 'coordinator_restarted' && e.restart === restarts);
      expect(restarted).toMatchObject({ maxRestarts: 3, exit: 'SIGKILL' });
    }
    const c = await launcher.exit;
    expect(c.code, launcher.stderr()).toBe(0);
    const events = launcher.events();
    expect(events.filter((e) => e.event === 'resumed')).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ event: 'done', steps: D_STEPS });
    // The checkpoints went to <out>/checkpoints; the last resumed run ran every step after its checkpoint once.
    const lastResume = events.filter((e) => e.event === 'resumed').at(-1)!;
    expect(String(lastResume.path)).toContain(path.join(out, 'checkpoints'));
    const after = events.slice(events.indexOf(lastResume));
    expect(stepNumbers(after)).toEqual(range((lastResume.step as number) + 1, D_STEPS));
    expect(bitwiseEqual(readWeights(out), (await reference).weights)).toBe(true);
    expect(childPids(launcher.pid)).toEqual([]);
  }, 240_000);
});
