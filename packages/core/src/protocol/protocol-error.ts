/**
 * Faults from the other end of a connection. They never throw across the connection: the side that
 * detects one sends an `error` message carrying the code, closes with the matching close status, and
 * emits it once. Tests assert the `code`, which is stable; the message is for people.
 */
export const PROTOCOL_ERROR_CODES = [
  /** Not a valid message: undecodable bytes, unknown type, missing or mistyped field, wrong size or shape, non-finite number. */
  'DDP_BAD_MESSAGE',
  /** Missing or wrong shared token. */
  'DDP_AUTH',
  /** The peer speaks another protocol version. */
  'DDP_VERSION',
  /** A frame larger than the receiver's maxPayload. */
  'DDP_TOO_LARGE',
  /** The job already has all the workers it asked for. */
  'DDP_FULL',
  /** No hello in time, or no sign of life for the heartbeat timeout. */
  'DDP_TIMEOUT',
  /** The worker's copy of the data set differs from the coordinator's (count or fingerprint). */
  'DDP_DATASET',
  /** The worker failed while computing (it says why in the message). */
  'DDP_WORKER',
  /** Ring mode: the workers' replicas of the weights differ after a step (the run stops). */
  'DDP_MISMATCH',
  /**
   * A worker that lost its coordinator reconnected and found another job there (another job id or
   * fingerprint than its first welcome's): it leaves instead of joining that job.
   */
  'DDP_JOB_CHANGED',
  /** A plaintext client on a TLS port (answered with HTTP 400 before any WebSocket). */
  'DDP_TLS_REQUIRED',
  /** A TLS client on a plaintext port. */
  'DDP_TLS_UNSUPPORTED',
  /** The other end's certificate does not verify against the CA given (or it refused ours). */
  'DDP_TLS_UNVERIFIED',
] as const;
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/** WebSocket close status for each code (4000-4999 is the range RFC 6455 leaves to applications). */
export const CLOSE_CODES: Record<ProtocolErrorCode, number> = {
  DDP_BAD_MESSAGE: 4000,
  DDP_AUTH: 4001,
  DDP_VERSION: 4002,
  DDP_TOO_LARGE: 1009,
  DDP_FULL: 4004,
  DDP_TIMEOUT: 4005,
  DDP_DATASET: 4006,
  DDP_WORKER: 4007,
  DDP_MISMATCH: 4008,
  DDP_JOB_CHANGED: 4009,
  // The TLS refusals happen before a WebSocket exists; these only complete the table.
  DDP_TLS_REQUIRED: 4010,
  DDP_TLS_UNSUPPORTED: 4011,
  DDP_TLS_UNVERIFIED: 4012,
};

/** Normal end of a job: the coordinator closes every worker with this after `done`. */
export const CLOSE_DONE = 1000;

export function isProtocolErrorCode(value: unknown): value is ProtocolErrorCode {
  return typeof value === 'string' && (PROTOCOL_ERROR_CODES as readonly string[]).includes(value);
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }

  /** The close status that goes with this error's code. */
  get closeCode(): number {
    return CLOSE_CODES[this.code];
  }
}
