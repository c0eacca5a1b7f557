/**
 * Straggler detection in ring mode (--straggler-factor F). There is no backup to give: the ring
 * allreduce needs every member, so a slow member holds up the whole step. This only names it, once
 * per episode: fed every committed step and how long it took, it returns the member to report when
 *
 *   - its report of the step came more than F x the median step time after the first member's
 *     (it was slow after the allreduce: the others had gone on), or
 *   - the step took more than F x the median step time and that member's own work (prepare,
 *     compute, optimizer) accounts for at least half of the excess: the others waited for it in the
 *     allreduce. (A member stalled inside the allreduce holds up its neighbours the same way it is
 *     held up: nothing tells it apart from there, and nobody is named.)
 *
 * A member named stays in its episode, not named again, until a step is on time.
 */
import { StragglerThreshold, type StragglerOptions } from '../job/straggler-threshold.js';
import type { RingCommit } from './ring-steps.js';

export interface RingStraggler {
  rank: number;
  /** How long the step took (or how late the report came, when that named it), and the median step time, ms. */
  waitedMs: number;
  medianMs: number;
}

export class RingStragglers {
  private readonly threshold: StragglerThreshold;
  private readonly straggling = new Set<number>();

  constructor(opts: number | StragglerOptions) {
    this.threshold = new StragglerThreshold(typeof opts === 'number' ? { factor: opts } : opts);
  }

  /**
   * One committed step. `stepMs` is the time since the previous commit, or null for the first step of
   * a run (forming the ring, an evaluation or a save before it are no step's time).
   */
  onCommit(commit: RingCommit, stepMs: number | null): RingStraggler | null {
    const limit = this.threshold.thresholdMs;
    const medianMs = this.threshold.medianMs;
    if (stepMs !== null) this.threshold.record(stepMs);
    if (limit === null || medianMs === null) return null;
    let found: RingStraggler | null = null;
    if (commit.lastReport.afterFirstMs > limit) {
      found = { rank: commit.lastReport.rank, waitedMs: commit.lastReport.afterFirstMs, medianMs };
    } else if (stepMs !== null && stepMs > limit) {
      const own = commit.ranks.map((r) => ({ rank: r.rank, ms: (r.prepareMs ?? 0) + r.computeMs + (r.optimizerMs ?? 0) }));
      const slowest = own.reduce((a, b) => (b.ms > a.ms ? b : a));
      const typical = Math.min(...own.map((o) => o.ms));
      if (slowest.ms - typical >= (stepMs - medianMs) / 2) found = { rank: slowest.rank, waitedMs: stepMs, medianMs };
    } else {
      this.straggling.clear(); // on time: every episode is over
      return null;
    }
    if (!found || this.straggling.has(found.rank)) return null;
    this.straggling.add(found.rank);
    return found;
  }
}
