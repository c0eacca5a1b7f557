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
  type FetchMessage,
  type GradientMessage,
  type HelloMessage,
  type ReplicaMessage,
  type RingAddressMessage,
  type RingConnectMessage,
  type RingFailedMessage,
  type RingListenMessage,
  type RingProgressMessage,
  type RingRunMessage,
  type StateMessage,
  type TrainDataMessage,
  type WelcomeMessage,
  type WorkMessage,
  type WorkerToCoordinator,
} from './messages.js';
import { ProtocolError, isProtocolErrorCode } from './protocol-error.js';
import { REPLICA_HASH_PATTERN } from './replica-hash.js';
import { PROTOCOL_VERSION } from './version.js';
import { WIRE_SETTINGS, WIRE_SETTING_NAMES, type WireConfig } from './wire-config.js';

/** What the coordinator knows when a frame from a worker arrives. */
export interface CoordinatorInboundLimits {
  paramCount: number;
  /**
   * The job's wire settings: ring messages are refused in star mode and gradients in ring mode;
   * gradients are float32, float16 bits (compress 'fp16') or float64 (reduction 'exact').
   */
  config: WireConfig;
}

/** What the worker knows once welcomed (before that, only welcome, error and done are accepted). */
export interface WorkerInboundLimits {
  paramCount: number;
  trainCount: number;
  rows: number;
  cols: number;
  numClasses: number;
  serveData: boolean;
  /** The job's wire settings, from the welcome. */
  config: WireConfig;
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

function float64s(obj: Obj, name: string, where: string, length: number): Float64Array {
  const v = obj[name];
  if (!(v instanceof Float64Array) || v.length !== length) {
    throw bad(`${where}.${name}: expected a Float64Array of ${length} values (--reduction exact), got ${describe(v)}`);
  }
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw bad(`${where}.${name}[${i}] is ${v[i]}, expected a finite number`);
  }
  return v;
}

/** Float16 bit patterns: exponent all ones is Infinity or NaN, which no gradient may carry. */
function halves(obj: Obj, name: string, where: string, length: number): Uint16Array {
  const v = obj[name];
  if (!(v instanceof Uint16Array) || v.length !== length) {
    throw bad(`${where}.${name}: expected a Uint16Array of ${length} float16 values (--compress fp16), got ${describe(v)}`);
  }
  for (let i = 0; i < v.length; i++) {
    if ((v[i] & 0x7c00) === 0x7c00) throw bad(`${where}.${name}[${i}] is the float16 ${v[i] & 0x3ff ? 'NaN' : 'Infinity'} 0x${v[i].toString(16)}, expected a finite number`);
  }
  return v;
}

function oneOf<T extends string>(obj: Obj, name: string, where: string, choices: readonly T[]): T {
  const v = obj[name];
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw bad(`${where}.${name}: expected one of ${choices.join(', ')}, got ${typeof v === 'string' ? `'${v.slice(0, 40)}'` : describe(v)}`);
  }
  return v as T;
}

function hash(obj: Obj, name: string, where: string): string {
  const v = obj[name];
  if (typeof v !== 'string' || !REPLICA_HASH_PATTERN.test(v)) throw bad(`${where}.${name}: expected 16 hex digits, got ${describe(v)}`);
  return v;
}

/** Adam's two moments: both present (each `length` finite float32) or both absent. */
function moments(obj: Obj, where: string, length: number): { adamM?: Float32Array; adamV?: Float32Array } {
  const hasM = obj.adamM !== undefined;
  if (hasM !== (obj.adamV !== undefined)) throw bad(`${where}: adamM and adamV come together or not at all`);
  return hasM ? { adamM: float32s(obj, 'adamM', where, length), adamV: float32s(obj, 'adamV', where, length) } : {};
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
    grad:
      limits.config.reduction === 'exact'
        ? float64s(obj, 'grad', where, limits.paramCount)
        : limits.config.compress === 'fp16'
          ? halves(obj, 'grad', where, limits.paramCount)
          : float32s(obj, 'grad', where, limits.paramCount),
    computeMs: finite(obj, 'computeMs', where, 0),
    busyMs: finite(obj, 'busyMs', where, 0),
  };
}

function parseRingAddress(obj: Obj): RingAddressMessage {
  const where = 'ring_address';
  checkFields(obj, where, ['type', 'generation', 'url', 'steps']);
  const url = text(obj, 'url', where, 512);
  if (!/^wss?:\/\/[^/\s]+/.test(url)) throw bad(`${where}.url: expected ws://HOST:PORT, got '${url.slice(0, 80)}'`);
  return { type: MSG.RING_ADDRESS, generation: int(obj, 'generation', where), url, steps: int(obj, 'steps', where, -1) };
}

function parseRingProgress(obj: Obj): RingProgressMessage {
  const where = 'ring_progress';
  const ms = ['prepareMs', 'computeMs', 'allreduceMs', 'optimizerMs', 'cycleMs'] as const;
  checkFields(obj, where, ['type', 'generation', 'step', 'count', 'lossSum', 'bytesSent', ...ms], ['hash']);
  const msg: RingProgressMessage = {
    type: MSG.RING_PROGRESS,
    generation: int(obj, 'generation', where),
    step: int(obj, 'step', where),
    count: int(obj, 'count', where, 0, MAX_U32),
    lossSum: finite(obj, 'lossSum', where, 0),
    bytesSent: int(obj, 'bytesSent', where),
    prepareMs: 0,
    computeMs: 0,
    allreduceMs: 0,
    optimizerMs: 0,
    cycleMs: 0,
  };
  if (obj.hash !== undefined) msg.hash = hash(obj, 'hash', where);
  for (const k of ms) msg[k] = finite(obj, k, where, 0);
  return msg;
}

function parseRingFailed(obj: Obj): RingFailedMessage {
  const where = 'ring_failed';
  checkFields(obj, where, ['type', 'generation', 'step', 'code', 'position', 'message']);
  return {
    type: MSG.RING_FAILED,
    generation: int(obj, 'generation', where),
    step: int(obj, 'step', where, -1),
    code: text(obj, 'code', where, 64),
    position: int(obj, 'position', where, -1, 65535),
    message: text(obj, 'message', where),
  };
}

function parseState(obj: Obj, limits: CoordinatorInboundLimits): StateMessage {
  const where = 'state';
  checkFields(obj, where, ['type', 'request', 'steps', 'hash', 'params'], ['adamM', 'adamV']);
  return {
    type: MSG.STATE,
    request: int(obj, 'request', where),
    steps: int(obj, 'steps', where),
    hash: hash(obj, 'hash', where),
    params: float32s(obj, 'params', where, limits.paramCount),
    ...moments(obj, where, limits.paramCount),
  };
}

/** Ring messages make sense only in ring mode, gradients only in star mode. */
function checkMode(type: string, ring: boolean, config: WireConfig, from: string): void {
  if (ring !== (config.allreduce === 'ring')) throw bad(`${type} from ${from}: not part of --allreduce ${config.allreduce}`);
}

/** Validates a decoded frame from a worker. Throws ProtocolError (DDP_BAD_MESSAGE, DDP_VERSION). */
export function parseWorkerMessage(raw: unknown, limits: CoordinatorInboundLimits): WorkerToCoordinator {
  const obj = envelope(raw, 'worker');
  switch (obj.type) {
    case MSG.HELLO:
      return parseHello(obj);
    case MSG.GRADIENT:
      checkMode(obj.type, false, limits.config, 'worker');
      return parseGradient(obj, limits);
    case MSG.RING_ADDRESS:
    case MSG.RING_READY:
    case MSG.RING_PROGRESS:
    case MSG.RING_FAILED:
    case MSG.RING_STOPPED:
    case MSG.STATE:
      checkMode(obj.type, true, limits.config, 'worker');
      if (obj.type === MSG.RING_STOPPED) {
        checkFields(obj, 'ring_stopped', ['type', 'generation', 'steps']);
        return { type: MSG.RING_STOPPED, generation: int(obj, 'generation', 'ring_stopped'), steps: int(obj, 'steps', 'ring_stopped', -1) };
      }
      if (obj.type === MSG.RING_ADDRESS) return parseRingAddress(obj);
      if (obj.type === MSG.RING_PROGRESS) return parseRingProgress(obj);
      if (obj.type === MSG.RING_FAILED) return parseRingFailed(obj);
      if (obj.type === MSG.STATE) return parseState(obj, limits);
      checkFields(obj, 'ring_ready', ['type', 'generation']);
      return { type: MSG.RING_READY, generation: int(obj, 'generation', 'ring_ready') };
    case MSG.PONG:
      checkFields(obj, 'pong', ['type', 'nonce']);
      return { type: MSG.PONG, nonce: int(obj, 'nonce', 'pong', 0, MAX_U32) };
    case MSG.ERROR:
      return parseError(obj);
    default:
      throw bad(`message from worker: unknown type '${obj.type.slice(0, 40)}' (expected hello, gradient, pong, error or a ring message)`);
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
  checkFields(obj, where, ['type', 'protocolVersion', 'rank', 'workers', 'paramCount', 'heartbeatMs', 'data', 'config', 'plan']);
  const plan = obj.plan;
  if (!isPlainObject(plan)) throw bad(`${where}.plan: expected a map, got ${describe(plan)}`);
  checkFields(plan, `${where}.plan`, ['seed', 'batchSize']);
  return {
    type: MSG.WELCOME,
    protocolVersion: version,
    rank: int(obj, 'rank', where, 0, 65535),
    workers: int(obj, 'workers', where, 1, 65536),
    paramCount: int(obj, 'paramCount', where, 1, 1 << 28),
    heartbeatMs: int(obj, 'heartbeatMs', where, 1, 3_600_000),
    data: parseDataSpec(obj.data),
    config: parseWireConfig(obj.config),
    plan: { seed: int(plan, 'seed', `${where}.plan`, 0, MAX_U32), batchSize: int(plan, 'batchSize', `${where}.plan`, 1, MAX_U32) },
  };
}

/** The wire settings, field by field from their one declaration (wire-config.ts). */
function parseWireConfig(raw: unknown): WireConfig {
  const where = 'welcome.config';
  if (!isPlainObject(raw)) throw bad(`${where}: expected a map, got ${describe(raw)}`);
  checkFields(raw, where, WIRE_SETTING_NAMES);
  const out: Record<string, string | number> = {};
  for (const name of WIRE_SETTING_NAMES) {
    const s = WIRE_SETTINGS[name];
    out[name] = 'choices' in s ? oneOf(raw, name, where, s.choices as readonly string[]) : int(raw, name, where, s.min, s.max);
  }
  return out as WireConfig;
}

function parseTrainData(obj: Obj, limits: WorkerInboundLimits): TrainDataMessage {
  const where = 'train_data';
  if (!limits.serveData) throw bad(`${where}: unexpected without --serve-data`);
  checkFields(obj, where, ['type', 'offset', 'images', 'labels']);
  const offset = int(obj, 'offset', where, 0, limits.trainCount - 1);
  const labels = obj.labels;
  if (!(labels instanceof Uint8Array) || labels.length < 1 || offset + labels.length > limits.trainCount) {
    throw bad(`${where}.labels: expected a Uint8Array of 1..${limits.trainCount - offset} labels, got ${describe(labels)}`);
  }
  return {
    type: MSG.TRAIN_DATA,
    offset,
    images: bytes(obj, 'images', where, labels.length * limits.rows * limits.cols),
    labels: bytes(obj, 'labels', where, labels.length, limits.numClasses),
  };
}

function parseReplica(obj: Obj, limits: WorkerInboundLimits): ReplicaMessage {
  const where = 'replica';
  checkFields(obj, where, ['type', 'steps', 'params', 'lr'], ['adamM', 'adamV']);
  const lr = finite(obj, 'lr', where);
  if (!(lr > 0)) throw bad(`${where}.lr: expected a positive number, got ${lr}`);
  return { type: MSG.REPLICA, steps: int(obj, 'steps', where), params: float32s(obj, 'params', where, limits.paramCount), lr, ...moments(obj, where, limits.paramCount) };
}

function parseRingListen(obj: Obj): RingListenMessage {
  const where = 'ring_listen';
  checkFields(obj, where, ['type', 'generation', 'position', 'size', 'group']);
  const size = int(obj, 'size', where, 1, 65536);
  return {
    type: MSG.RING_LISTEN,
    generation: int(obj, 'generation', where),
    position: int(obj, 'position', where, 0, size - 1),
    size,
    group: text(obj, 'group', where, 256),
  };
}

function parseRingConnect(obj: Obj): RingConnectMessage {
  const where = 'ring_connect';
  checkFields(obj, where, ['type', 'generation', 'urls', 'resume']);
  const urls = obj.urls;
  if (!Array.isArray(urls) || urls.length < 1 || urls.length > 65536) throw bad(`${where}.urls: expected an array of 1..65536 urls, got ${describe(urls)}`);
  urls.forEach((u, i) => {
    if (typeof u !== 'string' || u.length > 512 || !/^wss?:\/\/[^/\s]+/.test(u)) throw bad(`${where}.urls[${i}]: expected ws://HOST:PORT, got ${describe(u)}`);
  });
  return { type: MSG.RING_CONNECT, generation: int(obj, 'generation', where), urls: urls as string[], resume: int(obj, 'resume', where) };
}

function parseRingRun(obj: Obj): RingRunMessage {
  const where = 'ring_run';
  checkFields(obj, where, ['type', 'generation', 'from', 'until']);
  const from = int(obj, 'from', where);
  const until = int(obj, 'until', where);
  if (until <= from) throw bad(`${where}: until (${until}) must be greater than from (${from})`);
  return { type: MSG.RING_RUN, generation: int(obj, 'generation', where), from, until };
}

function parseFetch(obj: Obj): FetchMessage {
  checkFields(obj, 'fetch', ['type', 'request', 'steps', 'optimizer']);
  return { type: MSG.FETCH, request: int(obj, 'request', 'fetch'), steps: int(obj, 'steps', 'fetch'), optimizer: bool(obj, 'optimizer', 'fetch') };
}

function parseWork(obj: Obj, limits: WorkerInboundLimits): WorkMessage {
  const where = 'work';
  checkFields(obj, where, ['type', 'step', 'epoch', 'task', 'params', 'indices']);
  return {
    type: MSG.WORK,
    step: int(obj, 'step', where),
    epoch: int(obj, 'epoch', where),
    task: int(obj, 'task', where),
    params: float32s(obj, 'params', where, limits.paramCount),
    indices: uint32s(obj, 'indices', where, limits.trainCount, limits.trainCount),
  };
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
    case MSG.TRAIN_DATA:
      if (!limits) throw bad(`${obj.type}: received before welcome`);
      if (obj.type === MSG.PING) {
        checkFields(obj, 'ping', ['type', 'nonce']);
        return { type: MSG.PING, nonce: int(obj, 'nonce', 'ping', 0, MAX_U32) };
      }
      if (obj.type === MSG.TRAIN_DATA) return parseTrainData(obj, limits);
      checkMode(obj.type, false, limits.config, 'coordinator');
      return parseWork(obj, limits);
    case MSG.REPLICA:
    case MSG.RING_LISTEN:
    case MSG.RING_CONNECT:
    case MSG.RING_RUN:
    case MSG.RING_STOP:
    case MSG.FETCH:
      if (!limits) throw bad(`${obj.type}: received before welcome`);
      checkMode(obj.type, true, limits.config, 'coordinator');
      if (obj.type === MSG.REPLICA) return parseReplica(obj, limits);
      if (obj.type === MSG.RING_LISTEN) return parseRingListen(obj);
      if (obj.type === MSG.RING_CONNECT) return parseRingConnect(obj);
      if (obj.type === MSG.RING_RUN) return parseRingRun(obj);
      if (obj.type === MSG.RING_STOP) {
        checkFields(obj, 'ring_stop', ['type', 'generation']);
        return { type: MSG.RING_STOP, generation: int(obj, 'generation', 'ring_stop') };
      }
      return parseFetch(obj);
    default:
      throw bad(`message from coordinator: unknown type '${obj.type.slice(0, 40)}' (expected welcome, work, ping, done, error or a ring message)`);
  }
}
