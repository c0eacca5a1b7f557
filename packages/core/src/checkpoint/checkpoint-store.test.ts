import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SEED_CNN_PARAM_COUNT } from '../model/seed-cnn-layout.js';
import { loadSeedCnnParams } from '../model/save.js';
import type { CheckpointMeta } from './checkpoint-meta.js';
import { CheckpointError, CheckpointWriteError, readCheckpoint, readLatestCheckpoint, writeCheckpoint } from './checkpoint-store.js';
import type { TrainingState } from './training-state.js';

const N = SEED_CNN_PARAM_COUNT;
const dirs: string[] = [];

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-ckpt-'));
  dirs.push(d);
  return d;
}

function randomVector(scale: number): Float32Array {
  return Float32Array.from({ length: N }, () => (Math.random() * 2 - 1) * scale);
}

function randomState(steps: number): TrainingState {
  return { steps, params: randomVector(0.5), adamM: randomVector(1e-3), adamV: randomVector(1e-6).map(Math.abs) };
}

function metaFor(steps: number): CheckpointMeta {
  return {
    jobId: 'job-1',
    fingerprint: { model: 'seed-cnn', dataset: 'mnist', trainHash: 'f'.repeat(64), trainCount: 60000, batchSize: 64, lr: 0.001, seed: 42, reduction: 'fast', compress: 'none' },
    steps,
    epoch: Math.floor(steps / 938),
    stepInEpoch: steps % 938,
    seed: 42,
    worldHistory: [{ fromStep: 0, workers: 2 }, { fromStep: 5, workers: 3 }],
    epochLossSum: Math.random() * 1000,
    epochSamples: (steps % 938) * 64,
  };
}

const write = (dir: string, steps: number, keep = 10) => writeCheckpoint(dir, randomState(steps), metaFor(steps), { keep });
const folder = (dir: string, step: number) => path.join(dir, `step-${String(step).padStart(9, '0')}`);
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Rewrites manifest.json to match the files as they are now: a corruption the hashes cannot see. */
function resign(ckpt: string): void {
  const file = path.join(ckpt, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const name of Object.keys(m.files)) {
    const data = fs.readFileSync(path.join(ckpt, name));
    m.files[name] = { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  }
  fs.writeFileSync(file, JSON.stringify(m));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('writeCheckpoint and readCheckpoint', () => {
  it('round-trips params, Adam moments and meta bitwise, in the documented layout', async () => {
    const dir = tempDir();
    const state = randomState(123);
    const meta = metaFor(123);
    const w = await writeCheckpoint(dir, state, meta);
    expect(w.path).toBe(path.join(dir, 'step-000000123'));
    expect(w.step).toBe(123);
    expect(fs.readdirSync(w.path).sort()).toEqual(['manifest.json', 'model.json', 'optimizer.bin', 'state.json', 'weights.bin']);
    expect(w.bytes).toBe(fs.readdirSync(w.path).reduce((n, f) => n + fs.statSync(path.join(w.path, f)).size, 0));
    expect(fs.readdirSync(dir)).toEqual(['step-000000123']);

    const back = await readCheckpoint(w.path);
    expect(back.path).toBe(w.path);
    expect(back.state.steps).toBe(123);
    expect(bits(back.state.params).equals(bits(state.params))).toBe(true);
    expect(bits(back.state.adamM).equals(bits(state.adamM))).toBe(true);
    expect(bits(back.state.adamV).equals(bits(state.adamV))).toBe(true);
    expect(back.meta).toEqual(meta);
    // optimizer.bin is adamM then adamV, float32 little-endian.
    const opt = fs.readFileSync(path.join(w.path, 'optimizer.bin'));
    expect(opt.readFloatLE(0)).toBe(state.adamM[0]);
    expect(opt.readFloatLE(4 * N)).toBe(state.adamV[0]);
  });

  it('writes a tfjs layers model that loadSeedCnnParams reads back bitwise (raw params bytes = tfjs weights.bin)', async () => {
    const dir = tempDir();
    for (const steps of [1, 2]) {
      const state = randomState(steps);
      const w = await writeCheckpoint(dir, state, metaFor(steps));
      const loaded = await loadSeedCnnParams(w.path);
      expect(bits(loaded).equals(bits(state.params))).toBe(true);
    }
  });

  it('refuses a state or meta that is not a checkpoint before touching the disk', async () => {
    const dir = path.join(tempDir(), 'not-made');
    await expect(writeCheckpoint(dir, { ...randomState(1), adamV: new Float32Array(3) }, metaFor(1))).rejects.toThrow(RangeError);
    await expect(writeCheckpoint(dir, randomState(2), metaFor(1))).rejects.toThrow(/meta.steps is 1, state.steps is 2/);
    await expect(writeCheckpoint(dir, randomState(1), { ...metaFor(1), epochLossSum: NaN })).rejects.toThrow(/epochLossSum/);
    await expect(writeCheckpoint(dir, randomState(1), metaFor(1), { keep: 0 })).rejects.toThrow(/keep/);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('reports a write it cannot do as CheckpointWriteError with the path, leaving nothing behind', async () => {
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    const err = await write(file, 5).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointWriteError);
    expect(err.message).toContain(path.join(file, 'step-000000005'));
  });

  it('replaces a checkpoint of the same step (a resumed run writing it again)', async () => {
    const dir = tempDir();
    await write(dir, 7);
    const second = randomState(7);
    await writeCheckpoint(dir, second, metaFor(7));
    expect(fs.readdirSync(dir)).toEqual(['step-000000007']);
    const back = await readCheckpoint(folder(dir, 7));
    expect(bits(back.state.params).equals(bits(second.params))).toBe(true);
  });
});

describe('readLatestCheckpoint', () => {
  it('returns null for a missing or empty folder, and ignores .tmp-* folders and other names', async () => {
    const dir = tempDir();
    expect(await readLatestCheckpoint(path.join(dir, 'missing'))).toBeNull();
    expect(await readLatestCheckpoint(dir)).toBeNull();
    fs.mkdirSync(path.join(dir, `.tmp-step-000000009-${process.pid}-00000000`));
    fs.mkdirSync(path.join(dir, 'notes'));
    const skips: string[] = [];
    expect(await readLatestCheckpoint(dir, { onSkip: (p) => skips.push(p) })).toBeNull();
    expect(skips).toEqual([]);
  });

  it('returns the newest complete checkpoint (steps compare as numbers)', async () => {
    const dir = tempDir();
    for (const s of [3, 1000000000, 20, 999999999]) await write(dir, s);
    expect((await readLatestCheckpoint(dir))!.state.steps).toBe(1000000000);
  });

  // Each corruption of the newer checkpoint (step 20): it is skipped with a reason naming what is wrong, and step 10 loads.
  const corruptions: Array<[string, (ckpt: string) => void, RegExp]> = [
    ['no manifest', (c) => fs.rmSync(path.join(c, 'manifest.json')), /^missing manifest\.json \(the write did not finish\)$/],
    ['a garbage manifest', (c) => fs.writeFileSync(path.join(c, 'manifest.json'), '{"format": "ddp-che'), /^manifest\.json: not valid JSON$/],
    ['a 0-byte weights.bin', (c) => fs.truncateSync(path.join(c, 'weights.bin'), 0), /^weights\.bin: 0 bytes, expected 373288$/],
    ['a missing model.json', (c) => fs.rmSync(path.join(c, 'model.json')), /^model\.json: missing$/],
    ['a flipped byte in weights.bin', (c) => flipByte(path.join(c, 'weights.bin')), /^weights\.bin: sha256 mismatch$/],
    ['a flipped byte in optimizer.bin', (c) => flipByte(path.join(c, 'optimizer.bin')), /^optimizer\.bin: sha256 mismatch$/],
    ['a truncated optimizer.bin', (c) => fs.truncateSync(path.join(c, 'optimizer.bin'), 1000), /^optimizer\.bin: 1000 bytes, expected 746576$/],
    ['a truncated optimizer.bin, manifest re-signed', (c) => (fs.truncateSync(path.join(c, 'optimizer.bin'), 1000), resign(c)), /^optimizer\.bin: 1000 bytes, expected 746576$/],
    ['garbage state.json', (c) => fs.writeFileSync(path.join(c, 'state.json'), 'garbage'), /^state\.json: (7 bytes, expected \d+|sha256 mismatch)$/],
    ['garbage state.json, manifest re-signed', (c) => (fs.writeFileSync(path.join(c, 'state.json'), 'garbage'), resign(c)), /^state\.json: not valid JSON$/],
    ['state.json of another step, re-signed', (c) => (rewriteState(c, (s) => (s.meta.steps = 99)), resign(c)), /^state\.json: steps 99, but the folder is step 20$/],
    ['state.json without a fingerprint field, re-signed', (c) => (rewriteState(c, (s) => delete s.meta.fingerprint.lr), resign(c)), /^state\.json: fingerprint\.lr is not a number$/],
    ['a file in place of the folder', (c) => (fs.rmSync(c, { recursive: true }), fs.writeFileSync(c, 'x')), /^not a folder$/],
  ];

  it.each(corruptions)('skips a checkpoint with %s, names it in onSkip, and loads the older one', async (_, corrupt, reason) => {
    const dir = tempDir();
    const good = randomState(10);
    await writeCheckpoint(dir, good, metaFor(10));
    await write(dir, 20);
    corrupt(folder(dir, 20));
    const skips: Array<[string, string]> = [];
    const latest = await readLatestCheckpoint(dir, { onSkip: (p, r) => skips.push([p, r]) });
    expect(skips).toHaveLength(1);
    expect(skips[0]![0]).toBe(folder(dir, 20));
    expect(skips[0]![1]).toMatch(reason);
    expect(latest!.state.steps).toBe(10);
    expect(bits(latest!.state.params).equals(bits(good.params))).toBe(true);
    // readCheckpoint on the bad one throws CheckpointError with the path and the reason.
    const err = await readCheckpoint(folder(dir, 20)).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain(folder(dir, 20));
    expect(err.reason).toMatch(reason);
  });

  it('returns null, reporting each one, when every checkpoint is bad', async () => {
    const dir = tempDir();
    for (const s of [1, 2, 3]) await write(dir, s);
    fs.rmSync(path.join(folder(dir, 1), 'manifest.json'));
    flipByte(path.join(folder(dir, 2), 'weights.bin'));
    fs.truncateSync(path.join(folder(dir, 3), 'optimizer.bin'), 0);
    const skips: string[] = [];
    expect(await readLatestCheckpoint(dir, { onSkip: (p) => skips.push(path.basename(p)) })).toBeNull();
    expect(skips).toEqual(['step-000000003', 'step-000000002', 'step-000000001']);
  });
});

describe('housekeeping', () => {
  it('keeps the newest K complete checkpoints', async () => {
    const dir = tempDir();
    for (let s = 1; s <= 6; s++) await write(dir, s, 3);
    expect(fs.readdirSync(dir).sort()).toEqual(['step-000000004', 'step-000000005', 'step-000000006']);
  });

  it('does not count an incomplete checkpoint among the K it keeps', async () => {
    const dir = tempDir();
    for (let s = 1; s <= 3; s++) await write(dir, s, 2);
    fs.rmSync(path.join(folder(dir, 3), 'manifest.json'));
    await write(dir, 4, 2);
    // 4 and 2 are the two complete ones; 3 (newer than 2, incomplete) stays to be reported; 1 goes.
    expect(fs.readdirSync(dir).sort()).toEqual(['step-000000002', 'step-000000003', 'step-000000004']);
  });

  it("removes a dead process's leftover .tmp-* folder, never a live one's", async () => {
    const dir = tempDir();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const deadTmp = path.join(dir, `.tmp-step-000000001-${dead}-deadbeef`);
    const liveTmp = path.join(dir, `.tmp-step-000000002-${process.pid}-cafebabe`);
    const foreign = path.join(dir, '.tmp-not-ours');
    for (const d of [deadTmp, liveTmp, foreign]) {
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'weights.bin'), 'partial');
    }
    await write(dir, 3);
    expect(fs.existsSync(deadTmp)).toBe(false);
    expect(fs.existsSync(liveTmp)).toBe(true);
    expect(fs.existsSync(foreign)).toBe(true);
  });
});

function flipByte(file: string): void {
  const b = fs.readFileSync(file);
  b[Math.floor(b.length / 2)] ^= 0x01;
  fs.writeFileSync(file, b);
}

function rewriteState(ckpt: string, edit: (s: { meta: Record<string, any> }) => void): void {
  const file = path.join(ckpt, 'state.json');
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(s);
  fs.writeFileSync(file, JSON.stringify(s));
}
