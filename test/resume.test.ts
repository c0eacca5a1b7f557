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
import { bitwiseEqual, readWeights, startDdp, stepNumbers, tmpDir, type DdpEventLine } from './distributed-helpers.js';

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
