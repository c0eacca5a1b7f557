/**
 * Run-level failures: the run cannot go on. Each carries a stable code (tests and scripts assert the
 * code, never the text); the CLI prints `ddp: CODE: message`, emits an `error` event with the code,
 * and exits 1. A fault of one peer at the protocol level is a ProtocolError instead (protocol/).
 */
export const RUN_ERROR_CODES = [
  /** A ring could not be formed: a member could not listen or link, or did not answer in time. */
  'DDP_RING_FORMATION',
  /** Every worker is gone and none joined in time (or, in ring mode, the weights were lost with them). */
  'DDP_NO_WORKERS',
  /** Fewer than --workers workers joined within --join-timeout. */
  'DDP_JOIN_TIMEOUT',
  /** The workers' replicas of the weights differ after a step. */
  'DDP_MISMATCH',
  /** A step failed --max-attempts times in a row with no worker lost. */
  'DDP_STEP_ATTEMPTS',
  /** The reduced gradient is not finite: the training diverged (or overflowed float16). */
  'DDP_NON_FINITE',
  /** A worker did not answer in time (no step progress, weights not sent). */
  'DDP_STALLED',
  /** --resume: the checkpoint belongs to another job (the fields that differ are named), or cannot go on. */
  'DDP_CHECKPOINT',
  /** Fewer than --min-workers workers for longer than --worker-timeout. */
  'DDP_TOO_FEW_WORKERS',
] as const;
export type RunErrorCode = (typeof RUN_ERROR_CODES)[number];

export class RunError extends Error {
  constructor(
    readonly code: RunErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RunError';
  }
}

/** A broken internal invariant: a bug in ddp, not a fault of the user or a peer (exit 1, said as such). */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}
