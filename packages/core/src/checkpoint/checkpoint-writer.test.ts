import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SEED_CNN_PARAM_COUNT } from '../model/seed-cnn-layout.js';
import type { CheckpointMeta } from './checkpoint-meta.js';
import { CheckpointWriteError, readLatestCheckpoint, type CheckpointWritten } from './checkpoint-store.js';
import { CheckpointWriter } from './checkpoint-writer.js';
import type { TrainingState } from './training-state.js';

const N = SEED_CNN_PARAM_COUNT;
const dirs: string[] = [];

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-ckpt-writer-'));
  dirs.push(d);
  return d;
}

function stateAt(steps: number): TrainingState {
  return { steps, params: new Float32Array(N).fill(steps), adamM: new Float32Array(N).fill(steps / 2), adamV: new Float32Array(N).fill(steps / 4) };
}

function metaAt(steps: number): CheckpointMeta {
  return {
    jobId: 'job',
    fingerprint: { model: 'seed-cnn', dataset: 'mnist', trainHash: '0'.repeat(64), trainCount: 100, batchSize: 10, lr: 0.001, seed: 1, reduction: 'exact', compress: 'none' },
    steps,
    epoch: 0,
    stepInEpoch: steps,
    seed: 1,
    worldHistory: [{ fromStep: 0, workers: 1 }],
    epochLossSum: steps,
    epochSamples: steps * 10,
  };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('CheckpointWriter', () => {
  it('returns at once, writes in the order scheduled, and flush waits for all of them', async () => {
    const dir = tempDir();
    const written: CheckpointWritten[] = [];
    const errors: Error[] = [];
    const writer = new CheckpointWriter(dir, { keep: 3, onWritten: (w) => written.push(w), onError: (e) => errors.push(e) });
    for (const s of [1, 2, 3, 4, 5]) writer.schedule(stateAt(s), metaAt(s));
    expect(writer.pending).toBe(5);
    expect(written).toEqual([]); // nothing happens on the caller's path
    await writer.flush();
    expect(errors).toEqual([]);
    expect(writer.pending).toBe(0);
    expect(written.map((w) => w.step)).toEqual([1, 2, 3, 4, 5]);
    expect(written[4]!.path).toBe(path.join(dir, 'step-000000005'));
    expect(fs.readdirSync(dir).sort()).toEqual(['step-000000003', 'step-000000004', 'step-000000005']);
    expect((await readLatestCheckpoint(dir))!.state.params[0]).toBe(5);
  });

  it('reports a failed write to onError with the path, and later writes still run', async () => {
    const dir = path.join(tempDir(), 'ckpt');
    fs.writeFileSync(dir, 'a file where the folder should be');
    const written: number[] = [];
    const errors: Error[] = [];
    const writer = new CheckpointWriter(dir, { keep: 2, onWritten: (w) => written.push(w.step), onError: (e) => errors.push(e) });
    writer.schedule(stateAt(1), metaAt(1));
    await writer.flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CheckpointWriteError);
    expect(errors[0]!.message).toContain(path.join(dir, 'step-000000001'));
    fs.rmSync(dir);
    writer.schedule(stateAt(2), metaAt(2));
    await writer.flush();
    expect(written).toEqual([2]);
    expect(errors).toHaveLength(1);
  });

  it('goes on after an onWritten or onError that throws', async () => {
    const dir = tempDir();
    const seen: number[] = [];
    const writer = new CheckpointWriter(dir, {
      keep: 5,
      onWritten: (w) => {
        seen.push(w.step);
        throw new Error('listener bug');
      },
      onError: () => {
        throw new Error('listener bug too');
      },
    });
    writer.schedule(stateAt(1), metaAt(1));
    writer.schedule(stateAt(2), metaAt(2));
    await writer.flush();
    expect(seen).toEqual([1, 2]);
  });

  it('throws at once for a bad keep or a state that is not a checkpoint', () => {
    expect(() => new CheckpointWriter(tempDir(), { keep: 0 })).toThrow(RangeError);
    const writer = new CheckpointWriter(tempDir(), { keep: 1 });
    expect(() => writer.schedule({ ...stateAt(1), params: new Float32Array(1) }, metaAt(1))).toThrow(RangeError);
    expect(() => writer.schedule(stateAt(1), metaAt(2))).toThrow(/meta.steps/);
    expect(writer.pending).toBe(0);
  });
});
