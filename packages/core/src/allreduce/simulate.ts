/**
 * An alpha-beta cost model of one allreduce, for predicting clusters larger than the one at
 * hand. A message of b bytes over one link costs alpha + b / beta, where alpha is
 * `net.latencySec` and beta is `net.bandwidthBytesPerSec` (per NIC and direction, full duplex).
 * `bytes` is the size of the vector each worker contributes (after any compression).
 *
 * Star, as ddp runs it: the root is the coordinator, outside the N workers. All N vectors
 * come in through the root's one NIC, one after another, then the N results go out the same way:
 *     T_star = 2 * alpha + 2 * N * bytes / beta
 * (the N latencies of each phase overlap; the bytes do not). A worker acting as root would
 * move N-1 vectors instead of N.
 *
 * Ring: 2(N-1) steps (N-1 reduce-scatter, N-1 all-gather), each sending one chunk of bytes/N
 * on every link at once:
 *     T_ring = 2 (N-1) * alpha + 2 (N-1)/N * bytes / beta          (0 for N = 1)
 *
 * Reported bandwidths follow NCCL-tests (doc/PERFORMANCE.md): algbw = bytes / time, and for
 * allreduce busbw = algbw * 2(N-1)/N, which for a bandwidth-optimal algorithm approaches the
 * link bandwidth and so can be compared across N (a ring with alpha = 0 has busbw = beta).
 */
export type AllreduceAlgorithm = 'star' | 'ring';

export interface NetworkModel {
  /** alpha: seconds per message, independent of size. */
  latencySec: number;
  /** beta: bytes per second one NIC moves in one direction. */
  bandwidthBytesPerSec: number;
}

export interface StepModelInput {
  /** Seconds one worker spends computing its gradient for one step (per-worker batch fixed). */
  computeSec: number;
  workers: number;
  /** Bytes of the gradient vector each worker contributes. */
  bytes: number;
  net: NetworkModel;
  algo: AllreduceAlgorithm;
}

export interface StepPrediction {
  /** computeSec + commSec: the gradient is sent as one fused message after the backward pass, so they do not overlap. */
  stepSec: number;
  commSec: number;
  /**
   * Weak-scaling efficiency computeSec / stepSec: the throughput of N workers over N times
   * that of one worker that does not communicate.
   */
  efficiency: number;
}

function check(caller: string, name: string, value: number, ok: boolean, expected: string): void {
  if (typeof value !== 'number' || !ok) throw new RangeError(`${caller}: ${name} must be ${expected}, got ${value}`);
}

function checkModel(caller: string, algo: AllreduceAlgorithm, workers: number, bytes: number, net: NetworkModel): void {
  if (algo !== 'star' && algo !== 'ring') throw new RangeError(`${caller}: algo must be 'star' or 'ring', got ${JSON.stringify(algo)}`);
  check(caller, 'workers', workers, Number.isInteger(workers) && workers >= 1, 'an integer >= 1');
  check(caller, 'bytes', bytes, Number.isFinite(bytes) && bytes >= 0, 'a finite number >= 0');
  if (typeof net !== 'object' || net === null) throw new TypeError(`${caller}: net must be {latencySec, bandwidthBytesPerSec}, got ${net}`);
  check(caller, 'net.latencySec', net.latencySec, Number.isFinite(net.latencySec) && net.latencySec >= 0, 'a finite number >= 0');
  check(caller, 'net.bandwidthBytesPerSec', net.bandwidthBytesPerSec, net.bandwidthBytesPerSec > 0, 'a number > 0');
}

/** Predicted seconds for one allreduce of `bytes` per worker over `workers` workers (formulas above). */
export function predictAllreduceSeconds(algo: AllreduceAlgorithm, workers: number, bytes: number, net: NetworkModel): number {
  checkModel('predictAllreduceSeconds', algo, workers, bytes, net);
  const alpha = net.latencySec;
  const beta = net.bandwidthBytesPerSec;
  const n = workers;
  if (algo === 'star') return 2 * alpha + (2 * n * bytes) / beta;
  if (n === 1) return 0;
  return 2 * (n - 1) * alpha + ((2 * (n - 1)) / n) * (bytes / beta);
}

/** Predicted duration and efficiency of one data-parallel step (compute, then allreduce). */
export function predictStep(input: StepModelInput): StepPrediction {
  const { computeSec, workers, bytes, net, algo } = input;
  check('predictStep', 'computeSec', computeSec, Number.isFinite(computeSec) && computeSec >= 0, 'a finite number >= 0');
  checkModel('predictStep', algo, workers, bytes, net);
  const commSec = predictAllreduceSeconds(algo, workers, bytes, net);
  const stepSec = computeSec + commSec;
  return { stepSec, commSec, efficiency: stepSec === 0 ? 1 : computeSec / stepSec };
}

/** NCCL-tests algorithm bandwidth: bytes per worker over the time of the operation. */
export function algBandwidth(bytes: number, seconds: number): number {
  check('algBandwidth', 'bytes', bytes, Number.isFinite(bytes) && bytes >= 0, 'a finite number >= 0');
  check('algBandwidth', 'seconds', seconds, Number.isFinite(seconds) && seconds > 0, 'a finite number > 0');
  return bytes / seconds;
}

/** NCCL-tests bus bandwidth of an allreduce: algbw * 2(N-1)/N (0 for one worker: nothing moves). */
export function busBandwidth(bytes: number, seconds: number, workers: number): number {
  check('busBandwidth', 'workers', workers, Number.isInteger(workers) && workers >= 1, 'an integer >= 1');
  return (algBandwidth(bytes, seconds) * 2 * (workers - 1)) / workers;
}
