/**
 * The workers of a job, as every mode sees them: membership (who joined, who was lost and why),
 * the wait for the first workers, the stall inspector (the ranks a step waits for, each with its
 * host and the last message received from it), and the worker_joined / worker_lost / stall events.
 * The server (coordinator-server.ts) keeps the sockets and the heartbeats; the trainer of the mode
 * (star/, ring/) receives its messages through one handler.
 */
import { MSG, RunError, type DdpEvent, type EvaluateMessage, type Evaluation, type ProtocolError, type StallEvent } from '@ddp/core';
import type { CoordinatorServer, LossCode, ModeMessage, WorkerInfo } from './coordinator-server.js';
import { JoinWaiters } from './join-waiters.js';
import { ShardedEvaluation } from './sharded-evaluation.js';

export interface PoolHandler {
  joined?(info: WorkerInfo): void;
  lost?(info: WorkerInfo, reason: string, code: LossCode): void;
  message(rank: number, msg: ModeMessage, frameBytes: number): void;
}

export interface WorkerPoolOptions {
  /** Where worker_joined / worker_lost go (the job's reporter). */
  onEvent?: (e: DdpEvent) => void;
  /** Notes for people (who was refused and why, who a slow step is waiting for). */
  onInfo?: (message: string) => void;
  /** Name the ranks a step still waits for once it has waited this long, and again every such period (default 30000 ms; --stall-warning). */
  stallWarnMs?: number;
  /** --min-workers: below this many the run pauses (quorum()); default 1. */
  minWorkers?: number;
  /** How often a pause says how many workers are missing (default 5000 ms). */
  pauseStatusMs?: number;
}

/** The last message received from a worker: its type, the step it was about (1-based) if any, when (performance.now()). */
interface LastMessage {
  type: string;
  step: number | undefined;
  at: number;
}

/** "gradient for step 41", "ring_ready", "joined": what a worker was last heard doing. */
function describeLast(m: LastMessage): string {
  return m.step === undefined ? m.type : `${m.type} for step ${m.step}`;
}

export class WorkerPool {
  private handler: PoolHandler | null = null;
  private evaluation: ShardedEvaluation | null = null;
  private readonly joinWaiters = new JoinWaiters(() => this.size);
  private closed = false;
  /** Per live rank, the last message received from it (the stall inspector names it). */
  private readonly last = new Map<number, LastMessage>();
  /** The step (1-based) a loss is reported at: the trainer's current one. */
  currentStep: () => number = () => 0;

  constructor(
    readonly server: CoordinatorServer,
    private readonly opts: WorkerPoolOptions = {},
  ) {
    server.addListener({
      joined: (info) => {
        this.last.set(info.rank, { type: 'joined', step: undefined, at: performance.now() });
        opts.onEvent?.({ event: 'worker_joined', rank: info.rank, workers: this.size, backend: info.backend, host: info.name, ...(info.rankHint ? { rankHint: info.rankHint } : {}) });
        this.membership();
        this.joinWaiters.notify();
        this.handler?.joined?.(info);
      },
      lost: (info, reason, code) => {
        this.last.delete(info.rank);
        if (!this.closed) {
          opts.onEvent?.({ event: 'worker_lost', rank: info.rank, step: this.currentStep(), code, reason, workers: this.size });
          this.membership();
        }
        this.evaluation?.onLost(info.rank);
        this.handler?.lost?.(info, reason, code);
      },
      message: (rank, msg, bytes) => {
        const step = msg.type === MSG.GRADIENT || msg.type === MSG.RING_PROGRESS || (msg.type === MSG.RING_FAILED && msg.step >= 0) ? msg.step + 1 : undefined;
        this.last.set(rank, { type: msg.type, step, at: performance.now() });
        if (msg.type === MSG.EVALUATION && this.evaluation?.onMessage(rank, msg)) return;
        this.handler?.message(rank, msg, bytes);
      },
      refused: (remote, err: ProtocolError) => opts.onInfo?.(`refused a connection from ${remote}: ${err.code}: ${err.message}`),
    });
  }

  /** The trainer that takes the mode's messages. */
  setHandler(h: PoolHandler): void {
    this.handler = h;
  }

  get size(): number {
    return this.server.ranks().length;
  }

  /** Live ranks, ascending. */
  ranks(): number[] {
    return this.server.ranks();
  }

  info(rank: number): WorkerInfo | undefined {
    return this.server.info(rank);
  }

  send: CoordinatorServer['send'] = (rank, msg) => this.server.send(rank, msg);
  drop: CoordinatorServer['drop'] = (rank, err) => this.server.drop(rank, err);

  note(message: string): void {
    this.opts.onInfo?.(message);
  }

  private membership(): void {
    this.opts.onEvent?.({ event: 'membership', workers: this.size, ranks: this.ranks(), step: this.currentStep() });
  }

  get minWorkers(): number {
    return this.opts.minWorkers ?? 1;
  }

  /**
   * Elastic membership: resolves at once with --min-workers workers or more. Below that the run
   * pauses here: a `paused` event, a line every few seconds naming how many are missing, and
   * DDP_TOO_FEW_WORKERS after --worker-timeout (DDP_NO_WORKERS when none is left at all).
   */
  async quorum(step: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const min = this.minWorkers;
    if (this.size >= min || signal?.aborted) return;
    const seconds = timeoutMs / 1000;
    this.opts.onEvent?.({ event: 'paused', step, workers: this.size, minWorkers: min });
    const say = () => this.note(`paused at step ${step}: ${this.size} of at least ${min} worker(s) (--min-workers), ${min - this.size} missing; waiting up to ${seconds} s in all (--worker-timeout)`);
    say();
    const status = setInterval(say, this.opts.pauseStatusMs ?? 5000);
    try {
      await this.joinWaiters.wait(min, timeoutMs, signal);
    } catch (err) {
      if (signal?.aborted) return;
      const none = this.size === 0;
      throw new RunError(
        none ? 'DDP_NO_WORKERS' : 'DDP_TOO_FEW_WORKERS',
        none
          ? `no worker left at step ${step} and none joined within ${seconds} s (--worker-timeout); the run cannot go on`
          : `only ${this.size} worker(s) at step ${step}, fewer than --min-workers ${min}, for ${seconds} s (--worker-timeout); the run cannot go on`,
      );
    } finally {
      clearInterval(status);
    }
  }

  /** An event of the job (straggler, stall, ...), to the same place as worker_joined / worker_lost. */
  event(e: DdpEvent): void {
    this.opts.onEvent?.(e);
  }

  /** For the stall inspector: `rank`'s host and the last message received from it, and how long ago (ms). */
  lastHeard(rank: number, now = performance.now()): StallEvent['waitingFor'][number] {
    const m = this.last.get(rank);
    return { rank, host: this.info(rank)?.name ?? '?', last: m ? describeLast(m) : 'nothing', agoMs: m ? Math.round(now - m.at) : -1 };
  }

  /** Resolves once `n` workers are members; rejects after `timeoutMs` (--join-timeout) or when `signal` aborts. */
  waitForWorkers(n: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.joinWaiters.wait(n, timeoutMs, signal);
  }

  /**
   * Evaluates a split of `count` samples on `ranks`, each a share (sharded-evaluation.ts), with the
   * evaluate message `message` makes for a range; null when a worker was lost meanwhile.
   */
  async evaluate(ranks: readonly number[], count: number, message: (request: number, start: number, end: number) => EvaluateMessage): Promise<Evaluation | null> {
    this.evaluation = new ShardedEvaluation(this, ranks, count, message);
    try {
      return await this.evaluation.outcome();
    } finally {
      this.evaluation = null;
    }
  }

  /** How long a step may wait before the ranks it waits for are named (default 30000 ms). */
  get stallWarnMs(): number {
    return this.opts.stallWarnMs ?? 30000;
  }

  /**
   * The stall inspector. Until the returned function is called: once the step (`step()`, 1-based) has
   * waited stallWarnMs since `since()` (default: this call), and again every stallWarnMs while it
   * waits, emits a `stall` event naming the ranks `waiting()` returns, with each one's host and last
   * message (in text mode the reporter writes it as one line).
   */
  watchStall(step: () => number, waiting: () => number[], since?: () => number): () => void {
    const ms = this.stallWarnMs;
    const started = performance.now();
    let warnedAt = -Infinity;
    const timer = setInterval(() => {
      const now = performance.now();
      const from = Math.max(since?.() ?? started, started);
      if (now - from < ms || now - warnedAt < ms) return;
      const ranks = waiting();
      if (ranks.length === 0) return;
      warnedAt = now;
      this.event({ event: 'stall', step: step(), waitedMs: Math.round(now - from), waitingFor: ranks.map((r) => this.lastHeard(r, now)) });
    }, Math.max(5, Math.min(ms / 4, 1000)));
    return () => clearInterval(timer);
  }

  async close(reason = 'the job is done'): Promise<void> {
    this.closed = true;
    await this.server.close(reason);
  }
}
