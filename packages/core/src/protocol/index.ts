// The wire protocol between coordinator and workers: message contracts, codec, validation, auth.
export { PROTOCOL_VERSION } from './version.js';
export { MSG, ALLREDUCE_MODES, COMPRESSIONS, RING_FAILURE_CODES } from './messages.js';
export { WIRE_SETTINGS, WIRE_SETTING_NAMES, DEFAULT_WIRE, defaultReduction, wireConfig, wireConflict } from './wire-config.js';
export type { WireConfig, WireSettingName } from './wire-config.js';
export type {
  AllreduceMode,
  CoordinatorToWorker,
  FetchMessage,
  ReplicaMessage,
  RingAddressMessage,
  RingConnectMessage,
  RingCoordinatorMessage,
  RingFailedMessage,
  RingListenMessage,
  RingReadyMessage,
  RingProgressMessage,
  RingRunMessage,
  RingStopMessage,
  RingStoppedMessage,
  TrainDataMessage,
  PlanMessageSpec,
  JobIdentity,
  RingWorkerMessage,
  StateMessage,
  EvaluateMessage,
  EvaluationMessage,
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
export type { CoordinatorInboundLimits, WorkerInboundLimits } from './messages.js';
export { TOKEN_ENV, VIEW_TOKEN_ENV, newToken, tokensMatch } from './auth.js';
export { splitFingerprint } from './fingerprint.js';
export { describeJob, sameJob } from './job-identity.js';
export { replicaHash, REPLICA_HASH_PATTERN } from './replica-hash.js';
export { MAX_SHARD_SAMPLES, TRAIN_DATA_CHUNK, coordinatorMaxPayload, workerMaxPayload } from './frame-limits.js';
