// The exit codes of every ddp command, one table: --help shows it and main.ts applies it.
export const EXIT = {
  /** The command did what it was asked. */
  OK: 0,
  /** The run failed (a RunError: its DDP_* code is printed and, with --log-format json, in an `error` event), or a bug in ddp (said as such). */
  FAILED: 1,
  /** A usage error: a wrong flag, a missing or corrupt data or model file. */
  USAGE: 2,
  /** ddp worker: refused by the coordinator (wrong token, other protocol version, job full), or found another job when it rejoined (DDP_JOB_CHANGED). */
  REFUSED: 3,
  /** Interrupted (Ctrl-C) after evaluating and saving what it had. */
  INTERRUPTED: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes: 0 done; 1 the run failed (the message starts with its code: DDP_NO_WORKERS, DDP_MISMATCH,
DDP_RING_FORMATION, DDP_STEP_ATTEMPTS, DDP_JOIN_TIMEOUT, DDP_NON_FINITE, DDP_STALLED, DDP_CHECKPOINT, DDP_TOO_FEW_WORKERS) or an internal error
(a bug in ddp, said as such); 2 a usage error (flag, data or model file); 3 a worker refused by the
coordinator; 130 interrupted by Ctrl-C (after evaluating and saving).`;
