import { describe, expect, it } from 'vitest';
import { schedulerRankHint } from './scheduler-rank.js';

describe('schedulerRankHint', () => {
  it('reads the Kubernetes index first, then Slurm', () => {
    expect(schedulerRankHint({ JOB_COMPLETION_INDEX: '3', SLURM_PROCID: '7' })).toEqual({ from: 'JOB_COMPLETION_INDEX', index: 3 });
    expect(schedulerRankHint({ SLURM_PROCID: ' 7 ' })).toEqual({ from: 'SLURM_PROCID', index: 7 });
  });
  it('ignores what is absent or not a whole number', () => {
    expect(schedulerRankHint({})).toBeUndefined();
    expect(schedulerRankHint({ JOB_COMPLETION_INDEX: '', SLURM_PROCID: 'x' })).toBeUndefined();
    expect(schedulerRankHint({ JOB_COMPLETION_INDEX: '-1' })).toBeUndefined();
    expect(schedulerRankHint({ JOB_COMPLETION_INDEX: 'two', SLURM_PROCID: '0' })).toEqual({ from: 'SLURM_PROCID', index: 0 });
  });
});
