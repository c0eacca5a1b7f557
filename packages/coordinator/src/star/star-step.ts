/**
 * One optimizer step across the workers, as a state machine with no socket: the executor feeds it
 * what happened (a gradient arrived, a worker was lost, a worker joined) and sends the work orders it
 * returns. Tests drive it the same way, message by message.
 *
 * The step protocol:
 *   1. The global batch is split into one shard per live worker, sizes within one sample of each
 *      other, shard k to the k-th live rank in rank order (`shardBatch`). With reduction 'exact' the
 *      sizes are within one micro-shard (MICRO_SHARD samples) and every shard is a whole number of
 *      micro-shards from a micro-shard boundary; later steps only move whole shards, so every
 *      micro-shard is computed as the same bits wherever it goes.
 *   2. Each shard becomes a task with a unique id; the worker gets {step, task, weights, indices}.
 *      A rank the executor names as behind (a straggler that still owes answers from earlier steps,
 *      step 4b) gets no task: its shard goes to the live rank with the fewest tasks (lowest on a
 *      tie) among the others, if there is one. Who computes a shard never changes the split. Nor
 *      is a rank behind chosen to take over a task (4a) or to back one up (4b) while another can.
 *   3. A worker answers each task with the gradient SUM over its shard. An answer is taken only from
 *      a rank holding that task (its holder, or its backup: 4b), once per rank, for this step, with
 *      the shard's sample count; anything else is a protocol violation (the executor disconnects the
 *      sender). The first answer to a task is used; the other holder's answer, when it comes, is
 *      late: discarded quietly (both computed the same shard at the same weights: the same bits).
 *   4. a. A worker lost before answering gives its unanswered tasks to their backup, if they have
 *         one, else, whole, to the live worker with the fewest open tasks (lowest rank on a tie).
 *         With no live worker they wait for one to join.
 *      b. Stragglers (--straggler-factor): a task held longer than the threshold the executor gives
 *         (`backups`) is ALSO given to a live worker with no open task in this step (lowest rank
 *         first), at most one backup per task. The executor keeps the straggler out of the next
 *         steps (step 2) until it has answered every work order it was given.
 *   5. When every shard has an answer, the sums are added in SHARD order (which is rank order at the
 *      start of the step), so the result does not depend on who computed what or when answers
 *      arrived. The round completes exactly once; the job loop then applies Adam once. With
 *      --compress fp16 the answers are float16 bits, widened and added in float32 in the same order.
 *      With reduction 'exact' each used answer is an exact-sum encoding of its shard's gradient and
 *      loss sums (model/reduction.ts), added into one ExactAccumulator as it arrives (the order is
 *      irrelevant: the sum is exact) and rounded to float32 once in result().
 *
 * Answers for a step that is over (late answers of a backed-up shard) never reach a StarStep: the
 * executor discards those of the work orders it issued to the sender, and refuses any other.
 */
import {
  EXACT_LENGTH,
  EXACT_LOSS,
  ExactSumFormatError,
  ProtocolError,
  addFp16Into,
  encodedRange,
  exactAccumulator,
  shardBatch,
  shardUnit,
  type ExactAccumulator,
  type GradientMessage,
  type RankTiming,
  type Reduction,
} from '@ddp/core';

export interface StepTask {
  /** Unique across the run. */
  id: number;
  /** Shard number in this step (the order of summation). */
  shard: number;
  indices: Uint32Array;
  /** Rank holding the task, or null while no worker is left to take it. */
  rank: number | null;
  /** Ranks that held it before and were lost. */
  lostBy: number[];
  /** ms timestamps (performance.now()) of the latest assignment to `rank` and of the answer. */
  assignedAt: number;
  /** A second rank also computing it because `rank` straggled (step 4b), and since when; null: none. */
  backup: number | null;
  backupAt: number;
  answer: GradientMessage | null;
  answeredAt: number;
  /** The rank whose answer was used (-1 before), and every holder that answered (the used one and a late one). */
  answeredBy: number;
  answeredRanks: number[];
}

/** What became of an answer: used, or late (the other holder answered first) and discarded. */
export type GradientVerdict = 'accepted' | 'late';

export interface Assignment {
  rank: number;
  task: StepTask;
}

export interface RoundResult {
  /** Sum of the shard gradients, in shard order (a fresh array); with reduction 'exact' the exact sum rounded once. */
  grad: Float32Array;
  lossSum: number;
  /**
   * Per-task means, in ms, of: compute (the worker's own measure), communication (round trip minus
   * compute: encoding, transfer, decoding) and waiting (from the answer to the last answer: time the
   * worker idled while the slowest finished). Per task they add up to the round's duration.
   */
  timing: { compute: number; communication: number; waiting: number };
  /** The same per rank that answered (a rank that took over a lost rank's task adds both), in rank order. */
  ranks: RankTiming[];
}

/** Hands out task ids that stay unique across rounds. */
export class TaskIds {
  private next = 0;
  take(): number {
    return this.next++;
  }
}

export class StarStep {
  readonly tasks: StepTask[];
  private readonly live: Set<number>;
  /** Ranks the executor says are behind (step 2): not picked while another rank can be. */
  private behind: ReadonlySet<number> = new Set();
  private answered = 0;
  private startedAt: number;
  private finishedAt = -1;
  /** Reduction 'exact': the exact sum of the used answers so far. */
  private readonly exact: ExactAccumulator | null;

  constructor(
    readonly step: number,
    readonly epoch: number,
    batch: Uint32Array,
    liveRanks: readonly number[],
    ids: TaskIds,
    private readonly clock: () => number = () => performance.now(),
    readonly reduction: Reduction = 'fast',
  ) {
    this.startedAt = clock();
    this.exact = reduction === 'exact' ? exactAccumulator() : null;
    this.live = new Set(liveRanks);
    const ranks = [...this.live].sort((a, b) => a - b);
    // With no live worker the batch stays one shard until someone joins.
    const shards = shardBatch(batch, Math.max(1, ranks.length), shardUnit(reduction));
    // A batch smaller than the worker count leaves some ranks idle: empty shards add nothing.
    this.tasks = shards.flatMap((indices, shard) => (indices.length === 0 ? [] : [{ indices, shard }])).map(({ indices, shard }) => ({
      id: ids.take(),
      shard,
      indices,
      rank: ranks[shard] ?? null,
      lostBy: [],
      assignedAt: this.startedAt,
      backup: null,
      backupAt: -1,
      answer: null,
      answeredAt: -1,
      answeredBy: -1,
      answeredRanks: [],
    }));
  }

  /**
   * Step 2: the first work orders (tasks with no live rank wait for `onJoin`). Ranks in `behind` get
   * none if others can take them; the step keeps reading the set (the executor updates it) whenever
   * it picks a rank.
   */
  start(behind: ReadonlySet<number> = new Set()): Assignment[] {
    this.behind = behind;
    if ([...this.live].some((r) => !behind.has(r))) {
      for (const task of this.tasks) if (task.rank !== null && behind.has(task.rank)) task.rank = this.leastLoaded();
    }
    return this.tasks.filter((t) => t.rank !== null).map((task) => ({ rank: task.rank as number, task }));
  }

  get complete(): boolean {
    return this.answered === this.tasks.length;
  }

  /** Tasks not answered and held by no one: non-empty means the round waits for a worker. */
  get orphaned(): StepTask[] {
    return this.tasks.filter((t) => t.answer === null && t.rank === null);
  }

  /**
   * Step 3. Returns 'late' for a holder's answer to a task the other holder already answered (the
   * caller discards it). Throws ProtocolError('DDP_BAD_MESSAGE') when `rank` had no business sending it.
   */
  onGradient(rank: number, msg: GradientMessage): GradientVerdict {
    const task = this.tasks.find((t) => t.id === msg.task);
    if (msg.step !== this.step) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `gradient: for step ${msg.step}, but step ${this.step} is running`);
    }
    if (!task || (task.rank !== rank && task.backup !== rank) || task.answeredRanks.includes(rank)) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `gradient: task ${msg.task} of step ${this.step} is not one rank ${rank} holds`);
    }
    if (msg.count !== task.indices.length) {
      throw new ProtocolError('DDP_BAD_MESSAGE', `gradient: task ${msg.task} has ${task.indices.length} samples, the answer counts ${msg.count}`);
    }
    if (task.answer === null && this.exact) this.addExact(rank, msg);
    task.answeredRanks.push(rank);
    if (task.answer !== null) return 'late';
    task.answer = msg;
    task.answeredBy = rank;
    task.answeredAt = this.clock();
    this.answered += 1;
    if (this.complete) this.finishedAt = task.answeredAt;
    return 'accepted';
  }

  /** For an answered task: ms from the assignment to the rank whose answer was used to that answer. */
  shardMs(task: StepTask): number {
    return task.answeredAt - (task.answeredBy === task.backup ? task.backupAt : task.assignedAt);
  }

  /** Step 4a: `rank` is gone; returns the work orders that replace its unanswered tasks. */
  onLost(rank: number): Assignment[] {
    this.live.delete(rank);
    const out: Assignment[] = [];
    for (const task of this.tasks) {
      if (task.answer !== null) continue;
      if (task.backup === rank) task.backup = null; // its holder still computes it
      if (task.rank !== rank) continue;
      task.lostBy.push(rank);
      if (task.backup !== null) {
        // The backup already computes it: it becomes the holder, with no new work order.
        task.rank = task.backup;
        task.assignedAt = task.backupAt;
        task.backup = null;
        continue;
      }
      task.rank = null;
      const to = this.leastLoaded();
      if (to !== null) out.push(this.assign(task, to));
    }
    return out;
  }

  /**
   * Step 4b: every unanswered task with no backup, held for `thresholdMs` or longer, is also given
   * to a live rank with no open task in this step (lowest first), while there are such ranks.
   * Returns the backup work orders (the straggler is `task.rank`, held since `task.assignedAt`).
   */
  backups(thresholdMs: number): Assignment[] {
    const now = this.clock();
    const idle = [...this.live].filter((r) => this.openTasks(r) === 0 && !this.behind.has(r)).sort((a, b) => a - b);
    const out: Assignment[] = [];
    for (const task of this.tasks) {
      if (idle.length === 0) break;
      if (task.answer !== null || task.rank === null || task.backup !== null || now - task.assignedAt < thresholdMs) continue;
      const to = idle.shift() as number;
      task.backup = to;
      task.backupAt = now;
      out.push({ rank: to, task });
    }
    return out;
  }

  /** When the next task without a backup turns overdue for `thresholdMs` (ms timestamp), or null if none can. */
  nextOverdue(thresholdMs: number): number | null {
    let at: number | null = null;
    for (const t of this.tasks) {
      if (t.answer !== null || t.rank === null || t.backup !== null) continue;
      at = Math.min(at ?? Infinity, t.assignedAt + thresholdMs);
    }
    return at;
  }

  /** Ranks holding an unanswered task (as holder or backup), ascending: who the step waits for. */
  get waitingFor(): number[] {
    const out = new Set<number>();
    for (const t of this.tasks) {
      if (t.answer !== null) continue;
      if (t.rank !== null) out.add(t.rank);
      if (t.backup !== null) out.add(t.backup);
    }
    return [...out].sort((a, b) => a - b);
  }

  /** A worker joined during the step: it takes orphaned tasks, if any (otherwise it waits for the next step). */
  onJoin(rank: number): Assignment[] {
    this.live.add(rank);
    const out: Assignment[] = [];
    for (const task of this.orphaned) out.push(this.assign(task, this.leastLoaded() as number));
    return out;
  }

  /** Step 5: the rank-order sum. Only once complete. */
  result(): RoundResult {
    if (!this.complete) throw new Error(`step ${this.step}: result() before every shard was answered`);
    const ordered = [...this.tasks].sort((a, b) => a.shard - b.shard);
    let grad: Float32Array;
    let lossSum = 0;
    if (this.exact) {
      const rounded = this.exact.toFloat32();
      grad = rounded.subarray(0, EXACT_LOSS);
      lossSum = rounded[EXACT_LOSS]!;
    } else {
      grad = new Float32Array((ordered[0].answer as GradientMessage).grad.length);
      for (const t of ordered) {
        const g = (t.answer as GradientMessage).grad;
        if (g instanceof Uint16Array) addFp16Into(grad, g);
        else if (g instanceof Float32Array) for (let i = 0; i < grad.length; i++) grad[i] += g[i];
        else throw new Error(`step ${this.step}: an exact-sum answer in a '${this.reduction}' step`);
        lossSum += (t.answer as GradientMessage).lossSum;
      }
    }
    let compute = 0;
    let communication = 0;
    let waiting = 0;
    const ranks: RankTiming[] = [];
    for (const t of ordered) {
      const a = t.answer as GradientMessage;
      const roundTrip = this.shardMs(t);
      const comm = Math.max(0, roundTrip - a.computeMs);
      const wait = this.finishedAt - t.answeredAt;
      compute += a.computeMs;
      communication += comm;
      waiting += wait;
      const mine = ranks.find((r) => r.rank === t.answeredBy);
      if (mine) {
        mine.computeMs += a.computeMs;
        mine.allreduceMs += comm;
        mine.waitingMs = Math.min(mine.waitingMs, wait);
      } else ranks.push({ rank: t.answeredBy, computeMs: a.computeMs, allreduceMs: comm, waitingMs: wait });
    }
    ranks.sort((a, b) => a.rank - b.rank);
    const n = ordered.length;
    return { grad, lossSum, timing: { compute: compute / n, communication: communication / n, waiting: waiting / n }, ranks };
  }

  /** Reduction 'exact': checks the answer's encoding (range [0, EXACT_LENGTH)) and adds it; a bad one is a protocol violation. */
  private addExact(rank: number, msg: GradientMessage): void {
    const bad = (why: string) => new ProtocolError('DDP_BAD_MESSAGE', `gradient: task ${msg.task} of step ${this.step} from rank ${rank}: ${why}`);
    if (!(msg.grad instanceof Uint8Array)) throw bad('--reduction exact needs an exact-sum encoding');
    try {
      const { start, end } = encodedRange(msg.grad);
      if (start !== 0 || end !== EXACT_LENGTH) throw new ExactSumFormatError(`the encoding covers [${start}, ${end}), expected [0, ${EXACT_LENGTH})`);
      (this.exact as ExactAccumulator).addEncoded(msg.grad); // decodes fully before adding: a bad one adds nothing
    } catch (err) {
      if (!(err instanceof ExactSumFormatError)) throw err;
      throw bad(`bad exact-sum encoding: ${err.message}`);
    }
  }

  /** The live rank with the fewest open tasks (lowest on a tie), preferring ranks not behind; null with none live. */
  private leastLoaded(): number | null {
    const ready = [...this.live].filter((r) => !this.behind.has(r));
    let best: number | null = null;
    let bestLoad = Infinity;
    for (const rank of (ready.length > 0 ? ready : [...this.live]).sort((a, b) => a - b)) {
      const load = this.openTasks(rank);
      if (load < bestLoad) {
        best = rank;
        bestLoad = load;
      }
    }
    return best;
  }

  /** Unanswered tasks `rank` holds or backs up. */
  private openTasks(rank: number): number {
    return this.tasks.filter((t) => t.answer === null && (t.rank === rank || t.backup === rank)).length;
  }

  private assign(task: StepTask, rank: number): Assignment {
    task.rank = rank;
    task.assignedAt = this.clock();
    return { rank, task };
  }
}
