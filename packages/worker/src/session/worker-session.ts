/**
 * The worker's side of the connection protocol as a state machine with no socket: frames go in,
 * replies and at most one ending come out. run-worker.ts wires it to a WebSocket and hands the
 * mode's messages to the member (star/star-member.ts or ring/ring-member.ts); tests feed it frames.
 *
 *   1. hello() is the first frame to send (with the job to rejoin, after the coordinator was lost).
 *   2. welcome: when rejoining a restarted coordinator, check that it serves the same job (job id and
 *      fingerprint; another job ends with DDP_JOB_CHANGED, exit 3); check the model size, load the
 *      training split the coordinator names (or take the one kept from before) and check its
 *      count and fingerprint (a mismatch ends with DDP_DATASET); with --serve-data, assemble it from
 *      the train_data chunks that follow. Once the split is there, the session is `ready`.
 *   3. work (star mode) and the ring messages go out as `member`, for the mode's member.
 *   4. ping -> pong; done -> end with exit code 0; error -> end (3 if refused at the handshake, else 1);
 *      the socket closed without done, error or a close status of ours -> end `lost` (exit 1, but a
 *      worker that was welcomed once may rejoin: see rejoin.ts).
 * Every frame is validated first; a malformed one ends the session with DDP_BAD_MESSAGE.
 */
import {
  CLOSE_CODES,
  CLOSE_DONE,
  MSG,
  PROTOCOL_VERSION,
  ProtocolError,
  SEED_CNN_PARAM_COUNT,
  decodeFrame,
  describeJob,
  loadDataset,
  parseCoordinatorMessage,
  sameJob,
  splitFingerprint,
  type DataSpec,
  type DatasetName,
  type EvaluateMessage,
  type HelloMessage,
  type JobIdentity,
  type ProtocolErrorCode,
  type RingCoordinatorMessage,
  type RankHint,
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
  /** Refused at the handshake: wrong token, wrong version, job full; or rejoined another job (DDP_JOB_CHANGED). */
  REFUSED: 3,
} as const;

export interface WorkerSessionOptions {
  token: string;
  backend: string;
  host: string;
  pid: number;
  /** The index the scheduler gave this process (schedulerRankHint()), reported to the coordinator. */
  rankHint?: RankHint;
  /** Overrides the data folder the coordinator names (for a worker whose copy lives elsewhere). */
  dataDir?: string;
  /** Loads the training split; tests inject one (the test split is then absent). Default: loadData. */
  loadTrain?: (spec: DataSpec, dataDir: string | undefined) => Split;
  /** Loads both splits. Default: loadDataset with the welcome's flags. */
  loadData?: (spec: DataSpec, dataDir: string | undefined) => { train: Split; test: Split | null };
  /**
   * Rejoining after the coordinator was lost: the job of the first welcome. A welcome for another job
   * (id or fingerprint) ends the session with DDP_JOB_CHANGED and exit code 3, before any data is loaded.
   */
  job?: JobIdentity;
}

export interface SessionEnd {
  exitCode: number;
  message: string;
  /** Set when this worker ends the connection for a fault: the close status to use. */
  code?: ProtocolErrorCode;
  /**
   * The coordinator went away: the socket closed without its done, an error or a close status of
   * ours (a crash, a kill, a lost host), or it fell silent. Not a decision of the coordinator's, so a
   * worker that was welcomed may try to rejoin (rejoin.ts).
   */
  lost?: boolean;
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

/** Reads both splits the welcome names (the default of WorkerSessionOptions.loadData). */
export function loadSplits(spec: DataSpec, dataDir: string | undefined): { train: Split; test: Split } {
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
    const hello: HelloMessage = { type: MSG.HELLO, protocolVersion: PROTOCOL_VERSION, token: this.opts.token, backend: this.opts.backend, host: this.opts.host, pid: this.opts.pid };
    if (this.opts.job) hello.job = { id: this.opts.job.id, fingerprint: this.opts.job.fingerprint };
    if (this.opts.rankHint) hello.rankHint = this.opts.rankHint;
    return hello;
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
    // The coordinator's own closes: a DDP code (it refused or dropped us) or a normal close (done).
    const deliberate = protocolCode !== undefined || code === CLOSE_DONE;
    if (!this.welcome) {
      const end = this.finish(protocolCode ? WORKER_EXIT.REFUSED : WORKER_EXIT.FAILED, `the coordinator closed the connection before the handshake ended (${what}${detail})`).end!;
      if (!deliberate) end.lost = true;
      return end;
    }
    if (deliberate) return this.finish(WORKER_EXIT.FAILED, `the coordinator closed the connection without saying why (${what}${detail})`).end!;
    const end = this.finish(WORKER_EXIT.FAILED, `lost the coordinator (the connection closed: ${what}${detail})`).end!;
    end.lost = true;
    return end;
  }

  /** Ends the session for a fault of this worker's own: the error message to send, and the ending. */
  fail(code: ProtocolErrorCode, message: string, exitCode: number = WORKER_EXIT.FAILED): SessionOutput {
    const out = this.finish(exitCode, `${code}: ${message}`);
    this.ended!.code = code;
    out.replies.push({ type: MSG.ERROR, code, message });
    return out;
  }

  private onWelcome(w: WelcomeMessage): SessionOutput {
    const job = this.opts.job;
    // The coordinator checks the hello's job too; this is the worker's own guard.
    if (job && !sameJob(w.job, job)) {
      return this.fail('DDP_JOB_CHANGED', `the coordinator now serves another job (${describeJob(w.job)}) than the one this worker joined (${describeJob(job)}); not joining it`, WORKER_EXIT.REFUSED);
    }
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
      ({ train, test } = this.opts.loadTrain ? { train: this.opts.loadTrain(spec, dir), test: null } : (this.opts.loadData ?? loadSplits)(spec, dir));
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
