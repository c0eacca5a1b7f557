/**
 * Star mode: the coordinator holds the weights and Adam. For each step it turns the plan's global
 * batch into a StarStep (see star-step.ts for the step protocol), sends the step's work orders
 * (weights and shard indices) to the workers, feeds the step what the pool reports (gradients,
 * joins, losses), adds the gradient sums in shard order once every shard is answered, and applies
 * Adam. The one timeout that keeps a run from hanging: with no worker left, a new one must join
 * within `workerTimeoutMs`.
 */
import { MSG, ProtocolError, RunError, TrainingPlan, type Evaluation, type GradientMessage, type Split } from '@ddp/core';
import { HeldWeightsTrainer } from '../job/held-weights.js';
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
  private closed = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly opts: StarTrainerOptions,
  ) {
    super();
    this.plan = new TrainingPlan({ ...opts.plan, trainCount: opts.train.count });
    pool.currentStep = () => (this.pending ? this.pending.round.step + 1 : this.steps + 1);
    pool.setHandler({
      joined: (info) => {
        if (!this.pending) return;
        this.dispatch(this.pending.round.onJoin(info.rank));
        this.checkOrphans();
      },
      lost: (info) => {
        if (!this.pending) return;
        this.dispatch(this.pending.round.onLost(info.rank));
        this.checkOrphans();
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
    await this.pool.close('the job is done');
  }

  /** One step's gradient sum over the workers (StarStep's protocol). */
  private async gradientSum(params: Float32Array, step: number, epoch: number, batch: Uint32Array) {
    const round = new StarStep(step, epoch, batch, this.pool.ranks(), this.ids);
    const finished = new Promise<void>((resolve, reject) => {
      this.pending = { round, params, resolve, reject };
    });
    this.frameBytes = 0;
    this.frames = 0;
    const stopWatch = this.pool.watchStall(
      () => `step ${step + 1}`,
      () => [...new Set(round.tasks.filter((t) => t.answer === null && t.rank !== null).map((t) => t.rank as number))],
    );
    try {
      this.dispatch(round.start());
      this.checkOrphans();
      await finished;
    } finally {
      stopWatch();
      this.pending = null;
      this.clearWait();
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
      this.pool.send(rank, { type: MSG.WORK, step: p.round.step, epoch: p.round.epoch, task: task.id, params: p.params, indices: task.indices });
    }
  }

  private onMessage(rank: number, msg: ModeMessage, bytes: number): void {
    const p = this.pending;
    if (msg.type !== MSG.GRADIENT || !p) {
      this.pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', msg.type === MSG.GRADIENT ? `gradient: for task ${msg.task}, but no step is running` : `${msg.type}: not part of --allreduce star`));
      return;
    }
    try {
      p.round.onGradient(rank, msg as GradientMessage);
    } catch (err) {
      this.pool.drop(rank, err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err)));
      return;
    }
    this.frameBytes += bytes;
    this.frames += 1;
    if (p.round.complete) p.resolve();
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
