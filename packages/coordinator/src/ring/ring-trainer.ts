/**
 * Ring mode, the default: the workers hold replicas of the weights and of Adam's state, draw their
 * own shards from the plan, reduce their gradient sums among themselves over direct peer links and
 * each apply the same Adam step. The coordinator is the control plane, off the step's path: it
 * decides the membership and where a run starts and ends, receives progress asynchronously, checks
 * the replicas' hashes every hashEvery steps, and fetches the weights to evaluate and save.
 *
 * The ring protocol:
 *   0. Start: every worker gets `replica`: the weights and Adam's state the job starts from (step 0,
 *      or a checkpoint's with --resume) and the learning rate.
 *   1. Forming ring generation g (at the start, after a failure or a loss, when a worker joined):
 *      a. Every live worker gets ring_listen{g, position, size, group}. It abandons any earlier ring
 *         at once (a run there stops, an allreduce in flight fails), opens a peer endpoint and
 *         answers ring_address{g, url, steps it holds}. Positions follow rank order. A member
 *         reports every step it applied before it answers, so once every address is in, the
 *         coordinator has every live member's reports.
 *      b. resume = committed: the steps every member of the last ring reported. A member reports a
 *         step before its next allreduce starts, so no replica is more than one step past resume.
 *      c. Every member gets ring_connect{g, urls, resume}: a replica one step ahead rolls back; all
 *         link to their two neighbours and answer ring_ready{g} (or ring_failed{g, step -1}).
 *      d. A worker that has no replica (it joined later) gets one: the state at resume, fetched
 *         from a member (fetch -> state), weights and Adam's moments.
 *   2. A run: every member gets ring_run{g, from = committed, until = the next boundary (an
 *      evaluation, the end)}. Each draws its shard of every step from the plan by its position,
 *      reduces, applies Adam and reports ring_progress{g, step, loss sum, timing, a hash every
 *      hashEvery steps and at until}. No step waits for the coordinator.
 *   3. Step s is committed when every member has reported it (ring-steps.ts); hashes must agree
 *      (else the run stops and every worker gets DDP_MISMATCH, "Mismatched replicas ..."). The loss
 *      sums are added in position order and the step goes to the job loop.
 *   4. A member lost, or a ring_failed for g, ends generation g. The ring is re-formed (1) from the
 *      live members and the run goes on from committed: the step in hand is redone on the new ring,
 *      re-sharded, and applied exactly once. A step that fails `maxAttempts` times in a row with no
 *      worker lost fails the run (DDP_STEP_ATTEMPTS); so does the loss of every worker after the
 *      first committed step (DDP_NO_WORKERS: the weights live on the workers).
 *   5. A worker that joins during a run ends generation g the same way (it joins the next ring);
 *      no step is lost or applied twice.
 *   6. Interrupted (Ctrl-C): every member gets ring_stop{g} and answers ring_stopped{g, steps} after
 *      its last report; the weights are then fetched at committed.
 *   7. To save, the coordinator fetches the weights from one member (fetch{steps} -> state); they
 *      must carry the committed step count and, when it is known, its hash. To evaluate, every
 *      member gets evaluate{steps, a range of whole test batches} and answers each batch's loss sum
 *      (net/sharded-evaluation.ts); without a local test split (--serve-data), the weights are
 *      fetched and evaluated by the coordinator.
 *   8. Checkpoints (snapshots()): ring_run carries snapshotEvery, and the member at position 0 sends
 *      its state unasked after each such step; it is kept once that step commits with the same hash.
 */
import { randomBytes } from 'node:crypto';
import {
  MSG,
  ProtocolError,
  RunError,
  TrainingPlan,
  replicaHash,
  shardLengths,
  shardUnit,
  type DdpEvent,
  type Evaluation,
  type RingCoordinatorMessage,
  type Reduction,
  type RingWorkerMessage,
  type Split,
  type StateMessage,
} from '@ddp/core';
import type { StragglerOptions } from '../job/straggler-threshold.js';
import type { StepReport, Trainer, TrainerParams, TrainingState } from '../job/trainer.js';
import type { LossCode, WorkerInfo } from '../net/coordinator-server.js';
import type { WorkerPool } from '../net/worker-pool.js';
import { ReplicaMismatchError, RingSteps, type RingCommit } from './ring-steps.js';
import { RingStragglers } from './ring-stragglers.js';

export interface RingTrainerOptions {
  /** Before the first committed step, with no worker left, fail if none joins within this (ms). */
  workerTimeoutMs: number;
  plan: { seed: number; batchSize: number };
  train: Split;
  /** --serve-data: the workers have no test split (the job loop evaluates). */
  serveData?: boolean;
  /** ring_formed events (the job's reporter). */
  onEvent?: (e: DdpEvent) => void;
  /** The job's reduction ('fast' if left out here; the CLI always passes the job's, exact by default): 'exact' cuts the members' shards on micro-shard boundaries. */
  reduction?: Reduction;
  /**
   * Forming a ring (listen, link) or fetching weights longer than this, plus three times the last
   * step's duration (a worker answers after the step in hand), fails the run (default 60000 ms).
   */
  formTimeoutMs?: number;
  /** A step that fails this many times in a row with no worker lost fails the run (default 3). */
  maxAttempts?: number;
  /**
   * --straggler-factor F (> 1): name (a `straggler` event, backupRank -1) a member that held up a step
   * past F x the median step time (ring-stragglers.ts). Absent: off.
   */
  stragglers?: number | StragglerOptions;
}

/** The current ring generation is over: re-form it and go on. */
class RingBroken extends Error {
  constructor(
    message: string,
    /** Why: a member was lost or joined (not counted against maxAttempts), or the ring failed. */
    readonly cause_: 'lost' | 'joined' | 'failed',
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

/** The run in progress: its bookkeeping and where its committed steps go. */
interface ActiveRun {
  steps: RingSteps;
  onStep: (r: StepReport) => void;
}

export class RingTrainer implements Trainer {
  readonly mode = 'ring';
  /** Names this job's rings, so that a member of another job or an earlier ring cannot attach. */
  private readonly jobId = randomBytes(6).toString('hex');
  private readonly plan: TrainingPlan;
  private generation = -1;
  /** Ranks by ring position; null when the ring must be (re)formed. */
  private ring: number[] | null = null;
  /** Ranks holding a replica. */
  private readonly holders = new Set<number>();
  private committed = 0;
  /** The replicas' hash after `hashAt` steps (the last step that carried hashes). */
  private hashAt = 0;
  private hash = '';
  private lastHashes: Array<{ rank: number; hash: string }> = [];
  /** The state the job started from (step 0, or a checkpoint's) and the learning rate. */
  private initial: { state: TrainingState; lr: number } | null = null;
  private readonly watches = new Set<Watch>();
  private requests = 0;
  private active: ActiveRun | null = null;
  /** How long a step took lately (ms): a worker answers only after the step in hand. */
  private lastStepMs = 0;
  private lastCommitAt = 0;
  /** When the current run last committed a step (-1: none yet in this run), for step times. */
  private runCommitAt = -1;
  private readonly stragglers: RingStragglers | null;
  private closed = false;
  /** Checkpoints without stopping the ring (snapshots()): every how many steps, and to whom. */
  private snapshotEvery = 0;
  private deliverSnapshot: ((s: TrainingState) => void) | null = null;
  /** Snapshots that came before their step was committed, and the committed hashes of snapshot steps not yet delivered. */
  private readonly snapshotStates = new Map<number, StateMessage>();
  private readonly snapshotHashes = new Map<number, string>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly opts: RingTrainerOptions,
  ) {
    this.plan = new TrainingPlan({ ...opts.plan, trainCount: opts.train.count });
    this.stragglers = opts.stragglers === undefined ? null : new RingStragglers(opts.stragglers);
    pool.currentStep = () => this.committed + 1;
    pool.setHandler({
      joined: (info) => this.onJoined(info),
      lost: (info, _reason, code) => this.onLost(info, code),
      message: (rank, msg) => {
        if (msg.type === MSG.GRADIENT) pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', 'gradient: not part of --allreduce ring'));
        else if (msg.type === MSG.EVALUATION) pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', `evaluation: request ${msg.request} is not running`));
        else this.onMessage(rank, msg);
      },
    });
  }

  get workers(): number {
    return this.pool.size;
  }

  get steps(): number {
    return this.committed;
  }

  async start(state: TrainingState, optim: { lr: number }): Promise<void> {
    this.initial = { state, lr: optim.lr };
    this.committed = state.steps;
    this.hashAt = state.steps;
    this.hash = replicaHash(state.params);
    for (const rank of this.pool.ranks()) this.giveInitialReplica(rank);
  }

  /** No step committed since start(): the coordinator still has the state to hand out. */
  private get atStart(): boolean {
    return this.initial !== null && this.committed === this.initial.state.steps;
  }

  async run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new Error('RingTrainer: closed');
    if (!this.initial) throw new Error('RingTrainer: run() before start()');
    const maxAttempts = this.opts.maxAttempts ?? 3;
    // Failures count against maxAttempts only at the same step and with the same members: a peer
    // often reports a dead neighbour before the coordinator has seen that neighbour's connection close.
    let failures = 0;
    let failedAt = '';
    try {
      while (this.committed < until && !signal?.aborted) {
        try {
          // Forming may end with the run already done (the last member's reports came in while it left).
          if (this.needsForming()) await this.formRing(onStep);
          else await this.runOnRing(until, onStep, signal);
        } catch (err) {
          if (!(err instanceof RingBroken)) throw err;
          const where = `${this.committed}/${this.ring?.join() ?? ''}`;
          this.ring = null;
          if (err.cause_ === 'failed') {
            failures = where === failedAt ? failures + 1 : 1;
            failedAt = where;
            if (failures >= maxAttempts) throw new RunError('DDP_STEP_ATTEMPTS', `step ${this.committed + 1} failed ${failures} times in a row with no worker lost; last: ${err.message}`);
          }
          this.pool.note(`step ${this.committed + 1}: ${err.message}; re-forming the ring`);
        }
      }
    } finally {
      this.active = null;
    }
  }

  async params(): Promise<TrainerParams> {
    for (;;) {
      const from = this.pickHolder();
      try {
        const s = await this.fetchState(from, this.committed, false);
        const replicas = this.hashAt === this.committed && this.lastHashes.length ? this.lastHashes : [{ rank: from, hash: s.hash }];
        return { params: s.params, hash: s.hash, replicas };
      } catch (err) {
        if (!(err instanceof RingBroken)) throw err; // lost: ask another
      }
    }
  }

  /** Protocol 7, a checkpoint: the weights and Adam's state at committed, from one member. */
  async state(): Promise<TrainingState> {
    if (this.atStart) {
      const s = this.initial!.state;
      return { steps: s.steps, params: s.params.slice(), adamM: s.adamM.slice(), adamV: s.adamV.slice() };
    }
    for (;;) {
      const from = this.pickHolder();
      try {
        const s = await this.fetchState(from, this.committed, true);
        if (!s.adamM || !s.adamV) throw new RunError('DDP_MISMATCH', `rank ${from} sent the weights without Adam's state`);
        return { steps: s.steps, params: s.params, adamM: s.adamM, adamV: s.adamV };
      } catch (err) {
        if (!(err instanceof RingBroken)) throw err; // lost: ask another
      }
    }
  }

  /**
   * Protocol 8, checkpoints without stopping the ring: ring_run carries snapshotEvery; after each
   * such step the member at position 0 sends its state unasked (request 0). It is kept once the
   * step is committed with the same hash (every member reports the hash of a snapshot step), so a
   * state of a step that was rolled back and redone differently is never delivered.
   */
  snapshots(every: number, deliver: (state: TrainingState) => void): void {
    if (!Number.isInteger(every) || every < 1) throw new RangeError(`snapshots: every must be an integer >= 1, got ${every}`);
    this.snapshotEvery = every;
    this.deliverSnapshot = deliver;
  }

  private onSnapshot(rank: number, s: StateMessage): void {
    if (!this.deliverSnapshot || s.steps % this.snapshotEvery !== 0 || !s.adamM || !s.adamV || replicaHash(s.params) !== s.hash) {
      this.pool.drop(rank, new ProtocolError('DDP_BAD_MESSAGE', `state: an unasked state after ${s.steps} step(s) that is no snapshot of this run`));
      return;
    }
    if (s.steps <= this.committed) {
      const hash = this.snapshotHashes.get(s.steps);
      if (hash !== undefined) this.deliverIfSame(s, hash);
      return; // no committed hash for it: a stale snapshot of a step already delivered or never kept
    }
    this.snapshotStates.set(s.steps, s);
  }

  /** A snapshot step was committed with `hash`. */
  private onSnapshotCommitted(steps: number, hash: string): void {
    const s = this.snapshotStates.get(steps);
    if (s) this.deliverIfSame(s, hash);
    else this.snapshotHashes.set(steps, hash);
    // Older ones can no longer be matched: a ring that went back re-sends them.
    for (const k of this.snapshotStates.keys()) if (k <= steps) this.snapshotStates.delete(k);
    for (const k of this.snapshotHashes.keys()) if (k < steps) this.snapshotHashes.delete(k);
  }

  private deliverIfSame(s: StateMessage, hash: string): void {
    if (s.hash !== hash) return; // a replica's state of a step that was redone on another ring
    this.snapshotStates.delete(s.steps);
    this.snapshotHashes.delete(s.steps);
    this.deliverSnapshot!({ steps: s.steps, params: s.params, adamM: s.adamM!, adamV: s.adamV! });
  }

  /** Protocol 7, evaluation: the members evaluate shares of the test split at committed steps. */
  async evaluate(test: Split): Promise<Evaluation | null> {
    const live = new Set(this.pool.ranks());
    const members = [...this.holders].filter((r) => live.has(r)).sort((a, b) => a - b);
    if (members.length === 0 || this.opts.serveData) return null;
    const steps = this.committed;
    return this.pool.evaluate(members, test.count, (request, start, end) => ({ type: MSG.EVALUATE, request, steps, start, end }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.watches]) w.fail(new Error('RingTrainer: closed'));
    await this.pool.close('the job is done');
  }

  // ---- membership -------------------------------------------------------------------------

  private onJoined(info: WorkerInfo): void {
    // Before the first step is committed the coordinator still has the weights: hand them out now.
    // Later arrivals get the replica from a member when the ring is next formed (protocol 1d).
    if (this.atStart && !this.active) {
      this.giveInitialReplica(info.rank);
      return;
    }
    // Protocol 5: a run in progress ends its generation so that the newcomer joins the next ring.
    if (this.active && this.ring) {
      for (const w of [...this.watches]) w.fail(new RingBroken(`rank ${info.rank} joined`, 'joined'));
    }
  }

  private onLost(info: WorkerInfo, code: LossCode): void {
    this.holders.delete(info.rank);
    if (this.ring?.includes(info.rank)) this.ring = null;
    for (const w of [...this.watches]) {
      if (w.ranks.has(info.rank)) w.fail(new RingBroken(`rank ${info.rank} was lost (${code})`, 'lost'));
    }
  }

  private onMessage(rank: number, msg: RingWorkerMessage): void {
    // Progress of the current run's generation counts even after its ring broke (protocol 1a).
    if (msg.type === MSG.RING_PROGRESS && this.active && msg.generation === this.active.steps.generation) {
      this.onProgress(rank, msg);
      return;
    }
    if (msg.type === MSG.STATE && msg.request === 0) {
      this.onSnapshot(rank, msg);
      return;
    }
    if (msg.type === MSG.RING_FAILED && msg.code === 'NON_FINITE') {
      const fatal = new RunError('DDP_NON_FINITE', `rank ${rank}: ${msg.message}`);
      for (const w of [...this.watches]) w.fail(fatal);
      return;
    }
    for (const w of [...this.watches]) w.onMessage(rank, msg);
  }

  private onProgress(rank: number, msg: Extract<RingWorkerMessage, { type: 'ring_progress' }>): void {
    const run = this.active!;
    let commits: RingCommit[];
    try {
      commits = run.steps.onProgress(rank, msg);
    } catch (err) {
      if (err instanceof ReplicaMismatchError) {
        const backends = err.hashes.map(({ rank: r }) => `rank ${r}: ${this.pool.info(r)?.backend ?? '?'}`).join(', ');
        const full = new ProtocolError('DDP_MISMATCH', `${err.message} (backends: ${backends})`);
        // Fail the run first: each drop below reports a loss, which would otherwise end the run as a
        // broken ring (re-formed, then DDP_NO_WORKERS) before the mismatch is heard.
        const fatal = new RunError('DDP_MISMATCH', full.message);
        for (const w of [...this.watches]) w.fail(fatal);
        for (const r of this.pool.ranks()) this.pool.drop(r, full);
        return;
      }
      this.pool.drop(rank, err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err)));
      return;
    }
    for (const c of commits) {
      const now = performance.now();
      if (this.lastCommitAt > 0) this.lastStepMs = now - this.lastCommitAt;
      this.lastCommitAt = now;
      const straggler = this.stragglers?.onCommit(c, this.runCommitAt >= 0 ? now - this.runCommitAt : null);
      this.runCommitAt = now;
      if (straggler) {
        const host = this.pool.info(straggler.rank)?.name;
        this.pool.event({ event: 'straggler', step: c.step + 1, rank: straggler.rank, ...(host ? { host } : {}), waitedMs: Math.round(straggler.waitedMs), medianMs: Math.round(straggler.medianMs), backupRank: -1 });
      }
      this.committed = c.step + 1;
      if (c.hash) {
        this.hash = c.hash;
        this.hashAt = this.committed;
        this.lastHashes = c.hashes!;
      }
      run.onStep({ step: c.step, epoch: this.plan.epochOf(c.step), lossSum: c.lossSum, samples: c.samples, timing: c.timing, gradientBytes: c.gradientBytes, ranks: c.ranks });
      if (this.snapshotEvery > 0 && this.committed % this.snapshotEvery === 0 && c.hash) this.onSnapshotCommitted(this.committed, c.hash);
    }
    if (run.steps.complete) for (const w of [...this.watches]) w.onMessage(rank, msg);
  }

  private send(rank: number, msg: RingCoordinatorMessage): void {
    // A send to a socket that just died is dropped; its `lost` event breaks whatever waited on it.
    this.pool.send(rank, msg);
  }

  private giveInitialReplica(rank: number): void {
    const { state, lr } = this.initial!;
    // At step 0 Adam's moments are zeros: the replica makes them.
    const moments = state.steps > 0 ? { adamM: state.adamM, adamV: state.adamV } : {};
    this.send(rank, { type: MSG.REPLICA, steps: state.steps, params: state.params, lr, ...moments });
    this.holders.add(rank);
  }

  private needsForming(): boolean {
    if (!this.ring) return true;
    const live = this.pool.ranks();
    return live.length !== this.ring.length || live.some((r) => !this.ring!.includes(r));
  }

  /** The member to ask for the weights: the lowest-ranked live holder. */
  private pickHolder(): number {
    const live = new Set(this.pool.ranks());
    const holders = [...this.holders].filter((r) => live.has(r)).sort((a, b) => a - b);
    if (holders.length === 0) throw this.everyReplicaLost();
    return holders[0]!;
  }

  private everyReplicaLost(): RunError {
    return new RunError(
      'DDP_NO_WORKERS',
      `every worker holding the weights is gone (after step ${this.committed}): in ring mode the weights live on the workers, so the run cannot go on (--allreduce star keeps them on the coordinator)`,
    );
  }

  // ---- waiting for answers -----------------------------------------------------------------

  /**
   * Resolves with one value per rank once `pick` has accepted a message from each. Fails with
   * RingBroken when one of them is lost, or (when `generation` is given) when a member reports
   * that ring generation failed; fails the run with `timeoutCode` after the formation timeout.
   */
  private collect<T>(ranks: readonly number[], pick: (rank: number, msg: RingWorkerMessage) => T | undefined, generation: number | null, what: string, timeoutCode: 'DDP_RING_FORMATION' | 'DDP_STALLED'): Promise<Map<number, T>> {
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
            finish(new RingBroken(`ring ${generation} failed at rank ${rank} (${msg.code}: ${msg.message})`, 'failed'));
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
        finish(new RunError(timeoutCode, `no ${what} from rank(s) ${missing.join(', ')} within ${(timeoutMs / 1000).toFixed(1)} s; the run cannot go on`));
      }, timeoutMs);
      this.watches.add(watch);
      const live = new Set(this.pool.ranks());
      const gone = ranks.find((r) => !live.has(r));
      if (gone !== undefined) finish(new RingBroken(`rank ${gone} was lost`, 'lost'));
      else if (set.size === 0) finish();
    });
  }

  private async fetchState(rank: number, steps: number, optimizer: boolean): Promise<StateMessage> {
    const request = ++this.requests;
    const answer = this.collect([rank], (_r, msg) => (msg.type === MSG.STATE && msg.request === request ? msg : undefined), null, 'weights', 'DDP_STALLED');
    this.send(rank, { type: MSG.FETCH, request, steps, optimizer });
    const s = (await answer).get(rank)!;
    const expected = this.hashAt === steps ? this.hash : null;
    if (s.steps !== steps || replicaHash(s.params) !== s.hash || (expected !== null && s.hash !== expected)) {
      throw new RunError(
        'DDP_MISMATCH',
        `rank ${rank} sent weights after ${s.steps} step(s) with hash ${s.hash} (of the bytes sent: ${replicaHash(s.params)}), ` +
          `but ${steps} step(s) are committed${expected ? ` with hash ${expected}` : ''}`,
      );
    }
    return s;
  }

  // ---- protocol 1: forming a ring ----------------------------------------------------------

  private async waitForJoin(): Promise<void> {
    const seconds = this.opts.workerTimeoutMs / 1000;
    this.pool.note(`no worker left before the first step: waiting up to ${seconds} s for one to join (--worker-timeout)`);
    try {
      await this.pool.waitForWorkers(1, this.opts.workerTimeoutMs);
    } catch {
      throw new RunError('DDP_NO_WORKERS', `no worker left and none joined within ${seconds} s (--worker-timeout); the run cannot go on`);
    }
  }

  private async formRing(onStep: (r: StepReport) => void): Promise<void> {
    let live = this.pool.ranks();
    for (const h of [...this.holders]) if (!live.includes(h)) this.holders.delete(h);
    if (this.holders.size === 0) {
      if (!this.atStart) throw this.everyReplicaLost();
      if (live.length === 0) await this.waitForJoin();
      live = this.pool.ranks();
      for (const rank of live) this.giveInitialReplica(rank);
    }
    // Elastic membership: below --min-workers the run pauses here until enough have joined.
    if (live.length < this.pool.minWorkers) {
      await this.pool.quorum(this.committed + 1, this.opts.workerTimeoutMs);
      live = this.pool.ranks();
      for (const h of [...this.holders]) if (!live.includes(h)) this.holders.delete(h);
      if (this.holders.size === 0) {
        if (!this.atStart) throw this.everyReplicaLost();
        for (const rank of live) this.giveInitialReplica(rank);
      }
    }
    const members = [...live].sort((a, b) => a - b);
    const g = ++this.generation;
    const group = `ddp-${this.jobId}/ring-${g}`;

    // 1a. Watch for the addresses before asking, so that none arrives unheard.
    const addresses = this.collect(members, (_r, msg) => (msg.type === MSG.RING_ADDRESS && msg.generation === g ? msg : undefined), g, 'ring address', 'DDP_RING_FORMATION');
    addresses.catch(() => {});
    members.forEach((rank, position) => this.send(rank, { type: MSG.RING_LISTEN, generation: g, position, size: members.length, group }));
    const got = await addresses;
    // 1b. Every live member's reports are in: the run of the last ring is over.
    const resume = this.committed;
    // Reports of the last ring are no longer taken; a report for ring g before its ring_run (an empty
    // run: from = until) is a protocol violation, and the sender is dropped.
    this.active = { steps: new RingSteps(g, members, resume, resume, () => ({ shard: 0, batch: 0 })), onStep };
    const newcomers: number[] = [];
    for (const rank of members) {
      const steps = got.get(rank)!.steps;
      if (steps < 0 || !this.holders.has(rank)) newcomers.push(rank);
      else if (steps !== resume && steps !== resume + 1) throw new RunError('DDP_MISMATCH', `rank ${rank} holds ${steps} step(s), but the ring resumes at step ${resume}: a replica can roll back one step only`);
    }
    // 1c.
    const ready = this.collect(members, (_r, msg) => (msg.type === MSG.RING_READY && msg.generation === g ? true : undefined), g, 'ring link', 'DDP_RING_FORMATION');
    const urls = members.map((r) => got.get(r)!.url);
    for (const rank of members) this.send(rank, { type: MSG.RING_CONNECT, generation: g, urls, resume });
    await ready;
    // 1d.
    if (newcomers.length > 0) {
      const state = await this.fetchState(members.find((r) => !newcomers.includes(r)) ?? this.pickHolder(), resume, true);
      for (const rank of newcomers) {
        this.send(rank, { type: MSG.REPLICA, steps: state.steps, params: state.params, lr: this.initial!.lr, adamM: state.adamM, adamV: state.adamV });
        this.holders.add(rank);
      }
      this.pool.note(`rank(s) ${newcomers.join(', ')} got the replica after step ${state.steps} and join the ring`);
    }
    this.ring = members;
    this.opts.onEvent?.({ event: 'ring_formed', generation: g, size: members.length, ranks: members, step: resume, addresses: urls });
  }

  // ---- protocol 2-3, 6: a run --------------------------------------------------------------

  private async runOnRing(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void> {
    const members = this.ring!;
    const g = this.generation;
    const size = members.length;
    const steps = new RingSteps(g, members, this.committed, until, (step, position) => {
      const batch = this.plan.at(step).batch.length;
      return { shard: shardLengths(batch, size, shardUnit(this.opts.reduction ?? 'fast'))[position]!, batch };
    });
    this.active = { steps, onStep };
    const finished = new Promise<void>((resolve, reject) => {
      const watch: Watch = {
        ranks: new Set(members),
        onMessage: (rank, msg) => {
          if (msg.type === MSG.RING_FAILED && msg.generation === g) {
            done(new RingBroken(`the allreduce of ring ${g} failed at rank ${rank} (${msg.code}: ${msg.message})`, 'failed'));
            return;
          }
          if (steps.complete) done();
        },
        fail: (err) => done(err),
      };
      const done = (err?: Error) => {
        this.watches.delete(watch);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => done();
      signal?.addEventListener('abort', onAbort);
      this.watches.add(watch);
    });
    finished.catch(() => {});
    // A run is long (an epoch): it stalls only when no step was committed for a whole stall period.
    const runStart = performance.now();
    this.runCommitAt = -1;
    const stopWatch = this.pool.watchStall(
      () => this.committed + 1,
      () => steps.waitingFor,
      () => Math.max(runStart, this.lastCommitAt),
    );
    try {
      const snapshots = this.snapshotEvery > 0 ? { snapshotEvery: this.snapshotEvery } : {};
      for (const rank of members) this.send(rank, { type: MSG.RING_RUN, generation: g, from: this.committed, until, ...snapshots });
      await finished;
    } finally {
      stopWatch();
    }
    if (signal?.aborted && !steps.complete) {
      // Protocol 6: leave the ring; every member's reports come before its ring_stopped.
      const stopped = this.collect(members, (_r, msg) => (msg.type === MSG.RING_STOPPED && msg.generation === g ? msg.steps : undefined), null, 'ring_stopped', 'DDP_STALLED');
      for (const rank of members) this.send(rank, { type: MSG.RING_STOP, generation: g });
      this.ring = null;
      await stopped;
    }
  }
}
