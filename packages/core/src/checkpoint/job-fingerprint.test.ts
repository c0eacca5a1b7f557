import { describe, expect, it } from 'vitest';
import { fingerprintDifferences, fingerprintHash, fingerprintProblem, type JobFingerprint } from './job-fingerprint.js';

const base: JobFingerprint = {
  model: 'seed-cnn',
  dataset: 'mnist',
  trainHash: 'a'.repeat(64),
  trainCount: 60000,
  batchSize: 64,
  lr: 0.001,
  seed: 42,
  reduction: 'fast',
  compress: 'none',
};

describe('fingerprintDifferences', () => {
  it('is empty for equal fingerprints', () => {
    expect(fingerprintDifferences(base, { ...base })).toEqual([]);
  });

  it('names exactly the differing fields, with the CLI flag names', () => {
    expect(fingerprintDifferences(base, { ...base, batchSize: 128 })).toEqual(['batch-size: 64 in the checkpoint, 128 now']);
    const now = { ...base, lr: 0.01, seed: 7, reduction: 'exact', compress: 'fp16', dataset: 'fashion-mnist', model: 'other' };
    expect(fingerprintDifferences(base, now)).toEqual([
      'model: seed-cnn in the checkpoint, other now',
      'dataset: mnist in the checkpoint, fashion-mnist now',
      'lr: 0.001 in the checkpoint, 0.01 now',
      'seed: 42 in the checkpoint, 7 now',
      'reduction: fast in the checkpoint, exact now',
      'compress: none in the checkpoint, fp16 now',
    ]);
  });

  it('reports the training data once, whether its hash or its count differs', () => {
    for (const now of [{ ...base, trainHash: 'b'.repeat(64) }, { ...base, trainCount: 59000 }, { ...base, trainHash: 'b'.repeat(64), trainCount: 1 }]) {
      const d = fingerprintDifferences(base, now);
      expect(d).toHaveLength(1);
      expect(d[0]).toMatch(/^training data: 60000 samples \(sha256 aaaaaaaaaaaa\) in the checkpoint, \d+ samples \(sha256 [ab]{12}\) now$/);
    }
  });
});

describe('fingerprintHash', () => {
  it('is 16 hex chars, independent of key order, and changes with any field', () => {
    const h = fingerprintHash(base);
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    const reversed = Object.fromEntries(Object.entries(base).reverse()) as unknown as JobFingerprint;
    expect(fingerprintHash(reversed)).toBe(h);
    for (const [k, v] of Object.entries({ model: 'x', dataset: 'x', trainHash: 'x', trainCount: 1, batchSize: 1, lr: 1, seed: 1, reduction: 'x', compress: 'x' })) {
      expect(fingerprintHash({ ...base, [k]: v })).not.toBe(h);
    }
  });
});

describe('fingerprintProblem', () => {
  it('accepts a fingerprint and names a missing or mistyped field', () => {
    expect(fingerprintProblem(base)).toBeNull();
    expect(fingerprintProblem({ ...base, lr: '0.001' })).toBe('fingerprint.lr is not a number');
    const { seed: _, ...noSeed } = base;
    expect(fingerprintProblem(noSeed)).toBe('fingerprint.seed is not a number');
    expect(fingerprintProblem(null)).toBe('fingerprint is not an object');
  });
});
