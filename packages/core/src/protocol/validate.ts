/**
 * Validation at the boundary: every decoded frame goes through one of the two parsers below before
 * it touches any state. They check the type, that exactly the expected fields are there, their types,
 * sizes and shapes, and that numbers are finite; what comes out is a typed message the rest of the
 * code trusts. Anything else throws a ProtocolError whose message names the message type, the field,
 * what was expected and what arrived.
 */
import {
  MSG,
  type CoordinatorToWorker,
  type DataSpec,
  type ErrorMessage,
  type GradientMessage,
  type HelloMessage,
  type WelcomeMessage,
  type WorkMessage,
  type WorkerToCoordinator,
} from './messages.js';
import { ProtocolError, isProtocolErrorCode } from './protocol-error.js';
import { PROTOCOL_VERSION } from './version.js';

/** What the coordinator knows when a frame from a worker arrives. */
export interface CoordinatorInboundLimits {
  paramCount: number;
}

/** What the worker knows once welcomed (before that, only welcome, error and done are accepted). */
export interface WorkerInboundLimits {
  paramCount: number;
  trainCount: number;
  rows: number;
  cols: number;
  numClasses: number;
  serveData: boolean;
}

const MAX_TEXT = 4096;
const MAX_U32 = 0xffffffff;

function bad(message: string): ProtocolError {
  return new ProtocolError('DDP_BAD_MESSAGE', message);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of ${(value as unknown as ArrayLike<unknown>).length ?? value.byteLength} elements`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'number') return `${value}`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object' ? `${(value as object).constructor?.name ?? 'an object'}` : typeof value;
}

type Obj = Record<string, unknown>;

function isPlainObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** Exactly these fields (optional ones may be absent): an unknown field means a peer we misunderstand. */
function checkFields(obj: Obj, where: string, required: readonly string[], optional: readonly string[] = []): void {
  for (const name of required) {
    if (!Object.prototype.hasOwnProperty.call(obj, name) || obj[name] === undefined) throw bad(`${where}: missing field '${name}'`);
  }
  for (const name of Object.keys(obj)) {
    if (!required.includes(name) && !optional.includes(name)) throw bad(`${where}: unexpected field '${name}'`);
  }
}

function int(obj: Obj, name: string, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = obj[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(`${where}.${name}: expected an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

function finite(obj: Obj, name: string, where: string, min = -Infinity): number {
  const v = obj[name];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw bad(`${where}.${name}: expected a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${describe(v)}`);
  }
  return v;
}

function text(obj: Obj, name: string, where: string, maxLength = MAX_TEXT): string {
  const v = obj[name];
  if (typeof v !== 'string' || v.length > maxLength) {
    throw bad(`${where}.${name}: expected a string of at most ${maxLength} characters, got ${describe(v)}`);
  }
  return v;
}

function bool(obj: Obj, name: string, where: string): boolean {
  const v = obj[name];
  if (typeof v !== 'boolean') throw bad(`${where}.${name}: expected true or false, got ${describe(v)}`);
  return v;
}

function float32s(obj: Obj, name: string, where: string, length: number): Float32Array {
  const v = obj[name];
  if (!(v instanceof Float32Array) || v.length !== length) {
    throw bad(`${where}.${name}: expected a Float32Array of ${length} values, got ${describe(v)}`);
  }
  for (let i = 0; i < v.length; i++) {
    // NaN fails both comparisons; ±Infinity fails the second.
    if (!(Math.abs(v[i]) <= 3.4028234663852886e38)) throw bad(`${where}.${name}[${i}] is ${v[i]}, expected a finite number`);
  }
  return v;
}

function uint32s(obj: Obj, name: string, where: string, maxLength: number, below: number): Uint32Array {
  const v = obj[name];
  if (!(v instanceof Uint32Array) || v.length > maxLength) {
    throw bad(`${where}.${name}: expected a Uint32Array of at most ${maxLength} values, got ${describe(v)}`);
  }
  for (let i = 0; i < v.length; i++) {
    if (v[i] >= below) throw bad(`${where}.${name}[${i}] = ${v[i]} is not in [0, ${below - 1}]`);
  }
  return v;
}

function bytes(obj: Obj, name: string, where: string, length: number, below = 256): Uint8Array {
  const v = obj[name];
  if (!(v instanceof Uint8Array) || v.length !== length) {
    throw bad(`${where}.${name}: expected a Uint8Array of ${length} bytes, got ${describe(v)}`);
  }
  if (below < 256) {
    for (let i = 0; i < v.length; i++) if (v[i] >= below) throw bad(`${where}.${name}[${i}] = ${v[i]} is not in [0, ${below - 1}]`);
  }
  return v;
}

function envelope(raw: unknown, from: string): Obj & { type: string } {
  if (!isPlainObject(raw)) throw bad(`message from ${from}: expected a map with a 'type' field, got ${describe(raw)}`);
  if (typeof raw.type !== 'string') throw bad(`message from ${from}: 'type' must be a string, got ${describe(raw.type)}`);
  return raw as Obj & { type: string };
}

function parseError(obj: Obj): ErrorMessage {
  checkFields(obj, 'error', ['type', 'code', 'message']);
  const code = obj.code;
  if (!isProtocolErrorCode(code)) throw bad(`error.code: expected a DDP_* code, got ${describe(code)}`);
  return { type: MSG.ERROR, code, message: text(obj, 'message', 'error') };
}

/**
 * The version is checked before anything else in a hello, so that a worker of another version gets
 * DDP_VERSION (what it needs to hear) rather than a complaint about a field that version changed.
 */
function parseHello(obj: Obj): HelloMessage {
  const version = obj.protocolVersion;
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'DDP_VERSION',
      `protocol version mismatch: the worker speaks ${version === undefined ? 'no known version' : `version ${describe(version)}`}, ` +
        `this coordinator speaks ${PROTOCOL_VERSION}; run the same ddp version on both`,
    );
  }
  const where = 'hello';
  checkFields(obj, where, ['type', 'protocolVersion', 'token', 'backend', 'host', 'pid']);
  return {
    type: MSG.HELLO,
    protocolVersion: version,
    token: text(obj, 'token', where, 1024),
    backend: text(obj, 'backend', where, 64),
    host: text(obj, 'host', where, 255),
    pid: int(obj, 'pid', where),
  };
}

function parseGradient(obj: Obj, limits: CoordinatorInboundLimits): GradientMessage {
  const where = 'gradient';
  checkFields(obj, where, ['type', 'step', 'task', 'count', 'lossSum', 'grad', 'computeMs', 'busyMs']);
  return {
    type: MSG.GRADIENT,
    step: int(obj, 'step', where),
    task: int(obj, 'task', where),
    count: int(obj, 'count', where, 0, MAX_U32),
    lossSum: finite(obj, 'lossSum', where, 0),
    grad: float32s(obj, 'grad', where, limits.paramCount),
    computeMs: finite(obj, 'computeMs', where, 0),
    busyMs: finite(obj, 'busyMs', where, 0),
  };
}

/** Validates a decoded frame from a worker. Throws ProtocolError (DDP_BAD_MESSAGE, DDP_VERSION). */
export function parseWorkerMessage(raw: unknown, limits: CoordinatorInboundLimits): WorkerToCoordinator {
  const obj = envelope(raw, 'worker');
  switch (obj.type) {
    case MSG.HELLO:
      return parseHello(obj);
    case MSG.GRADIENT:
      return parseGradient(obj, limits);
    case MSG.PONG:
      checkFields(obj, 'pong', ['type', 'nonce']);
      return { type: MSG.PONG, nonce: int(obj, 'nonce', 'pong', 0, MAX_U32) };
    case MSG.ERROR:
      return parseError(obj);
    default:
      throw bad(`message from worker: unknown type '${obj.type.slice(0, 40)}' (expected hello, gradient, pong or error)`);
  }
}

function parseDataSpec(raw: unknown): DataSpec {
  const where = 'welcome.data';
  if (!isPlainObject(raw)) throw bad(`${where}: expected a map, got ${describe(raw)}`);
  checkFields(raw, where, ['dataset', 'trainCount', 'fingerprint', 'serveData', 'rows', 'cols', 'numClasses'], ['dataDir', 'limitTrain']);
  const spec: DataSpec = {
    dataset: text(raw, 'dataset', where, 64),
    trainCount: int(raw, 'trainCount', where, 1, MAX_U32),
    fingerprint: text(raw, 'fingerprint', where, 128),
    serveData: bool(raw, 'serveData', where),
    rows: int(raw, 'rows', where, 1, 4096),
    cols: int(raw, 'cols', where, 1, 4096),
    numClasses: int(raw, 'numClasses', where, 2, 65536),
  };
  if (raw.dataDir !== undefined) spec.dataDir = text(raw, 'dataDir', where);
  if (raw.limitTrain !== undefined) spec.limitTrain = int(raw, 'limitTrain', where, 1, MAX_U32);
  return spec;
}

function parseWelcome(obj: Obj): WelcomeMessage {
  const where = 'welcome';
  const version = obj.protocolVersion;
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError('DDP_VERSION', `protocol version mismatch: the coordinator speaks version ${describe(version)}, this worker speaks ${PROTOCOL_VERSION}`);
  }
  checkFields(obj, where, ['type', 'protocolVersion', 'rank', 'workers', 'paramCount', 'heartbeatMs', 'data']);
  return {
    type: MSG.WELCOME,
    protocolVersion: version,
    rank: int(obj, 'rank', where, 0, 65535),
    workers: int(obj, 'workers', where, 1, 65536),
    paramCount: int(obj, 'paramCount', where, 1, 1 << 28),
    heartbeatMs: int(obj, 'heartbeatMs', where, 1, 3_600_000),
    data: parseDataSpec(obj.data),
  };
}

function parseWork(obj: Obj, limits: WorkerInboundLimits): WorkMessage {
  const where = 'work';
  checkFields(obj, where, ['type', 'step', 'epoch', 'task', 'params', 'indices'], ['images', 'labels']);
  const indices = uint32s(obj, 'indices', where, limits.trainCount, limits.trainCount);
  const msg: WorkMessage = {
    type: MSG.WORK,
    step: int(obj, 'step', where),
    epoch: int(obj, 'epoch', where),
    task: int(obj, 'task', where),
    params: float32s(obj, 'params', where, limits.paramCount),
    indices,
  };
  const served = obj.images !== undefined || obj.labels !== undefined;
  if (served !== limits.serveData) {
    throw bad(`${where}: ${limits.serveData ? 'expected images and labels (--serve-data)' : 'unexpected images/labels without --serve-data'}`);
  }
  if (served) {
    msg.images = bytes(obj, 'images', where, indices.length * limits.rows * limits.cols);
    msg.labels = bytes(obj, 'labels', where, indices.length, limits.numClasses);
  }
  return msg;
}

/**
 * Validates a decoded frame from the coordinator. Before the welcome (`limits` null) only welcome,
 * error and done make sense. Throws ProtocolError (DDP_BAD_MESSAGE, DDP_VERSION).
 */
export function parseCoordinatorMessage(raw: unknown, limits: WorkerInboundLimits | null): CoordinatorToWorker {
  const obj = envelope(raw, 'coordinator');
  switch (obj.type) {
    case MSG.WELCOME:
      if (limits) throw bad('welcome: a second welcome on the same connection');
      return parseWelcome(obj);
    case MSG.ERROR:
      return parseError(obj);
    case MSG.DONE:
      checkFields(obj, 'done', ['type', 'reason']);
      return { type: MSG.DONE, reason: text(obj, 'reason', 'done') };
    case MSG.WORK:
    case MSG.PING:
      if (!limits) throw bad(`${obj.type}: received before welcome`);
      if (obj.type === MSG.PING) {
        checkFields(obj, 'ping', ['type', 'nonce']);
        return { type: MSG.PING, nonce: int(obj, 'nonce', 'ping', 0, MAX_U32) };
      }
      return parseWork(obj, limits);
    default:
      throw bad(`message from coordinator: unknown type '${obj.type.slice(0, 40)}' (expected welcome, work, ping, done or error)`);
  }
}
