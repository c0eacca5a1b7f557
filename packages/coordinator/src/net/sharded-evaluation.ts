/**
 * An evaluation of the test split shared among the workers: each gets a contiguous range of whole
 * evaluation batches (evaluationRanges) and answers with each batch's loss sum; the sums are added
 * in batch order (combineEvaluation), so the result is bitwise the one-process evaluateSplit. Both
 * trainers use it; they feed it the workers' `evaluation` messages and losses. A worker lost midway
 * fails it (the caller then evaluates in its own process).
 */
import { EVAL_BATCH, ProtocolError, combineEvaluation, evaluationRanges, type EvaluateMessage, type Evaluation, type EvaluationMessage, type RangeEvaluation } from '@ddp/core';
import type { WorkerPool } from './worker-pool.js';

export class ShardedEvaluation {
  private static requests = 0;
  private readonly request = ++ShardedEvaluation.requests;
  private readonly ranges = new Map<number, { start: number; end: number; index: number }>();
  private readonly parts: Array<RangeEvaluation | null>;
  private resolve!: (e: Evaluation) => void;
  private reject!: (err: Error) => void;
  readonly result: Promise<Evaluation>;

  constructor(
    private readonly pool: WorkerPool,
    ranks: readonly number[],
    private readonly count: number,
    /** The evaluate message for a range (the trainer adds the weights or the step). */
    message: (request: number, start: number, end: number) => EvaluateMessage,
  ) {
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const shares = evaluationRanges(count, ranks.length);
    this.parts = shares.map(() => null);
    shares.forEach((r, index) => this.ranges.set(ranks[index]!, { ...r, index }));
    for (const [rank, r] of this.ranges) pool.send(rank, message(this.request, r.start, r.end));
  }

  /** Takes an `evaluation` message; false when it is not one of this evaluation's. */
  onMessage(rank: number, msg: EvaluationMessage): boolean {
    if (msg.request !== this.request) return false;
    const r = this.ranges.get(rank);
    const expected = r ? Math.ceil((r.end - r.start) / EVAL_BATCH) : -1;
    if (!r || this.parts[r.index] !== null || msg.batches !== expected) {
      this.pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', `evaluation: request ${msg.request} from rank ${rank} was not expected (or not with ${msg.batches} batches)`));
      return true;
    }
    this.parts[r.index] = { lossSums: msg.lossSums, correct: msg.correct };
    if (this.parts.every((p) => p !== null)) this.resolve(combineEvaluation(this.parts as RangeEvaluation[], this.count));
    return true;
  }

  /** The evaluation, or null (with a note saying why) when a worker was lost midway. */
  async outcome(): Promise<Evaluation | null> {
    try {
      return await this.result;
    } catch (err) {
      this.pool.note(`evaluating here instead: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }

  /** A worker was lost: if it held a range not yet answered, the evaluation fails. */
  onLost(rank: number): void {
    const r = this.ranges.get(rank);
    if (r && this.parts[r.index] === null) this.reject(new Error(`rank ${rank} was lost during the evaluation`));
  }
}
