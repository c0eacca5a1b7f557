import { wireConfig } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { jobFingerprintOf, newJobId } from './job-identity.js';

describe('job identity', () => {
  const base = { dataset: 'mnist', trainFingerprint: 'ab'.repeat(32), batchSize: 64, lr: 1e-3, seed: 42, config: wireConfig({ allreduce: 'ring' }) };

  it('the fingerprint is a sha256 in hex, the same for the same inputs whatever the key order', () => {
    const f = jobFingerprintOf(base);
    expect(f).toMatch(/^[0-9a-f]{64}$/);
    const config = Object.fromEntries(Object.entries(base.config).reverse()) as typeof base.config;
    expect(jobFingerprintOf({ config, seed: 42, lr: 1e-3, batchSize: 64, trainFingerprint: base.trainFingerprint, dataset: 'mnist' })).toBe(f);
  });

  it('every input changes it', () => {
    const f = jobFingerprintOf(base);
    const changed = [
      { ...base, dataset: 'fashion-mnist' },
      { ...base, trainFingerprint: 'cd'.repeat(32) },
      { ...base, batchSize: 128 },
      { ...base, lr: 2e-3 },
      { ...base, seed: 43 },
      { ...base, config: wireConfig({ allreduce: 'star' }) },
      { ...base, config: wireConfig({ allreduce: 'ring', compress: 'fp16' }) },
    ].map(jobFingerprintOf);
    expect(new Set([f, ...changed]).size).toBe(changed.length + 1);
  });

  it('new ids are 16 hex digits, different every time', () => {
    const ids = Array.from({ length: 20 }, newJobId);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(ids).size).toBe(20);
  });
});
