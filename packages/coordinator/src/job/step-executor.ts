/** One optimizer step's work order: which samples of the training set make the global batch. */
export interface StepWork {
  /** Global step number, from 0. */
  step: number;
  epoch: number;
  /** Indices into the training split, in the seeded order. */
  batch: Uint32Array;
  /** The next step's global batch, when there is one (ring mode has workers prepare it ahead). */
  next?: Uint32Array;
}

export interface StepResult {
  /**
   * Sum over the global batch of per-sample loss gradients, added in rank order: float32 for the
   * 'fast' reduction, float64 for 'exact' (rounded to float32 once, after the division).
   */
  grad: Float32Array | Float64Array;
  /** Sum over the global batch of per-sample losses. */
  lossSum: number;
  /** Milliseconds spent, by phase, when the executor measures them (compute, communication, waiting). */
  timing?: Record<string, number>;
  /** Mean bytes of gradient each worker sent for this step, when the executor counts them. */
  gradientBytes?: number;
}

/**
 * Computes the gradient sum of a global batch at the given parameters. The in-process executor
 * does it alone; the WebSocket executor shards it across workers. The job loop does not care which.
 */
export interface StepExecutor {
  /** Number of worker processes (0 for the in-process executor). */
  readonly workers: number;
  /** How the workers' sums are reduced ('star'), for the start event; absent in one process. */
  readonly allreduce?: string;
  gradientSum(params: Float32Array, work: StepWork): Promise<StepResult>;
  close(): Promise<void>;
}

/** One step of a replicated executor: the workers applied it to their replicas. */
export interface ReplicatedStepResult {
  /** Sum over the global batch of per-sample losses. */
  lossSum: number;
  /** replicaHash of the weights after the step, the same on every replica (the executor checked). */
  hash: string;
  /** Milliseconds per phase (compute, allreduce, optimizer, coordinator, ...). */
  timing?: Record<string, number>;
  /** Mean bytes of gradient each worker sent to its peers for this step. */
  gradientBytes?: number;
}

/** The weights a replicated executor fetched from a worker, and every replica's hash of them. */
export interface FetchedParams {
  params: Float32Array;
  hash: string;
  /** The hash each worker reported for the latest step, by rank. */
  replicas: Array<{ rank: number; hash: string }>;
}

/**
 * Ring mode: the workers hold replicas of the weights and the optimizer, reduce gradients among
 * themselves and apply the same Adam step each. The job loop keeps the schedule, evaluation and
 * checkpoints; it has no gradient, so it asks for the weights when it needs them.
 */
export interface ReplicatedExecutor {
  readonly replicated: true;
  readonly workers: number;
  readonly allreduce: string;
  /** Hands every worker the initial weights and Adam's learning rate. */
  start(params: Float32Array, optim: { lr: number }): Promise<void>;
  step(work: StepWork): Promise<ReplicatedStepResult>;
  fetchParams(): Promise<FetchedParams>;
  close(): Promise<void>;
}

export type JobExecutor = StepExecutor | ReplicatedExecutor;

export function isReplicated(e: JobExecutor): e is ReplicatedExecutor {
  return (e as Partial<ReplicatedExecutor>).replicated === true;
}
