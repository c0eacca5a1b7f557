/**
 * The contracts both sides import: one type constant and one payload type per message. The `type`
 * strings are the names on the wire and never change meaning within a PROTOCOL_VERSION.
 *
 * A connection, in order:
 *   worker -> hello      (version, token, backend)
 *   coord  -> welcome    (rank, the data set to load, parameter count, heartbeat period, the
 *                         wire settings (wire-config.ts: allreduce, compress, reduction, ...) and
 *                         the plan (seed, global batch size) from which every step's batch follows)
 *             or error   (DDP_AUTH, DDP_VERSION, DDP_FULL, ...) and close
 *   coord  -> train_data (with --serve-data: the training split in chunks, once, before any work)
 *   then in star mode, per step and per shard the worker is given (coordinator/src/star):
 *   coord  -> work       (step, task id, weights, sample indices)
 *   worker -> gradient   (task id, sample count, loss sum, gradient SUM: one Float32Array, or its
 *                         float16 bits as one Uint16Array with compress 'fp16', or one
 *                         Float64Array with reduction 'exact')
 *   or in ring mode (the workers hold the weights and draw their own shards from the plan; the
 *   protocol is written out in coordinator/src/ring/ring-trainer.ts):
 *   coord  -> replica     (weights and Adam state to start from)
 *   coord  -> ring_listen (ring generation, position, size) ... worker -> ring_address (peer url, steps held)
 *   coord  -> ring_connect (every member's url, the step to resume at) ... worker -> ring_ready
 *   coord  -> ring_run    (run steps [from, until))  ... worker -> ring_progress per step (loss, timing,
 *                                                      a weight hash every hashEvery steps)
 *                                                      or ring_failed (the allreduce failed)
 *   coord  -> ring_stop   (leave the ring now: the run is interrupted) ... worker -> ring_stopped (steps held)
 *   coord  -> fetch       (send me your weights at step k) ... worker -> state
 *   any time: coord -> ping, worker -> pong (heartbeat); either side -> error (then close);
 *   coord  -> done       (the job is over; the worker exits 0)
 */
import type { Compression } from '../allreduce/allreduce-options.js';
import type { ProtocolErrorCode } from './protocol-error.js';
import type { WireConfig } from './wire-config.js';

export { ALLREDUCE_MODES, COMPRESSIONS, type AllreduceMode } from './wire-config.js';
export type { Compression };

export const MSG = {
  HELLO: 'hello',
  WELCOME: 'welcome',
  TRAIN_DATA: 'train_data',
  WORK: 'work',
  GRADIENT: 'gradient',
  PING: 'ping',
  PONG: 'pong',
  DONE: 'done',
  ERROR: 'error',
  // ring mode
  REPLICA: 'replica',
  RING_LISTEN: 'ring_listen',
  RING_ADDRESS: 'ring_address',
  RING_CONNECT: 'ring_connect',
  RING_READY: 'ring_ready',
  RING_RUN: 'ring_run',
  RING_PROGRESS: 'ring_progress',
  RING_FAILED: 'ring_failed',
  RING_STOP: 'ring_stop',
  RING_STOPPED: 'ring_stopped',
  FETCH: 'fetch',
  STATE: 'state',
} as const;
export type MessageType = (typeof MSG)[keyof typeof MSG];

/** worker -> coordinator, first message on a connection. */
export interface HelloMessage {
  type: typeof MSG.HELLO;
  protocolVersion: number;
  /** The shared token ('' when the worker has none). */
  token: string;
  /** The worker's tfjs backend, for the worker_joined event. */
  backend: string;
  /** For people reading logs: host name and process id. */
  host: string;
  pid: number;
}

/** Where the worker gets its training samples from. */
export interface DataSpec {
  dataset: string;
  /** The coordinator's --data-dir (a worker may override it with its own). */
  dataDir?: string;
  limitTrain?: number;
  /** Number of training samples the coordinator has: a worker whose copy differs is refused. */
  trainCount: number;
  /** sha256 (hex) of the training labels and images the coordinator loaded. */
  fingerprint: string;
  /** True with --serve-data: the coordinator sends the training split (train_data) after the welcome. */
  serveData: boolean;
  /** Image size, rows x cols (28 x 28 for MNIST). */
  rows: number;
  cols: number;
  numClasses: number;
}

/** What every step's global batch follows from (data/plan.ts), with the data set's sample count. */
export interface PlanMessageSpec {
  seed: number;
  batchSize: number;
}

/** coordinator -> worker, reply to an accepted hello. */
export interface WelcomeMessage {
  type: typeof MSG.WELCOME;
  protocolVersion: number;
  rank: number;
  /** How many workers the job runs with. */
  workers: number;
  /** Length of the flat parameter vector (and so of every gradient). */
  paramCount: number;
  /** The coordinator pings this often; a worker may treat a much longer silence as a dead coordinator. */
  heartbeatMs: number;
  data: DataSpec;
  /** The wire settings (allreduce, compress, reduction, hashEvery), declared in wire-config.ts. */
  config: WireConfig;
  plan: PlanMessageSpec;
}

/**
 * coordinator -> worker, with --serve-data only: samples [offset, offset + count) of the training
 * split (pixels uint8, count x rows x cols, and labels), in order, right after the welcome. The
 * worker checks the assembled split against the fingerprint before it takes any work.
 */
export interface TrainDataMessage {
  type: typeof MSG.TRAIN_DATA;
  offset: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** coordinator -> worker: compute the gradient sum of one shard at these weights. */
export interface WorkMessage {
  type: typeof MSG.WORK;
  step: number;
  epoch: number;
  /** Unique per (step, shard): the gradient message names it, so a late or stray answer is recognised. */
  task: number;
  params: Float32Array;
  /** Indices into the training split. */
  indices: Uint32Array;
}

/** worker -> coordinator: the answer to one work message. */
export interface GradientMessage {
  type: typeof MSG.GRADIENT;
  step: number;
  task: number;
  /** Number of samples summed (the shard's size). */
  count: number;
  /** Sum of the per-sample losses. */
  lossSum: number;
  /**
   * Gradient of lossSum, flat, in the parameter layout (tensor fusion: one vector per step):
   * float32; with compress 'fp16' the float16 bit patterns of its values (Uint16Array); with
   * reduction 'exact' the split-invariant float64 sum (Float64Array).
   */
  grad: Float32Array | Uint16Array | Float64Array;
  /** Milliseconds in the gradient computation, and from receiving the work to sending this. */
  computeMs: number;
  busyMs: number;
}

export interface PingMessage {
  type: typeof MSG.PING;
  nonce: number;
}

export interface PongMessage {
  type: typeof MSG.PONG;
  nonce: number;
}

/** coordinator -> worker: the job is over. */
export interface DoneMessage {
  type: typeof MSG.DONE;
  reason: string;
}

/** Either direction: a fault, sent just before closing. */
export interface ErrorMessage {
  type: typeof MSG.ERROR;
  code: ProtocolErrorCode;
  message: string;
}

/**
 * ring mode, coordinator -> worker: the replica to hold, as it is after `steps` optimizer steps.
 * Sent once at the start (Adam state absent: zeros) and to a worker that joins later (with it).
 */
export interface ReplicaMessage {
  type: typeof MSG.REPLICA;
  steps: number;
  params: Float32Array;
  /** Adam's learning rate (the other Adam settings are the defaults, as in the job loop). */
  lr: number;
  /** Adam's moment estimates; both or neither. */
  adamM?: Float32Array;
  adamV?: Float32Array;
}

/**
 * ring mode, coordinator -> worker: open a peer endpoint for ring `generation`, where this worker is
 * member `position` of `size`, and answer with its url. Any earlier ring is abandoned at once (a run
 * on it stops; an allreduce in flight there fails).
 */
export interface RingListenMessage {
  type: typeof MSG.RING_LISTEN;
  generation: number;
  position: number;
  size: number;
  /** Names this ring, so that a member of another job or an earlier ring cannot attach. */
  group: string;
}

/** ring mode, worker -> coordinator: where the other members reach this one, and the steps its replica holds (-1: none yet). */
export interface RingAddressMessage {
  type: typeof MSG.RING_ADDRESS;
  generation: number;
  url: string;
  steps: number;
}

/**
 * ring mode, coordinator -> worker: every member's url, by position; link to your neighbours. Before
 * linking, a replica that applied step `resume` already (the ring broke after its allreduce ended
 * here but not everywhere) rolls it back, so that every member holds `resume` steps.
 */
export interface RingConnectMessage {
  type: typeof MSG.RING_CONNECT;
  generation: number;
  urls: string[];
  resume: number;
}

/** ring mode, worker -> coordinator: both links of this member are up. */
export interface RingReadyMessage {
  type: typeof MSG.RING_READY;
  generation: number;
}

/**
 * ring mode, coordinator -> worker: run steps [from, until) of the plan on this ring. For each, the
 * member takes its shard of the step's global batch (by ring position), computes the gradient
 * sum, ringAllreduce-s it, divides by the global batch size, applies Adam to its replica and
 * reports ring_progress; no step waits for the coordinator.
 */
export interface RingRunMessage {
  type: typeof MSG.RING_RUN;
  generation: number;
  from: number;
  until: number;
}

/** ring mode, worker -> coordinator: one step applied to this replica (sent before the next step starts). */
export interface RingProgressMessage {
  type: typeof MSG.RING_PROGRESS;
  generation: number;
  step: number;
  /** Samples in this worker's shard, and the sum of their losses. */
  count: number;
  lossSum: number;
  /** replicaHash of the weights after the step, every hashEvery steps and on a run's last step. */
  hash?: string;
  /** Payload bytes this worker sent to its ring neighbour during the allreduce. */
  bytesSent: number;
  /**
   * Milliseconds: gathering the shard's pixels, the gradient, the allreduce, Adam (+ the hash), and
   * the time since this worker's previous ring_progress (0 for the first of a run).
   */
  prepareMs: number;
  computeMs: number;
  allreduceMs: number;
  optimizerMs: number;
  cycleMs: number;
}

/** The codes of ring_failed: a CollectiveError code, or one of the ring's own. */
export const RING_FAILURE_CODES = ['PEER_FAILED', 'RECV_TIMEOUT', 'TRANSPORT_CLOSED', 'HANDSHAKE', 'LISTEN', 'CONNECT', 'NON_FINITE'] as const;

/** ring mode, worker -> coordinator: the ring failed under this worker (its replica is unchanged). */
export interface RingFailedMessage {
  type: typeof MSG.RING_FAILED;
  generation: number;
  /** The step whose allreduce failed, or -1 when the ring failed while forming. */
  step: number;
  /**
   * What failed: a CollectiveError code (PEER_FAILED, RECV_TIMEOUT, ...), LISTEN or CONNECT while
   * forming, NON_FINITE when the reduced gradient is not finite (the run cannot go on).
   */
  code: string;
  /** The ring position at fault (-1: unknown). */
  position: number;
  message: string;
}

/** ring mode, coordinator -> worker: leave ring `generation` now (the run is interrupted). */
export interface RingStopMessage {
  type: typeof MSG.RING_STOP;
  generation: number;
}

/** ring mode, worker -> coordinator: this member left the ring (after its reports of every step it applied) holding `steps` steps. */
export interface RingStoppedMessage {
  type: typeof MSG.RING_STOPPED;
  generation: number;
  steps: number;
}

/**
 * ring mode, coordinator -> worker: send your replica as it was after `steps` steps (the current
 * one, or the one before the last step), with Adam's moments when `optimizer`.
 */
export interface FetchMessage {
  type: typeof MSG.FETCH;
  request: number;
  steps: number;
  optimizer: boolean;
}

/** ring mode, worker -> coordinator: the replica after `steps` optimizer steps. */
export interface StateMessage {
  type: typeof MSG.STATE;
  request: number;
  steps: number;
  hash: string;
  params: Float32Array;
  adamM?: Float32Array;
  adamV?: Float32Array;
}

export type RingCoordinatorMessage = ReplicaMessage | RingListenMessage | RingConnectMessage | RingRunMessage | RingStopMessage | FetchMessage;
export type RingWorkerMessage = RingAddressMessage | RingReadyMessage | RingProgressMessage | RingFailedMessage | RingStoppedMessage | StateMessage;

export type WorkerToCoordinator = HelloMessage | GradientMessage | PongMessage | ErrorMessage | RingWorkerMessage;
export type CoordinatorToWorker = WelcomeMessage | TrainDataMessage | WorkMessage | PingMessage | DoneMessage | ErrorMessage | RingCoordinatorMessage;
export type Message = WorkerToCoordinator | CoordinatorToWorker;
