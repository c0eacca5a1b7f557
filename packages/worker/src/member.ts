// What a worker does once welcomed, in either mode: a member takes the coordinator's mode messages
// and answers through the same `send` (the star member synchronously, the ring member from its runs).
import type { ProtocolErrorCode, Split, WelcomeMessage, WorkerToCoordinator } from '@ddp/core';

export interface MemberContext {
  welcome: WelcomeMessage;
  /** The training split (local, or assembled from the coordinator's train_data). */
  train: Split;
  /** The test split, read locally (null with --serve-data: the coordinator evaluates itself). */
  test: Split | null;
  /** Sends a message to the coordinator. */
  send(msg: WorkerToCoordinator): void;
  /** Ends the session for a fault of this worker's own (the coordinator gets the code and message). */
  fail(code: ProtocolErrorCode, message: string): void;
}

export interface Member<M> {
  /** One message of this member's mode, validated; `receivedAt` is performance.now() on arrival. */
  handle(msg: M, receivedAt: number): void;
  /** The session ended: stop everything. */
  close(): void;
}
