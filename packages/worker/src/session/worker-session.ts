/**
 * The worker's side of the connection protocol as a state machine with no socket: frames go in,
 * replies and at most one ending come out. run-worker.ts wires it to a WebSocket and hands the
 * mode's messages to the member (star/star-member.ts or ring/ring-member.ts); tests feed it frames.
 *
 *   1. hello() is the first frame to send.
 *   2. welcome: check the model size, load the training split the coordinator names and check its
 *      count and fingerprint (a mismatch ends with DDP_DATASET); with --serve-data, assemble it from
 *      the train_data chunks that follow. Once the split is there, the session is `ready`.
 *   3. work (star mode) and the ring messages go out as `member`, for the mode's member.
 *   4. ping -> pong; done -> end with exit code 0; error -> end (3 if refused at the handshake, else 1).
 * Every frame is validated first; a malformed one ends the session with DDP_BAD_MESSAGE.
 */
import {
  CLOSE_CODES,
  MSG,
  PROTOCOL_VERSION,
  ProtocolError,
  SEED_CNN_PARAM_COUNT,
  decodeFrame,
  loadDataset,
  parseCoordinatorMessage,
  splitFingerprint,
  type DataSpec,
  type DatasetName,
  type EvaluateMessage,
  type HelloMessage,
  type ProtocolErrorCode,
  type RingCoordinatorMessage,
  type Split,
  type WelcomeMessage,
  type WorkMessage,
  type WorkerInboundLimits,
  type WorkerToCoordinator,
} from '@ddp/core';
import { ServedSplit } from './served-data.js';

export const WORKER_EXIT = {
  /** The coordinator said the job is done. */
  DONE: 0,
  /** Lost the coordinator, bad data, a failure while computing. */
  FAILED: 1,
  /** Refused at the handshake: wrong token, wrong version, job full. */
  REFUSED: 3,
} as const;

export interface WorkerSessionOptions {
  token: string;
  backend: string;
  host: string;
  pid: number;
  /** Overrides the data folder the coordinator names (for a worker whose copy lives elsewhere). */
  dataDir?: string;
  /** Loads the training split; tests inject one (the test split is then absent). Default: loadData. */
  loadTrain?: (spec: DataSpec, dataDir: string | undefined) => Split;
  /** Loads both splits. Default: loadDataset with the welcome's flags. */
  loadData?: (spec: DataSpec, dataDir: string | undefined) => { train: Split; test: Split | null };
}

export interface SessionEnd {
  exitCode: number;
  message: string;
  /** Set when this worker ends the connection for a fault: the close status to use. */
  code?: ProtocolErrorCode;
}

/** A message of the job's mode, for the member. */
export type MemberMessage = WorkMessage | EvaluateMessage | RingCoordinatorMessage;

export interface SessionOutput {
  replies: WorkerToCoordinator[];
  welcomed?: WelcomeMessage;
  /** The welcome and the training split are both here: start the member. */
  ready?: { welcome: WelcomeMessage; train: Split; test: Split | null };
  end?: SessionEnd;
  member?: MemberMessage;
}

function defaultLoadData(spec: DataSpec, dataDir: string | undefined): { train: Split; test: Split } {
  const d = loadDataset({ dataset: spec.dataset as DatasetName, dataDir, limitTrain: spec.limitTrain, limitTest: spec.limitTest });
  return { train: d.train, test: d.test };
}

export class WorkerSession {
  private limits: WorkerInboundLimits | null = null;
  private served: ServedSplit | null = null;
  private ended: SessionEnd | null = null;
  welcome: WelcomeMessage | null = null;

  constructor(private readonly opts: WorkerSessionOptions) {}

  hello(): HelloMessage {
    return { type: MSG.HELLO, protocolVersion: PROTOCOL_VERSION, token: this.opts.token, backend: this.opts.backend, host: this.opts.host, pid: this.opts.pid };
  }

  get end(): SessionEnd | null {
    return this.ended;
  }

  /** Handles one frame. */
  receive(frame: Uint8Array): SessionOutput {
    if (this.ended) return { replies: [] };
    let msg;
    try {
      msg = parseCoordinatorMessage(decodeFrame(frame), this.limits);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err));
      return this.fail(e.code, `refused a message from the coordinator: ${e.message}`);
    }
    switch (msg.type) {
      case MSG.WELCOME:
        return this.onWelcome(msg);
      case MSG.TRAIN_DATA: {
        if (!this.served) return this.fail('DDP_BAD_MESSAGE', 'train_data after the training split was complete');
        let split: Split | null;
        try {
          split = this.served.add(msg);
        } catch (err) {
          return this.fail('DDP_DATASET', err instanceof Error ? err.message : String(err));
        }
        if (!split) return { replies: [] };
        this.served = null;
        return { replies: [], ready: { welcome: this.welcome!, train: split, test: null } };
      }
      case MSG.PING:
        return { replies: [{ type: MSG.PONG, nonce: msg.nonce }] };
      case MSG.DONE:
        return this.finish(WORKER_EXIT.DONE, `done: ${msg.reason}`);
      case MSG.ERROR:
        return this.welcome
          ? this.finish(WORKER_EXIT.FAILED, `the coordinator ended the connection: ${msg.code}: ${msg.message}`)
          : this.finish(WORKER_EXIT.REFUSED, `refused by the coordinator: ${msg.code}: ${msg.message}`);
      default:
        if (this.served) return this.fail('DDP_BAD_MESSAGE', `${msg.type} before the training split was complete (--serve-data)`);
        return { replies: [], member: msg };
    }
  }

  /** The socket closed. Without a `done` or `error` first, that is a lost coordinator. */
  closed(code: number, reason: string): SessionEnd | null {
    if (this.ended) return null;
    const protocolCode = (Object.keys(CLOSE_CODES) as ProtocolErrorCode[]).find((k) => CLOSE_CODES[k] === code);
    const what = protocolCode ? `${protocolCode}` : `code ${code}`;
    const detail = reason && reason !== protocolCode ? `: ${reason}` : '';
    if (!this.welcome) return this.finish(protocolCode ? WORKER_EXIT.REFUSED : WORKER_EXIT.FAILED, `the coordinator closed the connection before the handshake ended (${what}${detail})`).end!;
    return this.finish(WORKER_EXIT.FAILED, `connection to the coordinator lost (${what}${detail})`).end!;
  }

  /** Ends the session for a fault of this worker's own: the error message to send, and the ending. */
  fail(code: ProtocolErrorCode, message: string): SessionOutput {
    const out = this.finish(WORKER_EXIT.FAILED, `${code}: ${message}`);
    this.ended!.code = code;
    out.replies.push({ type: MSG.ERROR, code, message });
    return out;
  }

  private onWelcome(w: WelcomeMessage): SessionOutput {
    if (w.paramCount !== SEED_CNN_PARAM_COUNT) {
      return this.fail('DDP_BAD_MESSAGE', `the coordinator's model has ${w.paramCount} parameters, this worker's seed CNN has ${SEED_CNN_PARAM_COUNT}`);
    }
    const spec = w.data;
    this.welcome = w;
    this.limits = { paramCount: w.paramCount, trainCount: spec.trainCount, testCount: spec.testCount, rows: spec.rows, cols: spec.cols, numClasses: spec.numClasses, serveData: spec.serveData, config: w.config };
    if (spec.serveData) {
      this.served = new ServedSplit(spec);
      return { replies: [], welcomed: w };
    }
    const dir = this.opts.dataDir ?? spec.dataDir;
    let train: Split;
    let test: Split | null;
    try {
      ({ train, test } = this.opts.loadTrain ? { train: this.opts.loadTrain(spec, dir), test: null } : (this.opts.loadData ?? defaultLoadData)(spec, dir));
    } catch (err) {
      return this.fail('DDP_DATASET', `cannot load ${spec.dataset}${dir ? ` from ${dir}` : ''}: ${err instanceof Error ? err.message : String(err)} (or let the coordinator send the pixels: --serve-data)`);
    }
    if (train.count !== spec.trainCount || train.rows !== spec.rows || train.cols !== spec.cols) {
      return this.fail('DDP_DATASET', `data set mismatch: the coordinator has ${spec.trainCount} training images of ${spec.rows}x${spec.cols}, this worker ${train.count} of ${train.rows}x${train.cols}`);
    }
    const mine = splitFingerprint(train);
    if (mine !== spec.fingerprint) {
      return this.fail('DDP_DATASET', `data set mismatch: same size, different content (fingerprint ${mine.slice(0, 12)}… here, ${spec.fingerprint.slice(0, 12)}… at the coordinator)`);
    }
    if (test && (test.count !== spec.testCount || splitFingerprint(test) !== spec.testFingerprint)) {
      return this.fail('DDP_DATASET', `data set mismatch: the test split here (${test.count} images) is not the coordinator's (${spec.testCount})`);
    }
    return { replies: [], welcomed: w, ready: { welcome: w, train, test } };
  }

  private finish(exitCode: number, message: string): SessionOutput {
    this.ended = { exitCode, message };
    return { replies: [], end: this.ended };
  }
}
