/**
 * A worker's part in ring mode (the protocol is written out in coordinator/src/ring/ring-trainer.ts):
 * it holds a replica of the weights and Adam state, joins the rings the coordinator forms, and runs
 * the steps it is told to run on its own: for each step it takes its shard of the step's global
 * batch from the plan (by ring position), computes the gradient sum, reduces it with its ring
 * neighbours (ringAllreduce over the WebSocket peer transport), applies Adam, and reports progress.
 * With reduction 'exact' the shard is a whole number of micro-shards, their gradient and loss sums
 * go into an ExactAccumulator (model/reduction.ts) and ringAllreduceExact reduces it: every member
 * gets the bits of one process. The loss travels as the accumulator's last element; the member at
 * position 0 reports the total, the others 0 (the coordinator's sum is then the exact total).
 * No step waits for the coordinator.
 *
 * Messages are handled one at a time, in arrival order, on a queue. Exceptions, acted on as soon as
 * they arrive: a ring_listen for a newer ring and a ring_stop abandon the current ring (a run on it
 * stops after the step in hand; an allreduce in flight fails at once instead of waiting for a peer
 * that is gone).
 *
 * A step's report is sent before the next step's allreduce starts. So when a ring breaks, every
 * member has reported all but at most its last applied step, and the coordinator's resume point
 * (steps reported by every member) is at most one step behind any replica: a roll-back of one.
 */
import {
  CollectiveError,
  EXACT_LAYOUT,
  EXACT_LOSS,
  MSG,
  NonFiniteGradient,
  SEED_CNN_PARAM_COUNT,
  TrainingPlan,
  addExactGradient,
  exactAccumulator,
  gradientSum,
  ringAllreduce,
  ringAllreduceExact,
  shardUnit,
  type EvaluateMessage,
  type ExactAccumulator,
  type Transport,
  type RingConnectMessage,
  type RingCoordinatorMessage,
  type RingListenMessage,
  type RingRunMessage,
  type ShardInputs,
  type TlsMaterial,
} from '@ddp/core';
import { PeerEndpoint, type WsTransport } from '../peer/index.js';
import type { Member, MemberContext } from '../member.js';
import { answerEvaluate } from '../evaluate-shard.js';
import { CountingTransport } from './counting-transport.js';
import { Replica } from './replica.js';
import { ShardPrefetch } from './shard-inputs.js';

export interface RingMemberOptions {
  /** The shared token: ring peers present it to each other. */
  token: string;
  /** Interface to listen on for ring peers. */
  peerHost: string;
  /** Address the other members dial (default: peerHost; required when peerHost is a wildcard). */
  advertiseHost?: string;
  /** How long linking to the neighbours may take (default 30000 ms). */
  connectTimeoutMs?: number;
  /** Peer links over TLS: serve with this certificate, dial with it, verify peers against `ca`. */
  tls?: TlsMaterial & { ca: Buffer };
}

interface Ring {
  generation: number;
  position: number;
  size: number;
  endpoint: PeerEndpoint;
  transport: WsTransport | null;
  /** Set when this ring is abandoned (a newer one was announced, a stop, or the session ended). */
  gone: boolean;
  /** Resolves when this ring is abandoned. */
  abandoned: Promise<void>;
  abandon(): void;
}

/** Thrown inside the queue when the ring an operation waited on was abandoned: not a fault. */
class Abandoned extends Error {}

export class RingMember implements Member<RingCoordinatorMessage | EvaluateMessage> {
  private replica: Replica | null = null;
  private ring: Ring | null = null;
  /** The newest generation announced (on arrival, before the queue gets to it). */
  private announced = -1;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly prefetch: ShardPrefetch;
  private readonly plan: TrainingPlan;
  /** The gradient and the reduced sum of the step in hand, reused step after step (no garbage per step). */
  private readonly grad = new Float32Array(SEED_CNN_PARAM_COUNT);
  private readonly sum = new Float32Array(SEED_CNN_PARAM_COUNT);
  /**
   * Reduction 'exact': the step's exact sums, and their rounded values (gradient, then the loss sum);
   * made on the first exact step (~750 KB that a fast run never needs).
   */
  private exactBuffers: { acc: ExactAccumulator; sum: Float32Array } | null = null;

  constructor(
    private readonly ctx: MemberContext,
    private readonly opts: RingMemberOptions,
  ) {
    this.prefetch = new ShardPrefetch(ctx.train);
    const { plan, data } = ctx.welcome;
    this.plan = new TrainingPlan({ seed: plan.seed, batchSize: plan.batchSize, trainCount: data.trainCount });
  }

  /** Shards that were ready when their step came, and shards gathered on demand. */
  get prefetchStats(): { hits: number; misses: number } {
    return { hits: this.prefetch.hits, misses: this.prefetch.misses };
  }

  /** Replica steps applied (for tests and logs); -1 before the replica arrived. */
  get steps(): number {
    return this.replica?.steps ?? -1;
  }

  handle(msg: RingCoordinatorMessage | EvaluateMessage, _receivedAt = performance.now()): void {
    if (this.closed) return;
    if (msg.type === MSG.RING_LISTEN && msg.generation > this.announced) {
      this.announced = msg.generation;
      this.dropRing();
    }
    if (msg.type === MSG.RING_STOP && this.ring?.generation === msg.generation) this.dropRing();
    this.queue = this.queue
      .then(() => (this.closed ? undefined : this.process(msg)))
      .catch((err: unknown) => {
        if (err instanceof Abandoned || this.closed) return;
        this.close();
        this.ctx.fail('DDP_WORKER', `ring mode: ${err instanceof Error ? err.message : String(err)}`);
      });
  }

  /** Resolves once every message handed in so far has been handled (tests use it). */
  settled(): Promise<void> {
    return this.queue;
  }

  /** Leaves the ring for good (the session ended). */
  close(): void {
    this.closed = true;
    this.dropRing();
  }

  private async process(msg: RingCoordinatorMessage | EvaluateMessage): Promise<void> {
    switch (msg.type) {
      case MSG.REPLICA:
        this.replica = new Replica(msg);
        return;
      case MSG.RING_LISTEN:
        return this.listen(msg);
      case MSG.RING_CONNECT:
        return this.connect(msg);
      case MSG.RING_RUN:
        return this.run(msg);
      case MSG.RING_STOP:
        // The ring was left at arrival; now that the run has ended, say where this replica stands.
        this.ctx.send({ type: MSG.RING_STOPPED, generation: msg.generation, steps: this.replica?.steps ?? -1 });
        return;
      case MSG.EVALUATE:
        answerEvaluate(this.ctx, msg, msg.params ?? this.requireReplica('evaluate').snapshot(msg.steps, false).params);
        return;
      case MSG.FETCH: {
        const s = this.requireReplica('fetch').snapshot(msg.steps, msg.optimizer);
        this.ctx.send({ type: MSG.STATE, request: msg.request, ...s });
        return;
      }
    }
  }

  private requireReplica(what: string): Replica {
    if (!this.replica) throw new Error(`${what} before the coordinator sent the replica`);
    return this.replica;
  }

  private dropRing(): void {
    const r = this.ring;
    if (!r) return;
    this.ring = null;
    r.gone = true;
    r.abandon();
    r.transport?.destroy();
    void r.endpoint.close().catch(() => {});
  }

  private async listen(msg: RingListenMessage): Promise<void> {
    if (msg.generation < this.announced) return; // superseded while it waited in the queue
    this.prefetch.clear();
    this.dropRing();
    let endpoint: PeerEndpoint;
    try {
      endpoint = await PeerEndpoint.listen({
        rank: msg.position,
        size: msg.size,
        token: this.opts.token,
        group: msg.group,
        topology: 'ring',
        host: this.opts.peerHost,
        advertiseHost: this.opts.advertiseHost,
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 30_000,
        tls: this.opts.tls,
      });
    } catch (err) {
      this.ctx.send({ type: MSG.RING_FAILED, generation: msg.generation, step: -1, code: 'LISTEN', position: msg.position, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.closed || msg.generation < this.announced) {
      void endpoint.close();
      return;
    }
    let abandon = () => {};
    const abandoned = new Promise<void>((resolve) => (abandon = resolve));
    this.ring = { generation: msg.generation, position: msg.position, size: msg.size, endpoint, transport: null, gone: false, abandoned, abandon };
    this.ctx.send({ type: MSG.RING_ADDRESS, generation: msg.generation, url: endpoint.url, steps: this.replica?.steps ?? -1 });
  }

  /** The current ring if it is generation `g`; null for an older or abandoned one (a stale message); throws for one never announced. */
  private ringOf(g: number, what: string): Ring | null {
    if (g > this.announced) throw new Error(`${what} for ring ${g}, which was never announced (newest: ${this.announced})`);
    const r = this.ring;
    return r && r.generation === g && !r.gone ? r : null;
  }

  private async connect(msg: RingConnectMessage): Promise<void> {
    const r = this.ringOf(msg.generation, 'ring_connect');
    if (!r) return;
    if (msg.urls.length !== r.size) throw new Error(`ring_connect: ${msg.urls.length} urls for a ring of ${r.size}`);
    // A member that applied the step the ring broke in rolls it back (a newcomer has no replica yet).
    this.replica?.rollTo(msg.resume);
    const linking = r.endpoint.connect(msg.urls);
    linking.catch(() => {}); // may reject after the ring was abandoned
    try {
      r.transport = await Promise.race([linking, r.abandoned.then(() => Promise.reject(new Abandoned()))]);
    } catch (err) {
      if (err instanceof Abandoned) return;
      const e = err instanceof CollectiveError ? err : null;
      this.ctx.send({ type: MSG.RING_FAILED, generation: r.generation, step: -1, code: e?.code ?? 'CONNECT', position: e?.rank ?? -1, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.ctx.send({ type: MSG.RING_READY, generation: r.generation });
  }

  /** Runs steps [from, until) on ring `generation`, or until it is abandoned or fails. */
  private async run(msg: RingRunMessage): Promise<void> {
    const r = this.ringOf(msg.generation, 'ring_run');
    if (!r) return;
    if (!r.transport) throw new Error(`ring_run for steps ${msg.from + 1}..${msg.until} before ring ${msg.generation} was linked`);
    const replica = this.requireReplica('ring_run');
    if (replica.steps !== msg.from) throw new Error(`ring_run from step ${msg.from}, but the replica is at step ${replica.steps}`);
    const { compress, hashEvery, reduction } = this.ctx.welcome.config;
    const unit = shardUnit(reduction);
    const exact = reduction === 'exact';
    let lastReport = -1;
    for (let step = msg.from; step < msg.until; step++) {
      // A ring of one never waits on the network: yield anyway, so that a ring_listen or ring_stop
      // that arrives mid-run is seen (it abandons the ring) before the next step.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (r.gone || this.closed) return;
      const t0 = performance.now();
      const batchSize = this.plan.at(step).batch.length;
      const inputs = this.prefetch.take(this.plan.shardOf(step, r.position, r.size, unit));
      const t1 = performance.now();
      const g = exact ? this.exactGradient(replica, inputs) : this.gradient(replica, inputs);
      const t2 = performance.now();

      const counting = new CountingTransport(r.transport);
      // Adam runs on each chunk of the sum as soon as the allreduce has it final: on this member's
      // own chunk while the others' travel (the step commits only once the whole sum is in).
      const update = replica.begin(batchSize);
      let adamMs = 0;
      const onChunk = (sum: Float32Array, start: number, end: number) => {
        const a = performance.now();
        update.apply(sum, start, end);
        adamMs += performance.now() - a;
      };
      const reducing = exact
        ? this.reduceExact(counting, onChunk)
        : ringAllreduce(counting, g.grad, { compress, tag: 'grad', out: this.sum, onChunk });
      // While the allreduce waits on the network, prepare the next step's shard.
      if (step + 1 < msg.until) this.prefetch.prepare(this.plan.shardOf(step + 1, r.position, r.size, unit));
      let sum: Float32Array;
      try {
        sum = await reducing;
      } catch (err) {
        if (r.gone || this.closed) return; // abandoned: not a fault
        if (!(err instanceof CollectiveError)) throw err;
        this.ctx.send({ type: MSG.RING_FAILED, generation: r.generation, step, code: err.code, position: err.rank, message: err.message });
        return;
      }
      if (r.gone || this.closed) return; // abandoned while the last receive completed: the coordinator resumes before this step
      const t3 = performance.now();
      try {
        update.finish(sum);
      } catch (err) {
        if (!(err instanceof NonFiniteGradient)) throw err;
        const why = compress === 'fp16' ? 'beyond the float16 range (run with --compress none)' : 'not finite (the training diverged)';
        this.ctx.send({ type: MSG.RING_FAILED, generation: r.generation, step, code: 'NON_FINITE', position: -1, message: `at step ${step + 1}, ${err.message}: ${why}` });
        return;
      }
      const snapshot = msg.snapshotEvery !== undefined && msg.snapshotEvery > 0 && (step + 1) % msg.snapshotEvery === 0;
      const hash = (step + 1) % hashEvery === 0 || step + 1 === msg.until || snapshot ? replica.hash() : undefined;
      const t4 = performance.now();
      this.ctx.send({
        type: MSG.RING_PROGRESS,
        generation: r.generation,
        step,
        count: inputs.indices.length,
        // Exact: the total over the ring, reported once (0 + total + 0 ... is the total, bit for bit).
        lossSum: exact ? (r.position === 0 ? this.exact().sum[EXACT_LOSS]! : 0) : g.lossSum,
        ...(hash ? { hash } : {}),
        bytesSent: counting.bytesSent,
        prepareMs: t1 - t0,
        computeMs: t2 - t1,
        // Adam ran partly inside the allreduce (on chunks as they became final): it counts once, as optimizer.
        allreduceMs: t3 - t2 - adamMs,
        optimizerMs: t4 - t3 + adamMs,
        cycleMs: lastReport >= 0 ? t4 - lastReport : 0,
      });
      lastReport = t4;
      // A checkpoint's state, sent without stopping the ring (the coordinator keeps it once the
      // step is committed with this hash): one member sends it, after the step's report.
      if (snapshot && r.position === 0) this.ctx.send({ type: MSG.STATE, request: 0, ...replica.snapshot(step + 1, true) });
    }
  }

  private exact(): { acc: ExactAccumulator; sum: Float32Array } {
    if (this.exactBuffers === null) {
      const acc = exactAccumulator();
      this.exactBuffers = { acc, sum: new Float32Array(acc.length) };
    }
    return this.exactBuffers;
  }

  /** Reduction 'exact': the shard's micro-shard gradient and loss sums, into the exact accumulator (reset first). */
  private exactGradient(replica: Replica, inputs: ShardInputs): { lossSum: number; grad: Float32Array } {
    const { acc } = this.exact();
    acc.reset();
    const n = inputs.indices.length;
    if (n > 0) addExactGradient(acc, replica.params, inputs.images, inputs.labels, n, this.grad);
    return { lossSum: 0, grad: this.grad };
  }

  /** Reduction 'exact': the ring's exact sum of the accumulators; resolves to the rounded gradient (the loss sum stays in exact().sum). */
  private reduceExact(transport: Transport, onChunk: (sum: Float32Array, start: number, end: number) => void): Promise<Float32Array> {
    const { acc, sum } = this.exact();
    // The rounded gradient is the first P values of sum (the last is the loss sum).
    const grad = sum.subarray(0, EXACT_LOSS);
    return ringAllreduceExact(transport, acc, {
      tag: 'grad',
      layout: EXACT_LAYOUT,
      out: sum,
      onChunk: (_sum, start, end) => {
        if (start < Math.min(end, EXACT_LOSS)) onChunk(grad, start, Math.min(end, EXACT_LOSS));
      },
    }).then(() => grad);
  }

  /** The gradient sum of a shard at the replica's weights (zeros for an empty shard). */
  private gradient(replica: Replica, inputs: ShardInputs): { lossSum: number; grad: Float32Array } {
    const n = inputs.indices.length;
    if (n === 0) {
      this.grad.fill(0);
      return { lossSum: 0, grad: this.grad };
    }
    return gradientSum(replica.params, inputs.images, inputs.labels, n, this.grad);
  }
}
