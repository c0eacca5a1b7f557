import { describe, expect, it } from 'vitest';
import { DEFAULT_WIRE, defaultReduction, wireConfig, wireConflict } from './wire-config.js';

describe('wire settings: the default reduction', () => {
  it('is exact, and fast with fp16 compression (which cannot be exact)', () => {
    expect(DEFAULT_WIRE.reduction).toBe('exact');
    expect(defaultReduction('none')).toBe('exact');
    expect(defaultReduction('fp16')).toBe('fast');
    expect(wireConfig().reduction).toBe('exact');
    expect(wireConfig({ allreduce: 'star' }).reduction).toBe('exact');
    expect(wireConfig({ compress: 'fp16' }).reduction).toBe('fast');
    expect(wireConflict(wireConfig({ compress: 'fp16' }))).toBeNull();
  });

  it('given explicitly, is kept: exact with fp16 is a conflict, fast without fp16 is not', () => {
    expect(wireConfig({ reduction: 'fast' }).reduction).toBe('fast');
    expect(wireConflict(wireConfig({ reduction: 'fast' }))).toBeNull();
    const both = wireConfig({ compress: 'fp16', reduction: 'exact' });
    expect(both.reduction).toBe('exact');
    expect(wireConflict(both)).toMatch(/--reduction exact cannot be combined with --compress fp16.*give --reduction fast, or leave --reduction out/);
  });
});
