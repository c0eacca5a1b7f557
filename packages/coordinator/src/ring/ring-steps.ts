/**
 * The coordinator's bookkeeping of one ring run, as a state machine with no socket: the trainer
 * feeds it the members' ring_progress reports as they arrive and takes back the steps they commit;
 * tests drive it the same way. (The whole ring protocol is written out in ring-trainer.ts.)
 *
 *   - A report is accepted only from a member of this ring, for this generation, for exactly the
 *     next step that member has not reported yet (reports come in step order), with the shard's
 *     sample count; anything else is a protocol violation.
 *   - Step s is committed once every member has reported it. When the reports carry hashes (every
 *     hashEvery steps and at the run's end), they must all be equal (else ReplicaMismatchError,
 *     naming the ranks). The loss sums are added in position order.
 */
import { ProtocolError, type RankTiming, type RingProgressMessage } from '@ddp/core';

export interface RingCommit {
  step: number;
  lossSum: number;
  /** Samples in the step's global batch. */
  samples: number;
  /** The replicas' common hash after the step, when this step carried hashes. */
  hash?: string;
  hashes?: Array<{ rank: number; hash: string }>;
  /**
   * Per-member means, in ms: prepare (gathering the shard's pixels), compute (the gradient sum),
   * allreduce (the fastest member's: the transfer itself), waiting (the rest of each member's
   * allreduce, spent waiting for slower members), optimizer (Adam, and the hash when taken), other
   * (the rest of each member's cycle between two reports: message handling, scheduling).
   */
  timing: Record<'prepare' | 'compute' | 'allreduce' | 'waiting' | 'optimizer' | 'other', number>;
  /** Mean payload bytes each member sent to its neighbour in the allreduce. */
  gradientBytes: number;
  /** Per member, in rank order: its compute, the transfer (the fastest member's allreduce) and its wait for slower members. */
  ranks: RankTiming[];
  /** The member whose report of this step came last, and how long after the first member's (ms). */
  lastReport: { rank: number; afterFirstMs: number };
}

/** The replicas differ after a step: the one fault ring mode cannot recover from. */
export class ReplicaMismatchError extends Error {
  constructor(
    readonly step: number,
    readonly hashes: Array<{ rank: number; hash: string }>,
  ) {
    const groups = new Map<string, number[]>();
    for (const { rank, hash } of hashes) groups.set(hash, [...(groups.get(hash) ?? []), rank]);
    const listed = [...groups].map(([hash, ranks]) => `rank${ranks.length > 1 ? 's' : ''} ${ranks.join(', ')}: ${hash}`).join('; ');
    super(`Mismatched replicas after step ${step + 1}: the workers' weights differ (${listed}); they must apply bitwise-identical steps`);
    this.name = 'ReplicaMismatchError';
  }
}

export class RingSteps {
  /** Per position: the reports not yet committed, in step order. */
  private readonly pending: RingProgressMessage[][];
  /** When each pending report arrived (clock ms), in the same places. */
  private readonly arrivals: number[][];
  private readonly position = new Map<number, number>();
  /** Steps committed so far (the next step to commit). */
  committed: number;

  constructor(
    readonly generation: number,
    /** Ranks by ring position. */
    readonly members: readonly number[],
    readonly from: number,
    readonly until: number,
    /** Samples in member `position`'s shard of step `step`, and in the step's global batch. */
    private readonly sizes: (step: number, position: number) => { shard: number; batch: number },
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (members.length === 0) throw new RangeError('RingSteps: a ring needs at least one member');
    members.forEach((r, p) => this.position.set(r, p));
    this.pending = members.map(() => []);
    this.arrivals = members.map(() => []);
    this.committed = from;
  }

  get complete(): boolean {
    return this.committed >= this.until;
  }

  /** Ranks that have not yet reported the next step to commit. */
  get waitingFor(): number[] {
    return this.members.filter((_r, p) => this.pending[p]!.length === 0);
  }

  /**
   * Takes one report; returns the step it commits, if any (a report completes at most one step:
   * the next one to commit). Throws ProtocolError('DDP_BAD_MESSAGE') when `rank` had no business sending it, and
   * ReplicaMismatchError when the hashes of a step disagree.
   */
  onProgress(rank: number, msg: RingProgressMessage): RingCommit[] {
    const p = this.position.get(rank);
    if (p === undefined) throw new ProtocolError('DDP_BAD_MESSAGE', `ring_progress: rank ${rank} is not a member of ring ${this.generation}`);
    const queue = this.pending[p]!;
    const expected = this.committed + queue.length;
    if (msg.generation !== this.generation || msg.step !== expected || msg.step >= this.until) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `ring_progress: step ${msg.step + 1} of ring ${msg.generation}, but rank ${rank} is due to report step ${expected + 1} of ring ${this.generation} (run ${this.from + 1}..${this.until})`);
    }
    const { shard } = this.sizes(msg.step, p);
    if (msg.count !== shard) throw new ProtocolError('DDP_BAD_MESSAGE', `ring_progress: step ${msg.step + 1} gives rank ${rank} ${shard} samples, the report counts ${msg.count}`);
    queue.push(msg);
    this.arrivals[p]!.push(this.clock());
    const out: RingCommit[] = [];
    while (this.pending.every((q) => q.length > 0)) out.push(this.commit(this.pending.map((q) => q.shift()!), this.arrivals.map((q) => q.shift()!)));
    return out;
  }

  private commit(reports: RingProgressMessage[], arrivals: number[]): RingCommit {
    const step = this.committed;
    const hashed = reports.filter((r) => r.hash !== undefined);
    let hashes: RingCommit['hashes'];
    if (hashed.length > 0) {
      hashes = reports.map((r, p) => ({ rank: this.members[p]!, hash: r.hash ?? '(none)' }));
      if (hashes.some((h) => h.hash !== hashes![0]!.hash)) throw new ReplicaMismatchError(step, hashes);
    }
    let lossSum = 0;
    for (const r of reports) lossSum += r.lossSum;
    const n = reports.length;
    const mean = (f: (r: RingProgressMessage) => number) => reports.reduce((acc, r) => acc + f(r), 0) / n;
    const transfer = Math.min(...reports.map((r) => r.allreduceMs));
    const parts = (r: RingProgressMessage) => r.prepareMs + r.computeMs + r.allreduceMs + r.optimizerMs;
    let last = 0;
    arrivals.forEach((t, p) => {
      if (t > arrivals[last]!) last = p;
    });
    const commit: RingCommit = {
      step,
      lossSum,
      lastReport: { rank: this.members[last]!, afterFirstMs: arrivals[last]! - Math.min(...arrivals) },
      samples: this.sizes(step, 0).batch,
      timing: {
        prepare: mean((r) => r.prepareMs),
        compute: mean((r) => r.computeMs),
        allreduce: transfer,
        waiting: mean((r) => r.allreduceMs - transfer),
        optimizer: mean((r) => r.optimizerMs),
        other: mean((r) => (r.cycleMs > 0 ? Math.max(0, r.cycleMs - parts(r)) : 0)),
      },
      gradientBytes: mean((r) => r.bytesSent),
      ranks: reports
        .map((r, p) => ({ rank: this.members[p]!, computeMs: r.computeMs, allreduceMs: transfer, waitingMs: r.allreduceMs - transfer, prepareMs: r.prepareMs, optimizerMs: r.optimizerMs }))
        .sort((a, b) => a.rank - b.rank),
    };
    if (hashes) {
      commit.hash = hashes[0]!.hash;
      commit.hashes = hashes;
    }
    this.committed = step + 1;
    return commit;
  }
}
