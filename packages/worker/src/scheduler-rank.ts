// The index a scheduler gives each process of a job, read from where the scheduler puts it. ddp
// reports it (worker_joined) so that a rank in the logs can be matched to a pod or a Slurm task; the
// coordinator still assigns ranks itself (first come, lowest free), so a hint can never collide.
import type { RankHint } from '@ddp/core';

/** Variables read, first match wins: Kubernetes Indexed Jobs, then Slurm's srun. */
export const RANK_HINT_VARIABLES = ['JOB_COMPLETION_INDEX', 'SLURM_PROCID'] as const;

export function schedulerRankHint(env: NodeJS.ProcessEnv): RankHint | undefined {
  for (const from of RANK_HINT_VARIABLES) {
    const raw = env[from];
    if (raw === undefined || !/^\d{1,9}$/.test(raw.trim())) continue;
    return { from, index: Number(raw.trim()) };
  }
  return undefined;
}
