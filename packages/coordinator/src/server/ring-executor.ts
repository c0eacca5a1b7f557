/**
 * The executor for `--allreduce ring`: the workers hold replicas of the weights and of Adam's state,
 * reduce their gradient sums among themselves over direct peer links, and each applies the same
 * Adam step. The coordinator keeps the schedule, the membership, evaluation and checkpoints.
 *
 * The ring step protocol:
 *   0. Start: every worker gets `replica` (the initial weights, Adam at step 0, the learning rate).
 *   1. Forming ring generation g, before a step whenever the ring is not whole (at the start, after
 *      a failure or a loss, when a worker joined and waits):
 *      a. Every member gets ring_listen{g, position, size, group, resume = committed steps}. It
 *         abandons any earlier ring at once (an allreduce in flight there fails), rolls back a step
 *         it applied that was not committed (see 5), opens a peer endpoint and answers
 *         ring_address{g, url}. Positions follow rank order.
 *      b. A worker that joined later first gets the replica: the coordinator fetches weights and
 *         Adam state from a member (after that member's ring_listen, so after its roll-back) and
 *         forwards them in a `replica`.
 *      c. With every url in, every member gets ring_connect{g, urls}, links to its two neighbours
 *         and answers ring_ready{g} (or ring_failed{g, step -1}).
 *   2. Step s: the global batch is split into one shard per member, by position (shardBatch);
 *      member p gets ring_work{g, s, its shard, the global batch size, its shard of step s+1}.
 *   3. Each member computes its shard's gradient sum, ringAllreduce-s it with the configured
 *      compression, prepares its next shard while the allreduce waits on the network, divides by
 *      the global batch size, keeps a copy of its replica, applies Adam and answers
 *      ring_result{g, s, loss sum, hash of the new weights}. If its allreduce fails it answers
 *      ring_failed{g, s} with its replica unchanged.
 *   4. When every member has answered for (g, s), the hashes must all be equal; if not, the run
 *      stops and every worker gets DDP_MISMATCH ("Mismatched replicas ..."). Otherwise step s is
 *      committed (committed = s + 1) and its loss goes to the job loop.
 *   5. A member lost, or a ring_failed for g, before step s is committed ends generation g (its late
 *      answers are ignored). The ring is re-formed (1) from the live members with resume = s, so a
 *      member whose allreduce did finish and that applied s rolls it back, and step s is sent again,
 *      re-sharded over the new ring: it is applied exactly once. A step that fails `maxAttempts`
 *      times with nobody lost fails the run; so does the loss of every worker after the first
 *      committed step (the weights live on the workers).
 *   6. To evaluate, save, and at the end, the coordinator fetches the weights from one member
 *      (fetch -> state); they must carry the committed step count and hash.
 */
import { randomBytes } from 'node:crypto';
import {
  MSG,
  ProtocolError,
  replicaHash,
  type DdpEvent,
  type RingCoordinatorMessage,
  type RingWorkerMessage,
  type Split,
  type StateMessage,
} from '@ddp/core';
import type { FetchedParams, ReplicatedExecutor, ReplicatedStepResult, StepWork } from '../job/step-executor.js';
import type { CoordinatorServer, LossCode, WorkerInfo } from './coordinator-server.js';
import { ReplicaMismatchError, RingStep } from './ring-step.js';
import { TaskIds } from './step-round.js';
import { JoinWaiters } from './join-waiters.js';

export interface RingExecutorOptions {
  /** Before the first committed step, with no worker left, fail if none joins within this (ms). */
  workerTimeoutMs: number;
  /** --serve-data: the training split whose pixels travel with each shard. */
  serveData?: Split;
  /** Where worker_joined / worker_lost go (the job's reporter). */
  onEvent?: (e: DdpEvent) => void;
  /** Notes for people (refusals, re-formed rings, who a slow step waits for). */
  onInfo?: (message: string) => void;
  /** Name the ranks a step still waits for once it has run this long, and again every such period (default 30000 ms). */
  stallWarnMs?: number;
  /** Send each worker its next shard ahead, to prepare while its allreduce runs (default true). */
  prefetch?: boolean;
  /**
   * Forming a ring (listen, link) or fetching weights longer than this, plus three times the last
   * step's duration (a worker answers after the gradient it is computing), fails the run (default 60000 ms).
   */
  formTimeoutMs?: number;
  /** A step that fails this many times in a row with no worker lost fails the run (default 3). */
  maxAttempts?: number;
}

/** The current ring generation is over: re-form it and redo the step. */
class RingBroken extends Error {
  constructor(
    message: string,
    /** True when a member was lost (not counted against maxAttempts). */
    readonly lost: boolean,
  ) {
    super(message);
  }
}

/** Someone waiting for messages from some ranks; fails when one of them is lost. */
interface Watch {
  ranks: ReadonlySet<number>;
  onMessage(rank: number, msg: RingWorkerMessage): void;
  fail(err: Error): void;
}

export class RingExecutor implements ReplicatedExecutor {
  readonly replicated = true;
  readonly allreduce = 'ring';
  private readonly ids = new TaskIds();
  /** Names this job's rings, so a member of another job or an earlier ring cannot attach. */
  private readonly jobId = randomBytes(6).toString('hex');
  private generation = -1;
  /** Ranks by ring position; null when the ring must be (re)formed. */
  private ring: number[] | null = null;
  /** Ranks holding the replica at `committed` steps (or one uncommitted step ahead, to roll back). */
  private readonly holders = new Set<number>();
  private committed = 0;
  private committedHash = '';
  private lastHashes: Array<{ rank: number; hash: string }> = [];
  private initial: { params: Float32Array; lr: number } | null = null;
  private readonly watches = new Set<Watch>();
  private readonly joinWaiters = new JoinWaiters(() => this.workers);
  private requests = 0;
  private running: RingStep | null = null;
  /** How long the last step took (ms): workers busy with a gradient answer only after it. */
  private lastStepMs = 0;
  private closed = false;

  constructor(
    private readonly server: CoordinatorServer,
    private readonly opts: RingExecutorOptions,
  ) {
    server.addListener({
      joined: (info) => this.onJoined(info),
      ring: (rank, msg) => this.onMessage(rank, msg),
      gradient: (rank) => server.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', 'gradient: not part of --allreduce ring')),
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

  async start(params: Float32Array, optim: { lr: number }): Promise<void> {
    this.initial = { params: params.slice(), lr: optim.lr };
    this.committedHash = replicaHash(params);
    for (const rank of this.server.ranks()) this.giveInitialReplica(rank);
  }

  async step(work: StepWork): Promise<ReplicatedStepResult> {
    if (this.closed) throw new Error('RingExecutor: closed');
    if (!this.initial) throw new Error('RingExecutor: step() before start()');
    if (work.step !== this.committed) throw new Error(`RingExecutor: step ${work.step + 1} asked for, but ${this.committed} step(s) are committed`);
    const maxAttempts = this.opts.maxAttempts ?? 3;
    // Failures count against maxAttempts only while the ring keeps the same members: a peer often
    // reports a dead neighbour before the coordinator has seen that neighbour's connection close.
    let failures = 0;
    let failedRing: string | null = null;
    let formMs = 0;
    let recoveryMs = 0;
    for (;;) {
      const t0 = performance.now();
      try {
        if (this.needsForming()) {
          await this.formRing(work.step);
          formMs += performance.now() - t0;
          if (failedRing !== null && this.ring!.join() !== failedRing) failures = 0;
        }
        const t1 = performance.now();
        const r = await this.runStep(work);
        // The executor's own time around the round (already inside the members' cycles when those are known).
        const local = r.fromCycles ? 0 : Math.max(0, performance.now() - t1 - r.wallMs);
        return {
          lossSum: r.lossSum,
          hash: r.hash,
          gradientBytes: r.gradientBytes,
          timing: { ...r.timing, coordinator: r.timing.coordinator + local, ring: formMs, recovery: recoveryMs },
        };
      } catch (err) {
        if (!(err instanceof RingBroken)) throw err;
        failedRing = this.ring?.join() ?? failedRing;
        this.ring = null;
        recoveryMs += performance.now() - t0;
        if (!err.lost && ++failures >= maxAttempts) {
          throw new Error(`step ${work.step + 1} failed ${failures} times in a row with no worker lost; last: ${err.message}`);
        }
        this.opts.onInfo?.(`step ${work.step + 1}: ${err.message}; re-forming the ring and redoing the step`);
      }
    }
  }

  async fetchParams(): Promise<FetchedParams> {
    for (;;) {
      const from = this.pickHolder();
      try {
        const s = await this.fetchState(from, false);
        return { params: s.params, hash: s.hash, replicas: this.lastHashes.length ? this.lastHashes : [{ rank: from, hash: s.hash }] };
      } catch (err) {
        if (!(err instanceof RingBroken)) throw err; // lost: ask another
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.watches]) w.fail(new Error('RingExecutor: closed'));
    await this.server.close('the job is done');
  }

  // ---- membership -------------------------------------------------------------------------

  private onJoined(info: WorkerInfo): void {
    this.opts.onEvent?.({ event: 'worker_joined', rank: info.rank, workers: this.workers, backend: info.backend });
    this.joinWaiters.notify();
    // Before the first step is committed the coordinator still has the weights: hand them out now.
    // Later arrivals get the replica from a member when the ring is next formed (protocol 1b).
    if (this.initial && this.committed === 0 && this.holders.size === 0) this.giveInitialReplica(info.rank);
  }

  private onLost(info: WorkerInfo, reason: string, code: LossCode): void {
    const step = this.running ? this.running.step + 1 : this.committed + 1;
    if (!this.closed) this.opts.onEvent?.({ event: 'worker_lost', rank: info.rank, step, reason: `${code}: ${reason}`, workers: this.workers });
    this.holders.delete(info.rank);
    if (this.ring?.includes(info.rank)) this.ring = null;
    for (const w of [...this.watches]) {
      if (w.ranks.has(info.rank)) w.fail(new RingBroken(`rank ${info.rank} was lost (${code})`, true));
    }
  }

  private onMessage(rank: number, msg: RingWorkerMessage): void {
    if (msg.type === MSG.RING_FAILED && msg.code === 'NON_FINITE') {
      const fatal = new Error(`rank ${rank}: ${msg.message}`);
      for (const w of [...this.watches]) w.fail(fatal);
      return;
    }
    for (const w of [...this.watches]) w.onMessage(rank, msg);
  }

  private send(rank: number, msg: RingCoordinatorMessage): void {
    // A send to a socket that just died is dropped; its `lost` event breaks whatever waited on it.
    this.server.send(rank, msg);
  }

  private giveInitialReplica(rank: number): void {
    const init = this.initial!;
    this.send(rank, { type: MSG.REPLICA, steps: 0, params: init.params, lr: init.lr });
    this.holders.add(rank);
  }

  private needsForming(): boolean {
    if (!this.ring) return true;
    const live = this.server.ranks();
    return live.length !== this.ring.length || live.some((r) => !this.ring!.includes(r));
  }

  /** The member to ask for the weights: the lowest-ranked live holder. */
  private pickHolder(): number {
    const live = new Set(this.server.ranks());
    const holders = [...this.holders].filter((r) => live.has(r)).sort((a, b) => a - b);
    if (holders.length === 0) throw this.everyReplicaLost();
    return holders[0]!;
  }

  private everyReplicaLost(): Error {
    return new Error(
      `every worker holding the weights is gone (after step ${this.committed}): in ring mode the weights live on the workers, so the run cannot go on (--allreduce star keeps them on the coordinator)`,
    );
  }

  // ---- waiting for answers -----------------------------------------------------------------

  /**
   * Resolves with one value per rank once `pick` has accepted a message from each. Fails with
   * RingBroken when one of them is lost, or (when `generation` is given) when a member reports
   * that ring generation failed; fails the run after `timeoutMs`.
   */
  private collect<T>(ranks: readonly number[], pick: (rank: number, msg: RingWorkerMessage) => T | undefined, generation: number | null, what: string): Promise<Map<number, T>> {
    const timeoutMs = (this.opts.formTimeoutMs ?? 60_000) + 3 * this.lastStepMs;
    return new Promise((resolve, reject) => {
      const got = new Map<number, T>();
      const set = new Set(ranks);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.watches.delete(watch);
        if (err) reject(err);
        else resolve(got);
      };
      const watch: Watch = {
        ranks: set,
        onMessage: (rank, msg) => {
          if (!set.has(rank)) return;
          if (generation !== null && msg.type === MSG.RING_FAILED && msg.generation === generation) {
            finish(new RingBroken(`ring ${generation} failed at rank ${rank} (${msg.code}: ${msg.message})`, false));
            return;
          }
          const v = pick(rank, msg);
          if (v === undefined || got.has(rank)) return;
          got.set(rank, v);
          if (got.size === set.size) finish();
        },
        fail: (err) => finish(err),
      };
      const timer = setTimeout(() => {
        const missing = ranks.filter((r) => !got.has(r));
        finish(new Error(`no ${what} from rank(s) ${missing.join(', ')} within ${(timeoutMs / 1000).toFixed(1)} s; the run cannot go on`));
      }, timeoutMs);
      this.watches.add(watch);
      const live = new Set(this.server.ranks());
      const gone = ranks.find((r) => !live.has(r));
      if (gone !== undefined) finish(new RingBroken(`rank ${gone} was lost`, true));
      else if (set.size === 0) finish();
    });
  }

  private async fetchState(rank: number, optimizer: boolean): Promise<StateMessage> {
    const request = ++this.requests;
    const answer = this.collect([rank], (_r, msg) => (msg.type === MSG.STATE && msg.request === request ? msg : undefined), null, 'weights');
    this.send(rank, { type: MSG.FETCH, request, optimizer });
    const s = (await answer).get(rank)!;
    if (s.steps !== this.committed || s.hash !== this.committedHash || replicaHash(s.params) !== s.hash) {
      throw new Error(
        `rank ${rank} sent weights after ${s.steps} step(s) with hash ${s.hash} (of the bytes sent: ${replicaHash(s.params)}), ` +
          `but ${this.committed} step(s) are committed with hash ${this.committedHash}`,
      );
    }
    return s;
  }

  // ---- protocol 1: forming a ring ----------------------------------------------------------

  private async waitForJoin(): Promise<void> {
    const seconds = this.opts.workerTimeoutMs / 1000;
    this.opts.onInfo?.(`no worker left before the first step: waiting up to ${seconds} s for one to join (--worker-timeout)`);
    try {
      await this.waitForWorkers(1, this.opts.workerTimeoutMs);
    } catch {
      throw new Error(`no worker left and none joined within ${seconds} s (--worker-timeout); the run cannot go on`);
    }
  }

  private async formRing(step: number): Promise<void> {
    let live = this.server.ranks();
    for (const h of [...this.holders]) if (!live.includes(h)) this.holders.delete(h);
    if (this.holders.size === 0) {
      if (this.committed > 0) throw this.everyReplicaLost();
      if (live.length === 0) await this.waitForJoin();
      live = this.server.ranks();
      for (const rank of live) this.giveInitialReplica(rank);
    }
    const members = [...live].sort((a, b) => a - b);
    const newcomers = members.filter((r) => !this.holders.has(r));
    const g = ++this.generation;
    const group = `ddp-${this.jobId}/ring-${g}`;
    const listen = (rank: number) =>
      this.send(rank, { type: MSG.RING_LISTEN, generation: g, position: members.indexOf(rank), size: members.length, group, resume: this.committed });

    // Watch for the addresses before asking, so that none arrives unheard.
    const addresses = this.collect(members, (_r, msg) => (msg.type === MSG.RING_ADDRESS && msg.generation === g ? msg.url : undefined), g, 'ring address');
    addresses.catch(() => {});
    for (const rank of members) if (this.holders.has(rank)) listen(rank);
    if (newcomers.length > 0) {
      const state = await this.fetchState(this.pickHolder(), true);
      for (const rank of newcomers) {
        this.send(rank, { type: MSG.REPLICA, steps: state.steps, params: state.params, lr: this.initial!.lr, adamM: state.adamM, adamV: state.adamV });
        this.holders.add(rank);
        listen(rank);
      }
      this.opts.onInfo?.(`rank(s) ${newcomers.join(', ')} got the replica after step ${state.steps} and join the ring`);
    }
    const urls = await addresses;
    const ready = this.collect(members, (_r, msg) => (msg.type === MSG.RING_READY && msg.generation === g ? true : undefined), g, 'ring link');
    const byPosition = members.map((r) => urls.get(r)!);
    for (const rank of members) this.send(rank, { type: MSG.RING_CONNECT, generation: g, urls: byPosition });
    await ready;
    this.ring = members;
    if (g > 0) this.opts.onInfo?.(`ring ${g} formed for step ${step + 1}: ranks ${members.join(', ')}`);
  }

  // ---- protocol 2-4: one step --------------------------------------------------------------

  private async runStep(work: StepWork): Promise<ReturnType<RingStep['result']> & { wallMs: number }> {
    const members = this.ring!;
    const round = new RingStep(work.step, work.epoch, this.generation, work.batch, members, this.ids);
    const finished = new Promise<void>((resolve, reject) => {
      const watch: Watch = {
        ranks: new Set(members),
        onMessage: (rank, msg) => {
          if (msg.type === MSG.RING_FAILED && msg.generation === round.generation) {
            done(new RingBroken(`the allreduce of ring ${round.generation} failed at rank ${rank} (${msg.code}: ${msg.message})`, false));
            return;
          }
          if (msg.type !== MSG.RING_RESULT || msg.generation !== round.generation) return; // a late answer of an ended ring
          try {
            round.onResult(rank, msg);
          } catch (err) {
            this.server.drop(rank, err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err)));
            return;
          }
          if (round.complete) done();
        },
        fail: (err) => done(err),
      };
      const done = (err?: Error) => {
        this.watches.delete(watch);
        if (err) reject(err);
        else resolve();
      };
      this.watches.add(watch);
    });
    finished.catch(() => {});
    this.running = round;
    const stallMs = this.opts.stallWarnMs ?? 30000;
    const stall = setInterval(() => {
      const waiting = round.waitingFor;
      if (waiting.length > 0) this.opts.onInfo?.(`step ${work.step + 1}: still waiting for rank(s) ${waiting.join(', ')} after ${(stallMs / 1000).toFixed(0)} s or more`);
    }, stallMs);
    try {
      const orders = round.orders(work.batch.length, this.opts.prefetch === false || this.opts.serveData ? undefined : work.next);
      for (const { rank, msg } of orders) {
        const split = this.opts.serveData;
        if (split) {
          const px = split.rows * split.cols;
          msg.images = new Uint8Array(msg.indices.length * px);
          msg.labels = new Uint8Array(msg.indices.length);
          msg.indices.forEach((idx, i) => {
            msg.images!.set(split.images.subarray(idx * px, (idx + 1) * px), i * px);
            msg.labels![i] = split.labels[idx];
          });
        }
        this.send(rank, msg);
      }
      await finished;
    } finally {
      clearInterval(stall);
      this.running = null;
    }
    const wallMs = performance.now() - round.dispatchedAt;
    this.lastStepMs = wallMs;
    let r;
    try {
      r = round.result();
    } catch (err) {
      if (err instanceof ReplicaMismatchError) {
        const backends = err.hashes.map(({ rank }) => `rank ${rank}: ${this.server.info(rank)?.backend ?? '?'}`).join(', ');
        const full = new ProtocolError('DDP_MISMATCH', `${err.message} (backends: ${backends})`);
        for (const rank of this.server.ranks()) this.server.drop(rank, full);
        throw new Error(full.message);
      }
      throw err;
    }
    this.committed = work.step + 1;
    this.committedHash = r.hash;
    this.lastHashes = r.hashes;
    return { ...r, wallMs };
  }
}
