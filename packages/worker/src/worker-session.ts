/**
 * The worker's side of the protocol as a state machine with no socket: frames go in, replies and at
 * most one ending come out. run-worker.ts wires it to a WebSocket; tests feed it frames.
 *
 *   1. hello() is the first frame to send.
 *   2. welcome: check the model size, load the training split the coordinator names (or nothing with
 *      --serve-data) and check its count and fingerprint; a mismatch ends with DDP_DATASET.
 *   3. star mode, work: compute the shard's gradient sum and answer with one gradient frame (float32,
 *      or float16 bits with --compress fp16). ring mode: the ring messages go out as `ring`, for
 *      the RingMember (ring/ring-member.ts), which answers asynchronously.
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
  encodeFp16,
  loadDataset,
  parseCoordinatorMessage,
  splitFingerprint,
  type DataSpec,
  type DatasetName,
  type HelloMessage,
  type ProtocolErrorCode,
  type RingCoordinatorMessage,
  type Split,
  type WelcomeMessage,
  type WorkerInboundLimits,
  type WorkerToCoordinator,
} from '@ddp/core';
import { shardGradient } from './shard-gradient.js';

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
  /** Loads the training split; tests inject one. Default: loadDataset with the welcome's flags. */
  loadTrain?: (spec: DataSpec, dataDir: string | undefined) => Split;
}

export interface SessionEnd {
  exitCode: number;
  message: string;
  /** Set when this worker ends the connection for a fault: the close status to use. */
  code?: ProtocolErrorCode;
}

export interface SessionOutput {
  replies: WorkerToCoordinator[];
  welcomed?: WelcomeMessage;
  end?: SessionEnd;
  /** Ring mode: a message for the RingMember. */
  ring?: RingCoordinatorMessage;
}

/** The largest magnitude that does not round to Infinity in float16 (65504 plus half an ulp). */
const FP16_LIMIT = 65520;

function defaultLoadTrain(spec: DataSpec, dataDir: string | undefined): Split {
  return loadDataset({ dataset: spec.dataset as DatasetName, dataDir, limitTrain: spec.limitTrain, limitTest: 1 }).train;
}

export class WorkerSession {
  private limits: WorkerInboundLimits | null = null;
  private train: Split | null = null;
  private ended: SessionEnd | null = null;
  welcome: WelcomeMessage | null = null;
  /** Work orders answered so far. */
  tasksDone = 0;

  /** The local training split (null before the welcome and with --serve-data). */
  get trainSplit(): Split | null {
    return this.train;
  }

  constructor(private readonly opts: WorkerSessionOptions) {}

  hello(): HelloMessage {
    return { type: MSG.HELLO, protocolVersion: PROTOCOL_VERSION, token: this.opts.token, backend: this.opts.backend, host: this.opts.host, pid: this.opts.pid };
  }

  get end(): SessionEnd | null {
    return this.ended;
  }

  /** Handles one frame; `receivedAt` (performance.now()) is when it arrived, for the busy time. */
  receive(frame: Uint8Array, receivedAt = performance.now()): SessionOutput {
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
      case MSG.WORK: {
        let r;
        try {
          r = shardGradient(msg, this.train, this.limits!.rows, this.limits!.cols, this.welcome?.reduction ?? 'fast');
        } catch (err) {
          return this.fail('DDP_WORKER', `gradient computation failed at step ${msg.step + 1}: ${err instanceof Error ? err.message : String(err)}`);
        }
        let grad: Float32Array | Uint16Array | Float64Array = r.grad;
        if (this.welcome?.compress === 'fp16' && r.grad instanceof Float32Array) {
          const i = r.grad.findIndex((x) => !(Math.abs(x) < FP16_LIMIT));
          if (i >= 0) return this.fail('DDP_WORKER', `the gradient sum at step ${msg.step + 1} is ${r.grad[i]} at index ${i}, beyond the float16 range (run with --compress none)`);
          grad = encodeFp16(r.grad);
        }
        this.tasksDone += 1;
        const reply: WorkerToCoordinator = {
          type: MSG.GRADIENT, step: msg.step, task: msg.task, count: msg.indices.length, lossSum: r.lossSum, grad,
          computeMs: r.computeMs, busyMs: performance.now() - receivedAt,
        };
        return { replies: [reply] };
      }
      case MSG.REPLICA:
      case MSG.RING_LISTEN:
      case MSG.RING_CONNECT:
      case MSG.RING_WORK:
      case MSG.FETCH:
        if (msg.type === MSG.RING_WORK) this.tasksDone += 1;
        return { replies: [], ring: msg };
      case MSG.PING:
        return { replies: [{ type: MSG.PONG, nonce: msg.nonce }] };
      case MSG.DONE:
        return this.finish(WORKER_EXIT.DONE, `done: ${msg.reason}`);
      case MSG.ERROR:
        return this.welcome
          ? this.finish(WORKER_EXIT.FAILED, `the coordinator ended the connection: ${msg.code}: ${msg.message}`)
          : this.finish(WORKER_EXIT.REFUSED, `refused by the coordinator: ${msg.code}: ${msg.message}`);
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

  private onWelcome(w: WelcomeMessage): SessionOutput {
    if (w.paramCount !== SEED_CNN_PARAM_COUNT) {
      return this.fail('DDP_BAD_MESSAGE', `the coordinator's model has ${w.paramCount} parameters, this worker's seed CNN has ${SEED_CNN_PARAM_COUNT}`);
    }
    const spec = w.data;
    if (!spec.serveData) {
      const dir = this.opts.dataDir ?? spec.dataDir;
      let train: Split;
      try {
        train = (this.opts.loadTrain ?? defaultLoadTrain)(spec, dir);
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
      this.train = train;
    }
    this.welcome = w;
    this.limits = {
      paramCount: w.paramCount, trainCount: spec.trainCount, rows: spec.rows, cols: spec.cols, numClasses: spec.numClasses, serveData: spec.serveData,
      allreduce: w.allreduce,
    };
    return { replies: [], welcomed: w };
  }

  private fail(code: ProtocolErrorCode, message: string): SessionOutput {
    const out = this.finish(WORKER_EXIT.FAILED, `${code}: ${message}`);
    this.ended!.code = code;
    out.replies.push({ type: MSG.ERROR, code, message });
    return out;
  }

  private finish(exitCode: number, message: string): SessionOutput {
    this.ended = { exitCode, message };
    return { replies: [], end: this.ended };
  }
}
