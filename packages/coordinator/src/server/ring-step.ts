/**
 * One ring-mode step as a state machine with no socket: the executor sends the work orders it
 * returns and feeds it the results that arrive; tests drive it the same way. (The whole ring step
 * protocol, formation and recovery included, is written out in ring-executor.ts.)
 *
 *   - The global batch is split into one shard per ring member, by ring position (shardBatch):
 *     member p gets shard p, and with it its shard of the next step's batch, to prepare ahead.
 *   - A result is accepted only from the member holding that task, for this step and ring
 *     generation, with the shard's sample count; anything else is a protocol violation.
 *   - When every member has answered, the replicas' hashes must all be equal (else
 *     ReplicaMismatchError, naming the ranks); the loss sums are added in position order.
 */
import { MSG, ProtocolError, shardBatch, type RingResultMessage, type RingWorkMessage } from '@ddp/core';
import type { TaskIds } from './step-round.js';

export interface RingTask {
  id: number;
  position: number;
  rank: number;
  indices: Uint32Array;
  answer: RingResultMessage | null;
  /** performance.now() when the answer arrived. */
  answeredAt: number;
}

export interface RingStepResult {
  lossSum: number;
  /** The replicas' common hash after the step. */
  hash: string;
  /** Every member's hash, by rank. */
  hashes: Array<{ rank: number; hash: string }>;
  /**
   * Per-member means, in ms, of the phases of a step; they add up to the time between a member's
   * consecutive answers (its step cycle), or for the first step of a ring to the round as the
   * coordinator saw it. prepare (gathering the shard's pixels), compute (the gradient sum; both count
   * in full even when done ahead, while the coordinator turned the previous step around), allreduce
   * (the fastest member's allreduce: the transfer itself), waiting (the rest of each member's
   * allreduce, spent waiting for slower members), optimizer (Adam and the hash, on the workers),
   * coordinator (the rest: the member idle until its work came, and handling messages on both sides).
   */
  timing: Record<'prepare' | 'compute' | 'allreduce' | 'waiting' | 'optimizer' | 'coordinator', number>;
  /** True when the timing comes from the members' cycles (it then already holds the coordinator's own time). */
  fromCycles: boolean;
  /** Mean payload bytes each member sent to its neighbour in the allreduce. */
  gradientBytes: number;
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

export class RingStep {
  readonly tasks: RingTask[];
  private answered = 0;
  private finishedAt = -1;
  readonly dispatchedAt: number;

  constructor(
    readonly step: number,
    readonly epoch: number,
    readonly generation: number,
    batch: Uint32Array,
    /** Ranks by ring position. */
    readonly members: readonly number[],
    ids: TaskIds,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (members.length === 0) throw new RangeError('RingStep: a ring needs at least one member');
    this.dispatchedAt = clock();
    this.tasks = shardBatch(batch, members.length).map((indices, position) => ({
      id: ids.take(),
      position,
      rank: members[position]!,
      indices,
      answer: null,
      answeredAt: -1,
    }));
  }

  /** The work orders, one per member; `next` is the next step's global batch, if any. */
  orders(batchSize: number, next?: Uint32Array): Array<{ rank: number; msg: RingWorkMessage }> {
    const nextShards = next ? shardBatch(next, this.members.length) : null;
    return this.tasks.map((t) => {
      const msg: RingWorkMessage = {
        type: MSG.RING_WORK,
        generation: this.generation,
        step: this.step,
        epoch: this.epoch,
        task: t.id,
        batchSize,
        indices: t.indices,
      };
      if (nextShards) msg.next = nextShards[t.position]!;
      return { rank: t.rank, msg };
    });
  }

  get complete(): boolean {
    return this.answered === this.tasks.length;
  }

  /** Ranks that have not answered yet. */
  get waitingFor(): number[] {
    return this.tasks.filter((t) => t.answer === null).map((t) => t.rank);
  }

  /** Throws ProtocolError('DDP_BAD_MESSAGE') when `rank` had no business sending it. */
  onResult(rank: number, msg: RingResultMessage): void {
    if (msg.generation !== this.generation || msg.step !== this.step) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `ring_result: for step ${msg.step + 1} of ring ${msg.generation}, but step ${this.step + 1} of ring ${this.generation} is running`);
    }
    const task = this.tasks.find((t) => t.id === msg.task);
    if (!task || task.rank !== rank || task.answer !== null) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `ring_result: task ${msg.task} of step ${this.step + 1} is not one rank ${rank} holds`);
    }
    if (msg.count !== task.indices.length) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `ring_result: task ${msg.task} has ${task.indices.length} samples, the answer counts ${msg.count}`);
    }
    task.answer = msg;
    task.answeredAt = this.clock();
    this.answered += 1;
    if (this.complete) this.finishedAt = task.answeredAt;
  }

  /** Once complete: the verdict on the replicas (throws ReplicaMismatchError) and the step's figures. */
  result(): RingStepResult {
    if (!this.complete) throw new Error(`step ${this.step + 1}: result() before every member answered`);
    const answers = this.tasks.map((t) => t.answer as RingResultMessage);
    const hashes = this.tasks.map((t) => ({ rank: t.rank, hash: (t.answer as RingResultMessage).hash }));
    if (hashes.some((h) => h.hash !== hashes[0]!.hash)) throw new ReplicaMismatchError(this.step, hashes);
    let lossSum = 0;
    for (const a of answers) lossSum += a.lossSum;
    const n = answers.length;
    const mean = (f: (a: RingResultMessage, t: RingTask) => number) => this.tasks.reduce((acc, t) => acc + f(t.answer as RingResultMessage, t), 0) / n;
    const transfer = Math.min(...answers.map((a) => a.allreduceMs));
    const parts = (a: RingResultMessage) => a.prepareMs + a.computeMs + a.allreduceMs + a.optimizerMs;
    // Steady state: each member's cycle since its previous answer is the step as it lived it.
    const cycles = answers.every((a) => a.cycleMs > 0);
    const timing = {
      prepare: mean((a) => a.prepareMs),
      compute: mean((a) => a.computeMs),
      allreduce: transfer,
      waiting: mean((a, t) => a.allreduceMs - transfer + (cycles ? 0 : this.finishedAt - t.answeredAt)),
      optimizer: mean((a) => a.optimizerMs),
      coordinator: mean((a, t) => {
        if (cycles) return Math.max(0, a.cycleMs - parts(a));
        const outside = t.answeredAt - this.dispatchedAt - a.busyMs; // messages in transit, and the coordinator's side
        const inside = a.busyMs - parts(a); // the worker's message handling
        return Math.max(0, outside) + Math.max(0, inside);
      }),
    };
    return { lossSum, hash: hashes[0]!.hash, hashes, timing, fromCycles: cycles, gradientBytes: mean((a) => a.bytesSent) };
  }
}
