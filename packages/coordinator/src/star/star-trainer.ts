/**
 * Star mode: the coordinator holds the weights and Adam. For each step it turns the plan's global
 * batch into a StarStep (see star-step.ts for the step protocol), sends the step's work orders
 * (weights and shard indices) to the workers, feeds the step what the pool reports (gradients,
 * joins, losses), adds the gradient sums in shard order once every shard is answered, and applies
 * Adam. The one timeout that keeps a run from hanging: with no worker left, a new one must join
 * within `workerTimeoutMs`.
 *
 * Stragglers (`stragglers`): every used answer's shard time (work order sent to gradient back) goes
 * into a window of recent times; a shard out longer than F x their median (StragglerThreshold) is
 * also given to a worker that has finished its own (StarStep.backups). The answer that comes second
 * is discarded, in this step or after it (`issued`). A rank whose shard was backed up is behind: it
 * gets no new shard (StarStep.start gives its shard to another rank from the start) until it has
 * answered every work order it was given, so that a frozen or persistently slow worker neither
 * delays every step by the threshold nor piles up work orders. One `straggler` event per episode
 * (from the first backup until the rank has caught up).
 */
import { MSG, ProtocolError, RunError, TrainingPlan, type Evaluation, type GradientMessage, type Reduction, type Split } from '@ddp/core';
import { HeldWeightsTrainer } from '../job/held-weights.js';
import { StragglerThreshold, type StragglerOptions } from '../job/straggler-threshold.js';
import type { StepReport } from '../job/trainer.js';
import type { ModeMessage } from '../net/coordinator-server.js';
import type { WorkerPool } from '../net/worker-pool.js';
import { StarStep, TaskIds, type Assignment } from './star-step.js';

export interface StarTrainerOptions {
  /** With no worker left (mid-step or between steps), fail if none joins within this (ms). */
  workerTimeoutMs: number;
  plan: { seed: number; batchSize: number };
  train: Split;
  /** --serve-data: the workers have no test split (the job loop evaluates). */
  serveData?: boolean;
  /**
   * --straggler-factor F (> 1): a shard out longer than F x the median of recent shard times is also
   * given to a worker done with its own. Absent: no backups. A number is the factor; an object also
   * sets the window, the samples needed first and the floor (StragglerOptions).
   */
  stragglers?: number | StragglerOptions;
  /** The job's reduction ('fast' if left out here; the CLI always passes the job's, exact by default): 'exact' cuts shards on micro-shard boundaries and adds exact sums. */
  reduction?: Reduction;
}

interface Pending {
  round: StarStep;
  params: Float32Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class StarTrainer extends HeldWeightsTrainer {
  readonly mode = 'star';
  private readonly ids = new TaskIds();
  private readonly plan: TrainingPlan;
  /** Bytes and number of the gradient frames accepted in the running step. */
  private frameBytes = 0;
  private frames = 0;
  private pending: Pending | null = null;
  private waitTimer: NodeJS.Timeout | null = null;
  private backupTimer: NodeJS.Timeout | null = null;
  private readonly stragglers: StragglerThreshold | null;
  /**
   * Per rank, the tasks it was sent and has not answered yet. An answer to one of them for a step
   * that is over is late (its shard was backed up and the other answer used): discarded quietly. An
   * answer to anything else is a protocol violation.
   */
  private readonly issued = new Map<number, Set<number>>();
  /** Ranks whose shard was backed up and that still owe answers: they get no new shard. */
  private readonly behind = new Set<number>();
  private closed = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly opts: StarTrainerOptions,
  ) {
    super();
    this.plan = new TrainingPlan({ ...opts.plan, trainCount: opts.train.count });
    const s = opts.stragglers;
    this.stragglers = s === undefined ? null : new StragglerThreshold(typeof s === 'number' ? { factor: s } : s);
    pool.currentStep = () => (this.pending ? this.pending.round.step + 1 : this.steps + 1);
    pool.setHandler({
      joined: (info) => {
        if (!this.pending) return;
        this.dispatch(this.pending.round.onJoin(info.rank));
        this.checkOrphans();
        this.checkStragglers();
      },
      lost: (info) => {
        this.issued.delete(info.rank); // the rank may be reused by a newcomer: it owes nothing
        this.behind.delete(info.rank);
        if (!this.pending) return;
        this.dispatch(this.pending.round.onLost(info.rank));
        this.checkOrphans();
        this.checkStragglers();
      },
      message: (rank, msg, bytes) => this.onMessage(rank, msg, bytes),
    });
  }

  get workers(): number {
    return this.pool.size;
  }


  async run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void> {
    const { params, adam } = this.held;
    while (adam.steps < until && !signal?.aborted) {
      if (this.closed) throw new Error('StarTrainer: closed');
      // Elastic membership: below --min-workers the run pauses between steps. (With none left at all
      // and --min-workers 1, the step starts and waits for a worker to take its shards: checkOrphans.)
      if (this.pool.minWorkers > 1 && this.pool.size < this.pool.minWorkers) {
        await this.pool.quorum(adam.steps + 1, this.opts.workerTimeoutMs, signal);
        if (signal?.aborted) break;
      }
      const { step, epoch, batch } = this.plan.at(adam.steps);
      const r = await this.gradientSum(params, step, epoch, batch);
      const t0 = performance.now();
      adam.stepFromSum(params, r.grad, batch.length);
      onStep({ step, epoch, lossSum: r.lossSum, samples: batch.length, timing: { ...r.timing, optimizer: performance.now() - t0 }, gradientBytes: r.gradientBytes, ranks: r.ranks });
    }
  }

  /** The workers evaluate shares of the test split at the coordinator's weights, sent along. */
  async evaluate(test: Split): Promise<Evaluation | null> {
    const ranks = this.pool.ranks();
    if (ranks.length === 0 || this.opts.serveData) return null;
    const { params, steps } = this.held;
    return this.pool.evaluate(ranks, test.count, (request, start, end) => ({ type: MSG.EVALUATE, request, steps, params, start, end }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearWait();
    this.clearBackupTimer();
    await this.pool.close('the job is done');
  }

  /** One step's gradient sum over the workers (StarStep's protocol). */
  private async gradientSum(params: Float32Array, step: number, epoch: number, batch: Uint32Array) {
    const round = new StarStep(step, epoch, batch, this.pool.ranks(), this.ids, undefined, this.opts.reduction ?? 'fast');
    const finished = new Promise<void>((resolve, reject) => {
      this.pending = { round, params, resolve, reject };
    });
    this.frameBytes = 0;
    this.frames = 0;
    const stopWatch = this.pool.watchStall(
      () => step + 1,
      () => round.waitingFor,
    );
    try {
      this.dispatch(round.start(this.behind));
      this.checkOrphans();
      this.checkStragglers();
      await finished;
    } finally {
      stopWatch();
      this.pending = null;
      this.clearWait();
      this.clearBackupTimer();
    }
    const t0 = performance.now();
    const r = round.result();
    const reduceMs = performance.now() - t0;
    return {
      grad: r.grad,
      lossSum: r.lossSum,
      timing: { ...r.timing, communication: r.timing.communication + reduceMs } as Record<string, number>,
      gradientBytes: this.frames > 0 ? this.frameBytes / this.frames : 0,
      ranks: r.ranks,
    };
  }

  private dispatch(orders: Assignment[]): void {
    const p = this.pending;
    if (!p) return;
    for (const { rank, task } of orders) {
      // A send to a socket that just died is dropped; its `lost` event reassigns the task.
      let owed = this.issued.get(rank);
      if (!owed) this.issued.set(rank, (owed = new Set()));
      owed.add(task.id);
      this.pool.send(rank, { type: MSG.WORK, step: p.round.step, epoch: p.round.epoch, task: task.id, params: p.params, indices: task.indices });
    }
  }

  private onMessage(rank: number, msg: ModeMessage, bytes: number): void {
    if (msg.type !== MSG.GRADIENT) {
      this.pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', `${msg.type}: not part of --allreduce star`));
      return;
    }
    const owes = this.issued.get(rank);
    const owed = owes?.delete(msg.task) ?? false;
    if (owed && owes!.size === 0 && this.behind.delete(rank)) this.pool.note(`rank ${rank} caught up: it gets shards again`);
    const p = this.pending;
    if (!p || msg.step !== p.round.step) {
      // Late: a work order this rank was given, for a step that is over (another answer was used).
      if (owed) return;
      this.pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', p ? `gradient: for step ${msg.step}, but step ${p.round.step} is running` : `gradient: for task ${msg.task}, but no step is running`));
      return;
    }
    let verdict;
    try {
      verdict = p.round.onGradient(rank, msg as GradientMessage);
    } catch (err) {
      this.pool.drop(rank, err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err)));
      return;
    }
    if (verdict === 'late') return; // the other holder answered first: the same bits, discarded
    const task = p.round.tasks.find((t) => t.id === msg.task)!;
    this.stragglers?.record(p.round.shardMs(task));
    this.frameBytes += bytes;
    this.frames += 1;
    if (p.round.complete) p.resolve();
    else this.checkStragglers();
  }

  /** Gives overdue shards a backup (StarStep step 4b), says so, and sets the timer for the next one due. */
  private checkStragglers(): void {
    const p = this.pending;
    const threshold = this.stragglers?.thresholdMs ?? null;
    this.clearBackupTimer();
    if (!p || threshold === null || p.round.complete) return;
    const orders = p.round.backups(threshold);
    this.dispatch(orders);
    const medianMs = this.stragglers!.medianMs!;
    for (const { rank: backupRank, task } of orders) {
      const rank = task.rank as number;
      if (this.behind.has(rank)) continue; // named at the start of its episode
      this.behind.add(rank);
      const host = this.pool.info(rank)?.name;
      this.pool.event({ event: 'straggler', step: p.round.step + 1, rank, ...(host ? { host } : {}), waitedMs: Math.round(task.backupAt - task.assignedAt), medianMs: Math.round(medianMs), backupRank });
    }
    // Overdue tasks with no idle rank to back them up wait for the next answer (which frees a rank).
    const at = p.round.nextOverdue(threshold);
    const delay = at === null ? -1 : at - performance.now();
    if (delay > 0) this.backupTimer = setTimeout(() => this.checkStragglers(), Math.ceil(delay));
  }

  private clearBackupTimer(): void {
    if (this.backupTimer) clearTimeout(this.backupTimer);
    this.backupTimer = null;
  }

  /** Starts (or stops) the clock on a round that has shards no live worker can take. */
  private checkOrphans(): void {
    const p = this.pending;
    if (!p || p.round.orphaned.length === 0) {
      this.clearWait();
      return;
    }
    if (this.waitTimer) return;
    const seconds = this.opts.workerTimeoutMs / 1000;
    this.pool.note(`no worker left at step ${p.round.step + 1}: waiting up to ${seconds} s for one to join (--worker-timeout)`);
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      p.reject(new RunError('DDP_NO_WORKERS', `no worker left at step ${p.round.step + 1} and none joined within ${seconds} s (--worker-timeout); the run cannot go on`));
    }, this.opts.workerTimeoutMs);
  }

  private clearWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
  }
}
