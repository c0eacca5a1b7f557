/**
 * The contracts both sides import: one type constant and one payload type per message. The `type`
 * strings are the names on the wire and never change meaning within a PROTOCOL_VERSION.
 *
 * A connection, in order:
 *   worker -> hello      (version, token, backend)
 *   coord  -> welcome    (rank, the data set to load, parameter count, heartbeat period)
 *             or error   (DDP_AUTH, DDP_VERSION, DDP_FULL, ...) and close
 *   then, per step and per shard the worker is given:
 *   coord  -> work       (step, task id, weights, sample indices, pixels with --serve-data)
 *   worker -> gradient   (task id, sample count, loss sum, gradient SUM as one Float32Array)
 *   any time: coord -> ping, worker -> pong (heartbeat); either side -> error (then close);
 *   coord  -> done       (the job is over; the worker exits 0)
 */
import type { ProtocolErrorCode } from './protocol-error.js';

export const MSG = {
  HELLO: 'hello',
  WELCOME: 'welcome',
  WORK: 'work',
  GRADIENT: 'gradient',
  PING: 'ping',
  PONG: 'pong',
  DONE: 'done',
  ERROR: 'error',
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
  /** Gradient of lossSum, flat, in the parameter layout (tensor fusion: one vector per step). */
  grad: Float32Array;
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

export type WorkerToCoordinator = HelloMessage | GradientMessage | PongMessage | ErrorMessage;
export type CoordinatorToWorker = WelcomeMessage | WorkMessage | PingMessage | DoneMessage | ErrorMessage;
export type Message = WorkerToCoordinator | CoordinatorToWorker;
