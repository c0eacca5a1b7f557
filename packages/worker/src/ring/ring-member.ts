/**
 * A worker's part in ring mode (the step protocol is written out in
 * coordinator/src/server/ring-executor.ts): it holds a replica of the weights and Adam state, joins
 * the rings the coordinator forms, and for each step computes its shard's gradient sum, reduces it
 * with its ring neighbours (ringAllreduce over the WebSocket peer transport), and applies Adam.
 *
 * Messages are handled one at a time, in arrival order, on a queue. One exception: a ring_listen for
 * a newer ring abandons the current one as soon as it arrives (an allreduce in flight on it fails at
 * once instead of waiting for a peer that is gone), then waits its turn on the queue.
 *
 * Overlap. The coordinator names, with each step's shard, the shard this member will most likely get
 * next. While the allreduce waits on the network the member gathers that shard's pixels; once the
 * step is applied and answered, it computes that shard's gradient sum at once ("ahead"), while the
 * coordinator collects the answers and sends the next work. When the work comes for exactly those
 * indices and the replica has not changed since, the gradient is ready; otherwise it is recomputed.
 * Either way the numbers are the same: the same weights and pixels give the same bits.
 */
import {
  CollectiveError,
  MSG,
  gradientSum,
  ringAllreduce,
  SEED_CNN_PARAM_COUNT,
  type Compression,
  type ProtocolErrorCode,
  type RingConnectMessage,
  type RingCoordinatorMessage,
  type RingListenMessage,
  type RingWorkMessage,
  type Split,
  type WorkerToCoordinator,
} from '@ddp/core';
import { PeerEndpoint, type WsTransport } from '../peer/index.js';
import { CountingTransport } from './counting-transport.js';
import { NonFiniteGradient, Replica } from './replica.js';
import { gatherShard, sameIndices, ShardPrefetch, type ShardInputs } from './shard-inputs.js';

export interface RingMemberOptions {
  /** The shared token: ring peers present it to each other. */
  token: string;
  /** Interface to listen on for ring peers. */
  peerHost: string;
  /** Address the other members dial (default: peerHost; required when peerHost is a wildcard). */
  advertiseHost?: string;
  compress: Compression;
  /** The local training split, or null with --serve-data. */
  train: Split | null;
  rows: number;
  cols: number;
  /** Sends a message to the coordinator. */
  send(msg: WorkerToCoordinator): void;
  /** Ends the session for a fault of this worker's own (the coordinator gets the code and message). */
  fail(code: ProtocolErrorCode, message: string): void;
  /** How long linking to the neighbours may take (default 30000 ms). */
  connectTimeoutMs?: number;
  /** Compute the announced next shard's gradient right after answering a step (default true). */
  computeAhead?: boolean;
}

/** A gradient sum computed before its work order arrived. */
interface Ahead {
  /** The replica version it was computed at. */
  version: number;
  indices: Uint32Array;
  lossSum: number;
  grad: Float32Array;
  prepareMs: number;
  computeMs: number;
}

interface Ring {
  generation: number;
  position: number;
  size: number;
  endpoint: PeerEndpoint;
  transport: WsTransport | null;
  /** Resolves when this ring is abandoned (a newer one was announced, or the session ended). */
  abandoned: Promise<void>;
  abandon(): void;
}

/** Thrown inside the queue when the ring an operation waited on was abandoned: not a fault. */
class Abandoned extends Error {}

export class RingMember {
  private replica: Replica | null = null;
  private ring: Ring | null = null;
  /** The newest generation announced (on arrival, before the queue gets to it). */
  private announced = -1;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly prefetch: ShardPrefetch;
  /** Bumped whenever the replica's weights change (a step applied or rolled back, a new replica). */
  private version = 0;
  private ahead: Ahead | null = null;
  /** When the last ring_result went out (-1: none since the ring formed or the weights were fetched). */
  private lastReplyAt = -1;
  /** Gradients computed ahead that were used, and that were thrown away. */
  readonly aheadStats = { used: 0, wasted: 0 };

  constructor(private readonly opts: RingMemberOptions) {
    this.prefetch = new ShardPrefetch(opts.train);
  }

  /** Shards that were ready when their step came, and shards gathered on demand. */
  get prefetchStats(): { hits: number; misses: number } {
    return { hits: this.prefetch.hits, misses: this.prefetch.misses };
  }

  /** Replica steps applied (for tests and logs); -1 before the replica arrived. */
  get steps(): number {
    return this.replica?.steps ?? -1;
  }

  handle(msg: RingCoordinatorMessage, receivedAt = performance.now()): void {
    if (this.closed) return;
    if (msg.type === MSG.RING_LISTEN && msg.generation > this.announced) {
      this.announced = msg.generation;
      this.dropRing();
    }
    this.queue = this.queue
      .then(() => (this.closed ? undefined : this.process(msg, receivedAt)))
      .catch((err: unknown) => {
        if (err instanceof Abandoned || this.closed) return;
        this.close();
        this.opts.fail('DDP_WORKER', `ring mode: ${err instanceof Error ? err.message : String(err)}`);
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

  private async process(msg: RingCoordinatorMessage, receivedAt: number): Promise<void> {
    switch (msg.type) {
      case MSG.REPLICA:
        this.replica = new Replica(msg);
        this.version += 1;
        return;
      case MSG.RING_LISTEN:
        return this.listen(msg);
      case MSG.RING_CONNECT:
        return this.connect(msg);
      case MSG.RING_WORK:
        return this.work(msg, receivedAt);
      case MSG.FETCH: {
        const s = this.requireReplica('fetch').snapshot(msg.optimizer);
        this.opts.send({ type: MSG.STATE, request: msg.request, ...s });
        this.lastReplyAt = -1; // the coordinator evaluates now: not part of a step cycle
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
    r.abandon();
    r.transport?.destroy();
    void r.endpoint.close().catch(() => {});
  }

  private async listen(msg: RingListenMessage): Promise<void> {
    if (msg.generation < this.announced) return; // superseded while it waited in the queue
    const replica = this.requireReplica('ring_listen');
    const before = replica.steps;
    replica.rollTo(msg.resume);
    if (replica.steps !== before) this.version += 1;
    this.dropShardsAhead();
    this.lastReplyAt = -1;
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
      });
    } catch (err) {
      this.opts.send({ type: MSG.RING_FAILED, generation: msg.generation, step: -1, code: 'LISTEN', position: msg.position, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.closed || msg.generation < this.announced) {
      void endpoint.close();
      return;
    }
    let abandon = () => {};
    const abandoned = new Promise<void>((resolve) => (abandon = resolve));
    this.ring = { generation: msg.generation, position: msg.position, size: msg.size, endpoint, transport: null, abandoned, abandon };
    this.opts.send({ type: MSG.RING_ADDRESS, generation: msg.generation, url: endpoint.url });
  }

  /** The current ring if it is generation `g`; null for an older one (a stale message); throws for one never announced. */
  private ringOf(g: number, what: string): Ring | null {
    if (g > this.announced) throw new Error(`${what} for ring ${g}, which was never announced (newest: ${this.announced})`);
    const r = this.ring;
    return r && r.generation === g ? r : null;
  }

  private async connect(msg: RingConnectMessage): Promise<void> {
    const r = this.ringOf(msg.generation, 'ring_connect');
    if (!r) return;
    if (msg.urls.length !== r.size) throw new Error(`ring_connect: ${msg.urls.length} urls for a ring of ${r.size}`);
    const linking = r.endpoint.connect(msg.urls);
    linking.catch(() => {}); // may reject after the ring was abandoned
    try {
      r.transport = await Promise.race([linking, r.abandoned.then(() => Promise.reject(new Abandoned()))]);
    } catch (err) {
      if (err instanceof Abandoned) return;
      const e = err instanceof CollectiveError ? err : null;
      this.opts.send({ type: MSG.RING_FAILED, generation: r.generation, step: -1, code: e?.code ?? 'CONNECT', position: e?.rank ?? -1, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.opts.send({ type: MSG.RING_READY, generation: r.generation });
  }

  private dropShardsAhead(): void {
    if (this.ahead) this.aheadStats.wasted += 1;
    this.ahead = null;
    this.prefetch.clear();
  }

  private async work(msg: RingWorkMessage, receivedAt: number): Promise<void> {
    const r = this.ringOf(msg.generation, 'ring_work');
    if (!r) return;
    if (!r.transport) throw new Error(`ring_work for step ${msg.step + 1} before ring ${msg.generation} was linked`);
    const replica = this.requireReplica('ring_work');
    const failed = (code: string, position: number, message: string) =>
      this.opts.send({ type: MSG.RING_FAILED, generation: r.generation, step: msg.step, code, position, message });

    const t0 = performance.now();
    const cycleStart = this.lastReplyAt;
    const served = msg.images && msg.labels ? { images: msg.images, labels: msg.labels, rows: this.opts.rows, cols: this.opts.cols } : null;
    let g: { lossSum: number; grad: Float32Array };
    let prepareMs: number;
    let computeMs: number;
    let aheadMs = 0;
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead && !served && ahead.version === this.version && sameIndices(ahead.indices, msg.indices)) {
      this.aheadStats.used += 1;
      g = ahead;
      prepareMs = ahead.prepareMs;
      computeMs = ahead.computeMs;
      aheadMs = prepareMs + computeMs;
    } else {
      if (ahead) this.aheadStats.wasted += 1;
      let inputs: ShardInputs | null = served ? null : this.prefetch.take(msg.indices);
      if (!inputs) inputs = gatherShard(msg.indices, this.opts.train, served);
      const t1 = performance.now();
      g = this.gradient(replica, inputs);
      prepareMs = t1 - t0;
      computeMs = performance.now() - t1;
    }
    const t2 = performance.now();

    const counting = new CountingTransport(r.transport);
    const reducing = ringAllreduce(counting, g.grad, { compress: this.opts.compress, tag: 'grad' });
    // While the allreduce waits on the network, prepare the next step's shard.
    if (msg.next && !served) this.prefetch.prepare(msg.next);
    let sum: Float32Array;
    try {
      sum = await reducing;
    } catch (err) {
      if (!(err instanceof CollectiveError)) throw err;
      failed(err.code, err.rank, err.message);
      return;
    }
    const t3 = performance.now();
    let hash: string;
    try {
      hash = replica.apply(sum, msg.batchSize);
    } catch (err) {
      if (!(err instanceof NonFiniteGradient)) throw err;
      const why = this.opts.compress === 'fp16' ? 'beyond the float16 range (run with --compress none)' : 'not finite (the training diverged)';
      failed('NON_FINITE', -1, `at step ${msg.step + 1}, ${err.message}: ${why}`);
      return;
    }
    this.version += 1;
    const t4 = performance.now();
    this.opts.send({
      type: MSG.RING_RESULT,
      generation: r.generation,
      step: msg.step,
      task: msg.task,
      count: msg.indices.length,
      lossSum: g.lossSum,
      hash,
      bytesSent: counting.bytesSent,
      prepareMs,
      computeMs,
      allreduceMs: t3 - t2,
      optimizerMs: t4 - t3,
      busyMs: t4 - receivedAt,
      aheadMs,
      cycleMs: cycleStart >= 0 ? t4 - cycleStart : 0,
    });
    this.lastReplyAt = t4;
    if (msg.next && !served && this.opts.computeAhead !== false) this.computeAhead(replica, msg.next);
  }

  /** The gradient sum of a shard at the replica's weights (zeros for an empty shard). */
  private gradient(replica: Replica, inputs: ShardInputs): { lossSum: number; grad: Float32Array } {
    const n = inputs.indices.length;
    return n === 0 ? { lossSum: 0, grad: new Float32Array(SEED_CNN_PARAM_COUNT) } : gradientSum(replica.params, inputs.images, inputs.labels, n);
  }

  /** Computes the announced next shard's gradient now, while the coordinator turns the step around. */
  private computeAhead(replica: Replica, next: Uint32Array): void {
    const t0 = performance.now();
    const inputs = this.prefetch.take(next) ?? gatherShard(next.slice(), this.opts.train, null);
    const t1 = performance.now();
    const g = this.gradient(replica, inputs);
    const t2 = performance.now();
    this.ahead = { version: this.version, indices: inputs.indices, lossSum: g.lossSum, grad: g.grad, prepareMs: t1 - t0, computeMs: t2 - t1 };
  }
}
