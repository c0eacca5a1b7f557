// The wire protocol between coordinator and workers: message contracts, codec, validation, auth.
export { PROTOCOL_VERSION } from './version.js';
export { MSG } from './messages.js';
export type {
  CoordinatorToWorker,
  DataSpec,
  DoneMessage,
  ErrorMessage,
  GradientMessage,
  HelloMessage,
  Message,
  MessageType,
  PingMessage,
  PongMessage,
  WelcomeMessage,
  WorkMessage,
  WorkerToCoordinator,
} from './messages.js';
export { CLOSE_CODES, CLOSE_DONE, PROTOCOL_ERROR_CODES, ProtocolError, isProtocolErrorCode } from './protocol-error.js';
export type { ProtocolErrorCode } from './protocol-error.js';
export { decodeFrame, encodeMessage } from './codec.js';
export { parseCoordinatorMessage, parseWorkerMessage } from './validate.js';
export type { CoordinatorInboundLimits, WorkerInboundLimits } from './validate.js';
export { TOKEN_ENV, newToken, tokensMatch } from './auth.js';
export { splitFingerprint } from './fingerprint.js';
export { MAX_SHARD_SAMPLES, coordinatorMaxPayload, workerMaxPayload } from './frame-limits.js';
