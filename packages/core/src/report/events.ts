/**
 * The machine-readable events every long ddp command emits with `--log-format json`: one JSON
 * object per line on stdout. Field names are a contract with tests, benchmarks and users' scripts.
 */
export interface StartEvent {
  event: 'start';
  backend: string;
  workers: number;
  dataset: string;
  epochs: number;
  batchSize: number;
  seed: number;
  trainSamples: number;
  testSamples: number;
  /** Optimizer steps the run will take (--max-steps or the epochs), and per epoch. */
  totalSteps?: number;
  stepsPerEpoch?: number;
  allreduce?: string;
}
export interface RingFormedEvent {
  event: 'ring_formed';
  /** The ring's generation (0 for the first), its size and its ranks by ring position. */
  generation: number;
  size: number;
  ranks: number[];
  /** The step the ring starts at. */
  step: number;
  /** Where each member listens for its neighbours, by ring position (ws:// or wss://). */
  addresses?: string[];
}
/** A worker's index from its scheduler: the variable it came from (JOB_COMPLETION_INDEX, SLURM_PROCID) and its value. */
export interface RankHint {
  from: string;
  index: number;
}
export interface WorkerJoinedEvent {
  event: 'worker_joined';
  rank: number;
  workers: number;
  backend?: string;
  /** host:pid as the worker reported it. */
  host?: string;
  /** The worker's index from its scheduler (JOB_COMPLETION_INDEX, SLURM_PROCID), when it had one. */
  rankHint?: RankHint;
}
/** One worker's share of a step, in ms: compute (its gradient), allreduce (transfer, waiting excluded), waiting (for slower workers). */
export interface RankTiming {
  rank: number;
  computeMs: number;
  allreduceMs: number;
  waitingMs: number;
  /** Gathering the shard's pixels, and the optimizer (ring mode: on the worker), where measured. */
  prepareMs?: number;
  optimizerMs?: number;
}
export interface StepEvent {
  event: 'step';
  step: number;
  epoch: number;
  loss: number;
  samples: number;
  /** Per worker, where the trainer measured it (star and ring modes). */
  ranks?: RankTiming[];
  /** Bytes of gradient all the workers sent for this step (mean per worker x workers), where counted. */
  bytesSent?: number;
}
export interface EpochEvent {
  event: 'epoch';
  epoch: number;
  trainLoss: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
  /** Ring mode: the hash of the weights every replica reported (they must agree). */
  weightsHash?: string;
  replicaHashes?: Array<{ rank: number; hash: string }>;
}
export interface WorkerLostEvent {
  event: 'worker_lost';
  rank: number;
  step: number;
  /** Why, as a stable code (DDP_CLOSED, DDP_TIMEOUT, DDP_BAD_MESSAGE, ...) and for people. */
  code: string;
  reason: string;
  workers: number;
}
/**
 * A worker slower than the others by --straggler-factor times the median. Star mode: its shard of
 * `step` was out `waitedMs` (the median shard time is `medianMs`) and was also given to `backupRank`
 * (the first answer is used). Ring mode: `step` took `waitedMs` (median step `medianMs`) and this
 * member was the one the ring waited for; there is no backup (`backupRank` -1). Once per episode.
 */
export interface StragglerEvent {
  event: 'straggler';
  /** 1-based, as in step events. */
  step: number;
  rank: number;
  /** host:pid as the worker reported it. */
  host?: string;
  waitedMs: number;
  medianMs: number;
  /** The rank that also computes the shard (star), or -1 (ring: no backup). */
  backupRank: number;
}
/**
 * A step has waited at least --stall-warning seconds: the ranks it waits for, each with its host and
 * the last message the coordinator received from it (`last`, e.g. "gradient for step 41") and how
 * long ago. Repeated every --stall-warning seconds while the step waits.
 */
export interface StallEvent {
  event: 'stall';
  /** 1-based: the step that waits. */
  step: number;
  /** How long the step has waited so far. */
  waitedMs: number;
  waitingFor: Array<{ rank: number; host: string; last: string; agoMs: number }>;
}
/** The model saved to --out (model.json + weights.bin), after an epoch and at the end. */
export interface SavedEvent {
  event: 'saved';
  step: number;
  path: string;
}
/** A training checkpoint written (crash-safe, off the step's path): resumable with --resume. */
export interface CheckpointEvent {
  event: 'checkpoint';
  step: number;
  path: string;
  bytes: number;
  /** How long the write took (it runs beside the training). */
  seconds: number;
}
/** A run continued from a checkpoint (--resume). */
export interface ResumedEvent {
  event: 'resumed';
  /** Steps already applied: the next step is step + 1. */
  step: number;
  epoch: number;
  path: string;
}
/** The workers of the job changed (a join, a loss): the current world. */
export interface MembershipEvent {
  event: 'membership';
  workers: number;
  ranks: number[];
  /** The step (1-based) in hand when it changed. */
  step: number;
}
/** The run paused: fewer workers than --min-workers. */
export interface PausedEvent {
  event: 'paused';
  step: number;
  workers: number;
  minWorkers: number;
}
/** `ddp train` restarted its coordinator after an abnormal exit, with --resume. */
export interface CoordinatorRestartedEvent {
  event: 'coordinator_restarted';
  /** 1 for the first restart. */
  restart: number;
  maxRestarts: number;
  /** How the coordinator ended: an exit code or a signal name. */
  exit: string;
}
export interface DoneEvent {
  event: 'done';
  steps: number;
  workers: number;
  backend: string;
  testLoss: number;
  testAccuracy: number;
  samplesPerSec: number;
  wallSeconds: number;
  trainSeconds: number;
  /** Per-step means in milliseconds, where the run measured them. */
  breakdown?: Record<string, number>;
  /** Bytes of gradient each worker sent per step (halved by --compress fp16). */
  gradientBytesPerStep?: number;
  weightsHash?: string;
  replicaHashes?: Array<{ rank: number; hash: string }>;
}
export interface EvaluateEvent {
  event: 'evaluate';
  model: string;
  dataset: string;
  samples: number;
  testLoss: number;
  testAccuracy: number;
}
/** `ddp predict`: the most probable classes of one input image. */
export interface PredictEvent {
  event: 'predict';
  /** The file the image came from, as given on the command line. */
  input: string;
  /** The image's index in that file: 0 for a PNG, the sample index for an IDX images file. */
  index: number;
  /** What the file is: one PNG image, or an IDX images file (one event per image in it). */
  format: 'png' | 'idx';
  /** The --top K most probable classes, most probable first (softmax probabilities of all 10 sum to 1). */
  top: Array<{ class: number; probability: number }>;
}
export interface ErrorEvent {
  event: 'error';
  /** A RunError code (DDP_NO_WORKERS, DDP_MISMATCH, ...), or DDP_INTERNAL for a bug. */
  code?: string;
  message: string;
}

export type DdpEvent =
  | StartEvent
  | WorkerJoinedEvent
  | StepEvent
  | EpochEvent
  | WorkerLostEvent
  | RingFormedEvent
  | SavedEvent
  | StragglerEvent
  | StallEvent
  | CheckpointEvent
  | ResumedEvent
  | MembershipEvent
  | PausedEvent
  | CoordinatorRestartedEvent
  | DoneEvent
  | EvaluateEvent
  | PredictEvent
  | ErrorEvent;
