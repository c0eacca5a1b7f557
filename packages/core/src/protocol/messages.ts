/**
 * The contracts both sides import, declared once: MESSAGES below gives each message's fields in the
 * vocabulary of schema.ts, and from it come both the TypeScript types (HelloMessage, ...) and the
 * checks every decoded frame goes through (validate.ts walks the declaration). A field added to a
 * message is one line here, plus the code that uses it and its test. The `type` strings are the
 * names on the wire and never change meaning within a PROTOCOL_VERSION.
 *
 * A connection, in order:
 *   worker -> hello      (version, token, backend; when rejoining a restarted coordinator, the job
 *                         it belongs to)
 *   coord  -> welcome    (rank, the data set to load, parameter count, heartbeat period, the
 *                         wire settings (wire-config.ts: allreduce, compress, reduction, ...),
 *                         the plan (seed, global batch size) from which every step's batch follows,
 *                         and the job's identity: a worker that rejoins a restarted coordinator
 *                         leaves with DDP_JOB_CHANGED if it is another job)
 *             or error   (DDP_AUTH, DDP_VERSION, DDP_FULL, DDP_JOB_CHANGED, ...) and close
 *   coord  -> train_data (with --serve-data: the training split in chunks, once, before any work)
 *   then in star mode, per step and per shard the worker is given (coordinator/src/star):
 *   coord  -> work       (step, task id, weights, sample indices)
 *   worker -> gradient   (task id, sample count, loss sum, gradient SUM: one Float32Array, or its
 *                         float16 bits as one Uint16Array with compress 'fp16', or the
 *                         bytes of an exact-sum encoding with reduction 'exact')
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
 *   either mode, when the workers read the data locally:
 *   coord  -> evaluate    (test samples [start, end), at step k or these weights) ... worker -> evaluation
 *   any time: coord -> ping, worker -> pong (heartbeat); either side -> error (then close);
 *   coord  -> done       (the job is over; the worker exits 0)
 */
import type { Compression } from '../allreduce/allreduce-options.js';
import { COLLECTIVE_ERROR_CODES } from '../allreduce/collective-error.js';
import { maxEncodedBytes } from '../allreduce/exact-sum/wire.js';
import { PROTOCOL_ERROR_CODES, ProtocolError } from './protocol-error.js';
import { REPLICA_HASH_PATTERN } from './replica-hash.js';
import {
  MAX_U32,
  bad,
  bool,
  bytes,
  compileShape,
  describe,
  finite,
  float32s,
  float64s,
  halves,
  int,
  list,
  map,
  oneOf,
  optional,
  pattern,
  pick,
  positive,
  text,
  uint32s,
  url,
  type CompiledShape,
  type Fields,
  type Shape,
  type Simplify,
} from './schema.js';
import { PROTOCOL_VERSION } from './version.js';
import { WIRE_FIELDS, type AllreduceMode, type WireConfig } from './wire-config.js';

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
  // either mode
  EVALUATE: 'evaluate',
  EVALUATION: 'evaluation',
} as const;
export type MessageType = (typeof MSG)[keyof typeof MSG];

/** What the coordinator knows when a frame from a worker arrives. */
export interface CoordinatorInboundLimits {
  paramCount: number;
  /**
   * The job's wire settings: ring messages are refused in star mode and gradients in ring mode;
   * gradients are float32, float16 bits (compress 'fp16') or exact-sum encodings (reduction 'exact').
   */
  config: WireConfig;
}

/** What the worker knows once welcomed (before that, only welcome, error and done are accepted). */
export interface WorkerInboundLimits {
  paramCount: number;
  trainCount: number;
  rows: number;
  cols: number;
  numClasses: number;
  serveData: boolean;
  testCount: number;
  /** The job's wire settings, from the welcome. */
  config: WireConfig;
}

/**
 * How a message is accepted, besides its fields: who sends it; for the coordinator's, whether it
 * comes before the welcome ('first': the welcome itself, once), after it ('welcomed') or at any
 * time; the --allreduce mode it belongs to (refused in the other); `first`, a rule checked on the
 * raw frame before any field (the hello's version); `check`, the rules across fields, run once
 * every field passed. `limited`: the bounds and rules read the receiver's limits (else null).
 */
export interface MessageDecl<L = any, S extends Fields<any> = Fields<any>> {
  readonly from: 'worker' | 'coordinator' | 'either';
  readonly stage: 'first' | 'welcomed' | 'any';
  readonly mode?: AllreduceMode;
  readonly limited: boolean;
  readonly fields: S;
  readonly shape: CompiledShape;
  // (method syntax: a declaration stays assignable to MessageDecl<any, any> for the table's check)
  first?(raw: Readonly<Record<string, unknown>>, limits: L): void;
  check?(msg: Shape<S>, limits: L): void;
}

interface Rules<L, S extends Fields<any>> {
  readonly mode?: AllreduceMode;
  readonly first?: (raw: Readonly<Record<string, unknown>>, limits: L) => void;
  readonly check?: (msg: Shape<S>, limits: L) => void;
}

/** worker -> coordinator; bounds read CoordinatorInboundLimits. */
const fromWorker = <const S extends Fields<CoordinatorInboundLimits>>(
  fields: S,
  rules: Rules<CoordinatorInboundLimits, S> = {},
): MessageDecl<CoordinatorInboundLimits, S> & { from: 'worker' } => ({ from: 'worker', stage: 'any', limited: true, fields, shape: compileShape(fields), ...rules });
/** coordinator -> worker, once welcomed; bounds read WorkerInboundLimits. */
const toWorker = <const S extends Fields<WorkerInboundLimits>>(
  fields: S,
  rules: Rules<WorkerInboundLimits, S> = {},
): MessageDecl<WorkerInboundLimits, S> & { from: 'coordinator' } => ({ from: 'coordinator', stage: 'welcomed', limited: true, fields, shape: compileShape(fields), ...rules });
/** Messages that may come before the welcome: their bounds cannot read limits. */
const unlimited =
  <const F extends 'coordinator' | 'either'>(from: F, stage: 'first' | 'any') =>
  <const S extends Fields<null>>(fields: S, rules: Omit<Rules<null, S>, 'mode'> = {}): MessageDecl<null, S> & { from: F } => ({
    from, stage, limited: false, fields, shape: compileShape(fields), ...rules,
  });

const paramCount = (l: { paramCount: number }) => l.paramCount;
const trainCount = (l: { trainCount: number }) => l.trainCount;
const hash16 = () => pattern(REPLICA_HASH_PATTERN, '16 hex digits');

/** Adam's moments come together or not at all. */
const bothMoments = (where: string) => (m: { adamM?: Float32Array; adamV?: Float32Array }) => {
  if ((m.adamM === undefined) !== (m.adamV === undefined)) throw bad(`${where}: adamM and adamV come together or not at all`);
};

/** Where the worker gets its training samples from. */
const DATA_SPEC = {
  dataset: text(64),
  /** The coordinator's --data-dir (a worker may override it with its own). */
  dataDir: optional(text()),
  limitTrain: optional(int(1, MAX_U32)),
  /** Number of training samples the coordinator has: a worker whose copy differs is refused. */
  trainCount: int(1, MAX_U32),
  /** sha256 (hex) of the training labels and images the coordinator loaded. */
  fingerprint: text(128),
  limitTest: optional(int(1, MAX_U32)),
  /** The test split, which workers evaluate shards of (when they read the data locally). */
  testCount: int(1, MAX_U32),
  testFingerprint: text(128),
  /** True with --serve-data: the coordinator sends the training split (train_data) after the welcome. */
  serveData: bool(),
  /** Image size, rows x cols (28 x 28 for MNIST). */
  rows: int(1, 4096),
  cols: int(1, 4096),
  numClasses: int(2, 65536),
};

/** What every step's global batch follows from (data/plan.ts), with the data set's sample count. */
const PLAN_SPEC = {
  seed: int(0, MAX_U32),
  batchSize: int(1, MAX_U32),
};

/** The rank a scheduler gave the worker's process (Kubernetes JOB_COMPLETION_INDEX, SLURM_PROCID), for the logs. */
const RANK_HINT_SPEC = {
  /** The variable it came from. */
  from: pattern(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name', 64),
  index: int(),
};

/**
 * Which job a coordinator serves: an id (--job-id, or random) and a fingerprint of what defines the
 * job (data set, batch size, seed, ...). A worker that lost its coordinator and rejoins one on the
 * same address checks that both are those of its first welcome (else DDP_JOB_CHANGED).
 */
const JOB_SPEC = {
  id: pattern(/^[\s\S]+$/, 'a non-empty string', 64),
  fingerprint: pattern(/^[\s\S]+$/, 'a non-empty string', 128),
};

/**
 * The codes of ring_failed: the allreduce's CollectiveError codes (PEER_FAILED, RECV_TIMEOUT,
 * PAYLOAD_SIZE, TRANSPORT_CLOSED), LISTEN or CONNECT when forming a ring failed, NON_FINITE when the
 * reduced gradient is not finite (the run cannot go on).
 */
export const RING_FAILURE_CODES = [...COLLECTIVE_ERROR_CODES, 'LISTEN', 'CONNECT', 'NON_FINITE'] as const;

/** Every message, by its wire name: its fields and the rules it is accepted under. */
export const MESSAGES = {
  /**
   * worker -> coordinator, first message on a connection. The version is checked before anything
   * else, so that a worker of another version gets DDP_VERSION (what it needs to hear) rather than
   * a complaint about a field that version changed.
   */
  hello: fromWorker(
    {
      protocolVersion: int(),
      /** The shared token ('' when the worker has none). */
      token: text(1024),
      /** The worker's tfjs backend, for the worker_joined event. */
      backend: text(64),
      /** For people reading logs: host name and process id. */
      host: text(255),
      pid: int(),
      /**
       * A worker rejoining after it lost its coordinator: the job of its first welcome. A coordinator
       * serving another job refuses it (DDP_JOB_CHANGED) before it takes a seat.
       */
      job: optional(map(JOB_SPEC)),
      /** The worker's index as its scheduler numbered it, reported in worker_joined (the coordinator still picks the rank). */
      rankHint: optional(map(RANK_HINT_SPEC)),
    },
    {
      first: ({ protocolVersion: version }) => {
        if (version === PROTOCOL_VERSION) return;
        throw new ProtocolError(
          'DDP_VERSION',
          `protocol version mismatch: the worker speaks ${version === undefined ? 'no known version' : `version ${describe(version)}`}, ` +
            `this coordinator speaks ${PROTOCOL_VERSION}; run the same ddp version on both`,
        );
      },
    },
  ),

  /** coordinator -> worker, reply to an accepted hello (once per connection). */
  welcome: unlimited('coordinator', 'first')(
    {
      protocolVersion: int(),
      rank: int(0, 65535),
      /** How many workers the job runs with. */
      workers: int(1, 65536),
      /** Length of the flat parameter vector (and so of every gradient). */
      paramCount: int(1, 1 << 28),
      /** The coordinator pings this often; a worker may treat a much longer silence as a dead coordinator. */
      heartbeatMs: int(1, 3_600_000),
      data: map(DATA_SPEC),
      /** The wire settings (allreduce, compress, reduction, hashEvery), declared in wire-config.ts. */
      config: map(WIRE_FIELDS),
      plan: map(PLAN_SPEC),
      /** The job this coordinator serves: the same on every welcome of the job, across coordinator restarts. */
      job: map(JOB_SPEC),
    },
    {
      first: ({ protocolVersion: version }) => {
        if (version !== PROTOCOL_VERSION) {
          throw new ProtocolError('DDP_VERSION', `protocol version mismatch: the coordinator speaks version ${describe(version)}, this worker speaks ${PROTOCOL_VERSION}`);
        }
      },
    },
  ),

  /**
   * coordinator -> worker, with --serve-data only: samples [offset, offset + count) of the training
   * split (pixels uint8, count x rows x cols, and labels), in order, right after the welcome. The
   * worker checks the assembled split against the fingerprint before it takes any work.
   */
  train_data: toWorker(
    {
      offset: int(0, (l: WorkerInboundLimits) => l.trainCount - 1),
      /** The chunk's `count` labels: at least one, and no further than the split's end. */
      labels: bytes({ min: 1, max: (l: WorkerInboundLimits, m) => l.trainCount - (m.offset as number), below: (l: WorkerInboundLimits) => l.numClasses, noun: 'labels' }),
      /** count x rows x cols pixels. */
      images: bytes({ length: (l: WorkerInboundLimits, m) => (m.labels as Uint8Array).length * l.rows * l.cols }),
    },
    {
      first: (_raw, l) => {
        if (!l.serveData) throw bad('train_data: unexpected without --serve-data');
      },
    },
  ),

  /** coordinator -> worker: compute the gradient sum of one shard at these weights. */
  work: toWorker(
    {
      step: int(),
      epoch: int(),
      /** Unique per (step, shard): the gradient message names it, so a late or stray answer is recognised. */
      task: int(),
      params: float32s(paramCount),
      /** Indices into the training split. */
      indices: uint32s(trainCount, trainCount),
    },
    { mode: 'star' },
  ),

  /** worker -> coordinator: the answer to one work message. */
  gradient: fromWorker(
    {
      step: int(),
      task: int(),
      /** Number of samples summed (the shard's size). */
      count: int(0, MAX_U32),
      /** Sum of the per-sample losses. */
      lossSum: finite(0),
      /**
       * Gradient of lossSum, flat, in the parameter layout (tensor fusion: one vector per step):
       * float32; with compress 'fp16' the float16 bit patterns of its values (Uint16Array); with
       * reduction 'exact' the bytes of ExactAccumulator.encode() over [0, paramCount + 1): the exact
       * sums of the shard's micro-shard gradients, then of their losses (model/reduction.ts); the
       * coordinator checks the range and decodes them (a bad encoding is a protocol violation).
       */
      grad: pick((l: CoordinatorInboundLimits) => (l.config.reduction === 'exact' ? 'exact' : l.config.compress === 'fp16' ? 'fp16' : 'float32'), {
        float32: float32s(paramCount),
        fp16: halves(paramCount, '--compress fp16'),
        exact: bytes({ min: 16, max: (l: CoordinatorInboundLimits) => maxEncodedBytes(l.paramCount + 1), noun: 'exact-sum encoding' }),
      }),
      /** Milliseconds in the gradient computation, and from receiving the work to sending this. */
      computeMs: finite(0),
      busyMs: finite(0),
    },
    { mode: 'star' },
  ),

  ping: toWorker({ nonce: int(0, MAX_U32) }),
  pong: fromWorker({ nonce: int(0, MAX_U32) }),

  /** coordinator -> worker: the job is over. */
  done: unlimited('coordinator', 'any')({ reason: text() }),

  /** Either direction: a fault, sent just before closing. */
  error: unlimited('either', 'any')({ code: oneOf(PROTOCOL_ERROR_CODES), message: text() }),

  /**
   * ring mode, coordinator -> worker: the replica to hold, as it is after `steps` optimizer steps.
   * Sent once at the start (Adam state absent: zeros) and to a worker that joins later (with it).
   */
  replica: toWorker(
    {
      steps: int(),
      params: float32s(paramCount),
      /** Adam's learning rate (the other Adam settings are the defaults, as in the job loop). */
      lr: positive(),
      /** Adam's moment estimates; both or neither. */
      adamM: optional(float32s(paramCount)),
      adamV: optional(float32s(paramCount)),
    },
    { mode: 'ring', check: bothMoments('replica') },
  ),

  /**
   * ring mode, coordinator -> worker: open a peer endpoint for ring `generation`, where this worker is
   * member `position` of `size`, and answer with its url. Any earlier ring is abandoned at once (a run
   * on it stops; an allreduce in flight there fails).
   */
  ring_listen: toWorker(
    {
      generation: int(),
      size: int(1, 65536),
      position: int(0, (_l: unknown, m) => (m.size as number) - 1),
      /** Names this ring, so that a member of another job or an earlier ring cannot attach. */
      group: text(256),
    },
    { mode: 'ring' },
  ),

  /** ring mode, worker -> coordinator: where the other members reach this one, and the steps its replica holds (-1: none yet). */
  ring_address: fromWorker({ generation: int(), url: url(), steps: int(-1) }, { mode: 'ring' }),

  /**
   * ring mode, coordinator -> worker: every member's url, by position; link to your neighbours. Before
   * linking, a replica that applied step `resume` already (the ring broke after its allreduce ended
   * here but not everywhere) rolls it back, so that every member holds `resume` steps.
   */
  ring_connect: toWorker({ generation: int(), urls: list(url(), 1, 65536, 'urls'), resume: int() }, { mode: 'ring' }),

  /** ring mode, worker -> coordinator: both links of this member are up. */
  ring_ready: fromWorker({ generation: int() }, { mode: 'ring' }),

  /**
   * ring mode, coordinator -> worker: run steps [from, until) of the plan on this ring. For each, the
   * member takes its shard of the step's global batch (by ring position), computes the gradient
   * sum, ringAllreduce-s it, divides by the global batch size, applies Adam to its replica and
   * reports ring_progress; no step waits for the coordinator.
   */
  ring_run: toWorker(
    {
      generation: int(),
      from: int(),
      until: int(),
      /**
       * Checkpoints without stopping the ring: after each step k (count) with k % snapshotEvery == 0,
       * every member puts the hash in that step's ring_progress and the member at position 0 then
       * sends its state (request 0: unasked), weights and Adam's moments. Absent or 0: none.
       */
      snapshotEvery: optional(int()),
    },
    {
      mode: 'ring',
      check: ({ from, until }) => {
        if (until <= from) throw bad(`ring_run: until (${until}) must be greater than from (${from})`);
      },
    },
  ),

  /** ring mode, worker -> coordinator: one step applied to this replica (sent before the next step starts). */
  ring_progress: fromWorker(
    {
      generation: int(),
      step: int(),
      /** Samples in this worker's shard, and the sum of their losses. */
      count: int(0, MAX_U32),
      lossSum: finite(0),
      /** replicaHash of the weights after the step, every hashEvery steps and on a run's last step. */
      hash: optional(hash16()),
      /** Payload bytes this worker sent to its ring neighbour during the allreduce. */
      bytesSent: int(),
      /**
       * Milliseconds: gathering the shard's pixels, the gradient, the allreduce, Adam (+ the hash), and
       * the time since this worker's previous ring_progress (0 for the first of a run).
       */
      prepareMs: finite(0),
      computeMs: finite(0),
      allreduceMs: finite(0),
      optimizerMs: finite(0),
      cycleMs: finite(0),
    },
    { mode: 'ring' },
  ),

  /** ring mode, worker -> coordinator: the ring failed under this worker (its replica is unchanged). */
  ring_failed: fromWorker(
    {
      generation: int(),
      /** The step whose allreduce failed, or -1 when the ring failed while forming. */
      step: int(-1),
      /** What failed (RING_FAILURE_CODES, above). */
      code: oneOf(RING_FAILURE_CODES),
      /** The ring position at fault (-1: unknown). */
      position: int(-1, 65535),
      message: text(),
    },
    { mode: 'ring' },
  ),

  /** ring mode, coordinator -> worker: leave ring `generation` now (the run is interrupted). */
  ring_stop: toWorker({ generation: int() }, { mode: 'ring' }),

  /** ring mode, worker -> coordinator: this member left the ring (after its reports of every step it applied) holding `steps` steps (-1: no replica). */
  ring_stopped: fromWorker({ generation: int(), steps: int(-1) }, { mode: 'ring' }),

  /**
   * ring mode, coordinator -> worker: send your replica as it was after `steps` steps (the current
   * one, or the one before the last step), with Adam's moments when `optimizer`.
   */
  fetch: toWorker({ request: int(), steps: int(), optimizer: bool() }, { mode: 'ring' }),

  /** ring mode, worker -> coordinator: the replica after `steps` optimizer steps (request 0: a snapshot of ring_run's snapshotEvery). */
  state: fromWorker(
    {
      request: int(),
      steps: int(),
      hash: hash16(),
      params: float32s(paramCount),
      adamM: optional(float32s(paramCount)),
      adamV: optional(float32s(paramCount)),
    },
    { mode: 'ring', check: bothMoments('state') },
  ),

  /**
   * coordinator -> worker, either mode: evaluate test samples [start, end) (start a multiple of the
   * evaluation batch) at the weights after `steps` steps: ring mode's replica (current or previous
   * state), or star mode's `params` sent along.
   */
  evaluate: toWorker(
    {
      request: int(),
      steps: int(),
      params: optional(float32s(paramCount)),
      start: int(0, (l: WorkerInboundLimits) => l.testCount - 1),
      end: int(1, (l: WorkerInboundLimits) => l.testCount),
    },
    {
      check: ({ start, end }) => {
        if (end <= start) throw bad(`evaluate: end (${end}) must be greater than start (${start})`);
      },
    },
  ),

  /** worker -> coordinator: the loss sum of every evaluation batch of the range, in order, and the correct predictions. */
  evaluation: fromWorker({
    request: int(),
    batches: int(1, 1 << 24),
    lossSums: float64s((_l: CoordinatorInboundLimits, m) => m.batches as number),
    correct: int(),
  }),
} satisfies { [K in MessageType]: MessageDecl };

type Declared = typeof MESSAGES;
/** The message named `K`, as the parsers return it: `type` plus the declared fields. */
export type MessageOf<K extends MessageType> = Simplify<{ type: K } & Shape<Declared[K]['fields']>>;
export type DataSpec = Shape<typeof DATA_SPEC>;
export type PlanMessageSpec = Shape<typeof PLAN_SPEC>;
/** A job's identity, as the welcome carries it. */
export type JobIdentity = Shape<typeof JOB_SPEC>;

export type HelloMessage = MessageOf<'hello'>;
export type WelcomeMessage = MessageOf<'welcome'>;
export type TrainDataMessage = MessageOf<'train_data'>;
export type WorkMessage = MessageOf<'work'>;
export type GradientMessage = MessageOf<'gradient'>;
export type PingMessage = MessageOf<'ping'>;
export type PongMessage = MessageOf<'pong'>;
export type DoneMessage = MessageOf<'done'>;
export type ErrorMessage = MessageOf<'error'>;
export type ReplicaMessage = MessageOf<'replica'>;
export type RingListenMessage = MessageOf<'ring_listen'>;
export type RingAddressMessage = MessageOf<'ring_address'>;
export type RingConnectMessage = MessageOf<'ring_connect'>;
export type RingReadyMessage = MessageOf<'ring_ready'>;
export type RingRunMessage = MessageOf<'ring_run'>;
export type RingProgressMessage = MessageOf<'ring_progress'>;
export type RingFailedMessage = MessageOf<'ring_failed'>;
export type RingStopMessage = MessageOf<'ring_stop'>;
export type RingStoppedMessage = MessageOf<'ring_stopped'>;
export type FetchMessage = MessageOf<'fetch'>;
export type StateMessage = MessageOf<'state'>;
export type EvaluateMessage = MessageOf<'evaluate'>;
export type EvaluationMessage = MessageOf<'evaluation'>;

export type RingCoordinatorMessage = ReplicaMessage | RingListenMessage | RingConnectMessage | RingRunMessage | RingStopMessage | FetchMessage;
export type RingWorkerMessage = RingAddressMessage | RingReadyMessage | RingProgressMessage | RingFailedMessage | RingStoppedMessage | StateMessage;

export type WorkerToCoordinator = HelloMessage | GradientMessage | PongMessage | ErrorMessage | EvaluationMessage | RingWorkerMessage;
export type CoordinatorToWorker = WelcomeMessage | TrainDataMessage | WorkMessage | EvaluateMessage | PingMessage | DoneMessage | ErrorMessage | RingCoordinatorMessage;
export type Message = WorkerToCoordinator | CoordinatorToWorker;

/** Who sends which types, from the table: the unions above must list exactly these (checked at compile time). */
type SentBy<F> = { [K in MessageType]: Declared[K]['from'] extends F | 'either' ? K : never }[MessageType];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
export type UnionsMatchTable = [Assert<Same<WorkerToCoordinator['type'], SentBy<'worker'>>>, Assert<Same<CoordinatorToWorker['type'], SentBy<'coordinator'>>>];
