/**
 * The contracts both sides import: one type constant and one payload type per message. The `type`
 * strings are the names on the wire and never change meaning within a PROTOCOL_VERSION.
 *
 * A connection, in order:
 *   worker -> hello      (version, token, backend)
 *   coord  -> welcome    (rank, the data set to load, parameter count, heartbeat period,
 *                         allreduce 'star' or 'ring', compression 'none' or 'fp16',
 *                         reduction 'fast' or 'exact')
 *             or error   (DDP_AUTH, DDP_VERSION, DDP_FULL, ...) and close
 *   then in star mode, per step and per shard the worker is given:
 *   coord  -> work       (step, task id, weights, sample indices, pixels with --serve-data)
 *   worker -> gradient   (task id, sample count, loss sum, gradient SUM as one Float32Array,
 *                         or its float16 bits as one Uint16Array with compression 'fp16',
 *                         or one Float64Array with reduction 'exact')
 *   or in ring mode (the workers hold the weights; the step protocol is in
 *   coordinator/src/server/ring-executor.ts):
 *   coord  -> replica    (weights and Adam state to start from)
 *   coord  -> ring_listen (ring generation, position, size) ... worker -> ring_address (its peer url)
 *   coord  -> ring_connect (every member's url)              ... worker -> ring_ready
 *   coord  -> ring_work  (step, shard indices, next shard)   ... worker -> ring_result (loss, weight hash)
 *                                                                or ring_failed (the allreduce failed)
 *   coord  -> fetch      (send me your weights)              ... worker -> state
 *   any time: coord -> ping, worker -> pong (heartbeat); either side -> error (then close);
 *   coord  -> done       (the job is over; the worker exits 0)
 */
import type { Compression } from '../allreduce/allreduce-options.js';
import type { Reduction } from '../model/exact-gradient.js';
import type { ProtocolErrorCode } from './protocol-error.js';

/** How gradients are reduced: at the coordinator ('star'), or by the workers among themselves ('ring'). */
export const ALLREDUCE_MODES = ['star', 'ring'] as const;
export type AllreduceMode = (typeof ALLREDUCE_MODES)[number];

/** How gradients travel: float32, or rounded to float16 (half the bytes). */
export const COMPRESSIONS = ['none', 'fp16'] as const satisfies readonly Compression[];

export const MSG = {
  HELLO: 'hello',
  WELCOME: 'welcome',
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
  RING_WORK: 'ring_work',
  RING_RESULT: 'ring_result',
  RING_FAILED: 'ring_failed',
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
  /** True with --serve-data: every work message carries the shard's pixels and labels. */
  serveData: boolean;
  /** Image size, rows x cols (28 x 28 for MNIST). */
  rows: number;
  cols: number;
  numClasses: number;
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
  /** Who reduces the gradients: the coordinator ('star') or the workers over peer links ('ring'). */
  allreduce: AllreduceMode;
  /** How gradients travel: 'fp16' halves the bytes (star: the gradient message; ring: the peer links). */
  compress: Compression;
  /** 'exact': workers compute split-invariant sums (gradientSumExact) and send them as float64. */
  reduction: Reduction;
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
  /** With --serve-data: the shard's pixels (uint8, indices.length x rows x cols) and labels. */
  images?: Uint8Array;
  labels?: Uint8Array;
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
   * float32, or with compression 'fp16' the float16 bit patterns of its values.
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
 * member `position` of `size`, and answer with its url. Any earlier ring is abandoned at once. Before
 * the next step the worker's replica must be at `resume` steps: one that applied step `resume`
 * already (the ring failed after its allreduce ended here but not everywhere) rolls it back.
 */
export interface RingListenMessage {
  type: typeof MSG.RING_LISTEN;
  generation: number;
  position: number;
  size: number;
  /** Names this ring, so that a member of another job or an earlier ring cannot attach. */
  group: string;
  resume: number;
}

/** ring mode, worker -> coordinator: where the other members reach this one. */
export interface RingAddressMessage {
  type: typeof MSG.RING_ADDRESS;
  generation: number;
  url: string;
}

/** ring mode, coordinator -> worker: every member's url, by position; link to your neighbours. */
export interface RingConnectMessage {
  type: typeof MSG.RING_CONNECT;
  generation: number;
  urls: string[];
}

/** ring mode, worker -> coordinator: both links of this member are up. */
export interface RingReadyMessage {
  type: typeof MSG.RING_READY;
  generation: number;
}

/**
 * ring mode, coordinator -> worker: compute the gradient sum of this shard, allreduce it over the
 * ring, divide by `batchSize` (the global batch) and apply Adam to the replica.
 */
export interface RingWorkMessage {
  type: typeof MSG.RING_WORK;
  generation: number;
  step: number;
  epoch: number;
  task: number;
  /** Samples in the global batch: the divisor of the summed gradient. */
  batchSize: number;
  indices: Uint32Array;
  /** The shard this worker will most likely get next step: prepare it while the allreduce runs. */
  next?: Uint32Array;
  /** With --serve-data: the shard's pixels (uint8, indices.length x rows x cols) and labels. */
  images?: Uint8Array;
  labels?: Uint8Array;
}

/** ring mode, worker -> coordinator: the step is applied to this replica. */
export interface RingResultMessage {
  type: typeof MSG.RING_RESULT;
  generation: number;
  step: number;
  task: number;
  /** Samples in this worker's shard, and the sum of their losses. */
  count: number;
  lossSum: number;
  /** replicaHash of the weights after the step: every member must send the same. */
  hash: string;
  /** Payload bytes this worker sent to its ring neighbour during the allreduce. */
  bytesSent: number;
  /**
   * Milliseconds: gathering the shard's pixels, the gradient, the allreduce, Adam + hash, and from
   * the work's arrival to this reply. `aheadMs` is the part of prepare + compute done before the work
   * arrived (the worker computes the announced next shard while the coordinator turns around);
   * `cycleMs` is the time since this worker's previous ring_result (0 for the first of a ring).
   */
  prepareMs: number;
  computeMs: number;
  allreduceMs: number;
  optimizerMs: number;
  busyMs: number;
  aheadMs: number;
  cycleMs: number;
}

/** ring mode, worker -> coordinator: the ring failed under this worker (its replica is unchanged). */
export interface RingFailedMessage {
  type: typeof MSG.RING_FAILED;
  generation: number;
  /** The step whose allreduce failed, or -1 when the ring failed while connecting. */
  step: number;
  /** The CollectiveError code (PEER_FAILED, RECV_TIMEOUT, ...) and the ring position at fault (-1: unknown). */
  code: string;
  position: number;
  message: string;
}

/** ring mode, coordinator -> worker: send your replica (with Adam's moments when `optimizer`). */
export interface FetchMessage {
  type: typeof MSG.FETCH;
  request: number;
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

export type RingCoordinatorMessage = ReplicaMessage | RingListenMessage | RingConnectMessage | RingWorkMessage | FetchMessage;
export type RingWorkerMessage = RingAddressMessage | RingReadyMessage | RingResultMessage | RingFailedMessage | StateMessage;

export type WorkerToCoordinator = HelloMessage | GradientMessage | PongMessage | ErrorMessage | RingWorkerMessage;
export type CoordinatorToWorker = WelcomeMessage | WorkMessage | PingMessage | DoneMessage | ErrorMessage | RingCoordinatorMessage;
export type Message = WorkerToCoordinator | CoordinatorToWorker;
