/**
 * The StepExecutor for N workers over WebSockets: it turns each step into a StepRound (see
 * step-round.ts for the step protocol), sends the round's work orders through the server, feeds it
 * what the server reports (gradients, losses, joins) and resolves with the rank-order sum once every
 * shard is answered. It also reports worker_joined / worker_lost events and enforces the one timeout
 * that keeps a run from hanging: with no worker left, a new one must join within `workerTimeoutMs`.
 */
import { MSG, ProtocolError, type DdpEvent, type GradientMessage, type Split, type WorkMessage } from '@ddp/core';
import type { StepExecutor, StepResult, StepWork } from '../job/step-executor.js';
import type { CoordinatorServer, LossCode, WorkerInfo } from './coordinator-server.js';
import { StepRound, TaskIds, type Assignment } from './step-round.js';
import { JoinWaiters } from './join-waiters.js';

export interface WsExecutorOptions {
  /** With no worker left (mid-step or between steps), fail if none joins within this (ms). */
  workerTimeoutMs: number;
  /** --serve-data: the training split whose pixels travel with each shard. */
  serveData?: Split;
  /** Where worker_joined / worker_lost go (the job's reporter). */
  onEvent?: (e: DdpEvent) => void;
  /** Notes for people (who was refused and why, who a slow step is waiting for). */
  onInfo?: (message: string) => void;
  /** Name the ranks a step still waits for once it has run this long, and again every such period (default 30000 ms). */
  stallWarnMs?: number;
}

interface Pending {
  round: StepRound;
  params: Float32Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class WsExecutor implements StepExecutor {
  readonly allreduce = 'star';
  private readonly ids = new TaskIds();
  /** Bytes and number of the gradient frames accepted in the running step. */
  private frameBytes = 0;
  private frames = 0;
  private pending: Pending | null = null;
  private stepsDone = 0;
  private waitTimer: NodeJS.Timeout | null = null;
  private readonly joinWaiters = new JoinWaiters(() => this.workers);
  private closed = false;

  constructor(
    private readonly server: CoordinatorServer,
    private readonly opts: WsExecutorOptions,
  ) {
    server.addListener({
      joined: (info) => this.onJoined(info),
      gradient: (rank, msg, bytes) => this.onGradient(rank, msg, bytes),
      lost: (info, reason, code) => this.onLost(info, reason, code),
      refused: (remote, err) => opts.onInfo?.(`refused a connection from ${remote}: ${err.code}: ${err.message}`),
    });
  }

  get workers(): number {
    return this.server.ranks().length;
  }

  /** Resolves once `n` workers are members; rejects after `timeoutMs` or when `signal` aborts. */
  waitForWorkers(n: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.joinWaiters.wait(n, timeoutMs, signal);
  }

  async gradientSum(params: Float32Array, work: StepWork): Promise<StepResult> {
    if (this.closed) throw new Error('WsExecutor: closed');
    const round = new StepRound(work.step, work.epoch, work.batch, this.server.ranks(), this.ids);
    const finished = new Promise<void>((resolve, reject) => {
      this.pending = { round, params, resolve, reject };
    });
    this.frameBytes = 0;
    this.frames = 0;
    const stallMs = this.opts.stallWarnMs ?? 30000;
    const stall = setInterval(() => {
      const waiting = [...new Set(round.tasks.filter((t) => t.answer === null && t.rank !== null).map((t) => t.rank))];
      if (waiting.length > 0) this.opts.onInfo?.(`step ${work.step + 1}: still waiting for rank(s) ${waiting.join(', ')} after ${(stallMs / 1000).toFixed(0)} s or more`);
    }, stallMs);
    try {
      this.dispatch(round.start());
      this.checkOrphans();
      await finished;
    } finally {
      clearInterval(stall);
      this.pending = null;
      this.clearWait();
    }
    const t0 = performance.now();
    const r = round.result();
    const reduceMs = performance.now() - t0;
    this.stepsDone = work.step + 1;
    return {
      grad: r.grad,
      lossSum: r.lossSum,
      timing: { ...r.timing, communication: r.timing.communication + reduceMs },
      gradientBytes: this.frames > 0 ? this.frameBytes / this.frames : 0,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearWait();
    await this.server.close('the job is done');
  }

  private dispatch(orders: Assignment[]): void {
    const p = this.pending;
    if (!p) return;
    for (const { rank, task } of orders) {
      const msg: WorkMessage = { type: MSG.WORK, step: p.round.step, epoch: p.round.epoch, task: task.id, params: p.params, indices: task.indices };
      const split = this.opts.serveData;
      if (split) {
        const px = split.rows * split.cols;
        msg.images = new Uint8Array(task.indices.length * px);
        msg.labels = new Uint8Array(task.indices.length);
        task.indices.forEach((idx, i) => {
          msg.images!.set(split.images.subarray(idx * px, (idx + 1) * px), i * px);
          msg.labels![i] = split.labels[idx];
        });
      }
      // A send to a socket that just died is dropped; its `lost` event reassigns the task.
      this.server.send(rank, msg);
    }
  }

  private onGradient(rank: number, msg: GradientMessage, bytes: number): void {
    const p = this.pending;
    if (!p) {
      this.server.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', `gradient: for task ${msg.task}, but no step is running`));
      return;
    }
    try {
      p.round.onGradient(rank, msg);
    } catch (err) {
      this.server.drop(rank, err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err)));
      return;
    }
    this.frameBytes += bytes;
    this.frames += 1;
    if (p.round.complete) p.resolve();
  }

  private onJoined(info: WorkerInfo): void {
    this.opts.onEvent?.({ event: 'worker_joined', rank: info.rank, workers: this.workers, backend: info.backend });
    this.joinWaiters.notify();
    if (this.pending) {
      this.dispatch(this.pending.round.onJoin(info.rank));
      this.checkOrphans();
    }
  }

  private onLost(info: WorkerInfo, reason: string, code: LossCode): void {
    const remaining = this.workers;
    const step = this.pending ? this.pending.round.step + 1 : this.stepsDone + 1;
    if (!this.closed) {
      this.opts.onEvent?.({ event: 'worker_lost', rank: info.rank, step, reason: `${code}: ${reason}`, workers: remaining });
    }
    if (this.pending) {
      this.dispatch(this.pending.round.onLost(info.rank));
      this.checkOrphans();
    }
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
    this.opts.onInfo?.(`no worker left at step ${p.round.step + 1}: waiting up to ${seconds} s for one to join (--worker-timeout)`);
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      p.reject(new Error(`no worker left at step ${p.round.step + 1} and none joined within ${seconds} s (--worker-timeout); the run cannot go on`));
    }, this.opts.workerTimeoutMs);
  }

  private clearWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
  }
}
