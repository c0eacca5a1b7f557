/** One optimizer step's work order: which samples of the training set make the global batch. */
export interface StepWork {
  /** Global step number, from 0. */
  step: number;
  epoch: number;
  /** Indices into the training split, in the seeded order. */
  batch: Uint32Array;
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
}

/**
 * Computes the gradient sum of a global batch at the given parameters. The in-process executor
 * does it alone; the WebSocket executor shards it across workers. The job loop does not care which.
 */
export interface StepExecutor {
  /** Number of worker processes (0 for the in-process executor). */
  readonly workers: number;
  gradientSum(params: Float32Array, work: StepWork): Promise<StepResult>;
  close(): Promise<void>;
}
