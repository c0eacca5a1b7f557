export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export interface AdamState {
  t: number;
  m: Float32Array;
  v: Float32Array;
}

/** Weights and Adam's two moments, as one set of buffers. */
export interface AdamBuffers {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export function adamHyper(opts: AdamOptions = {}): AdamHyper {
  const h = { lr: opts.lr ?? 1e-3, beta1: opts.beta1 ?? 0.9, beta2: opts.beta2 ?? 0.999, epsilon: opts.epsilon ?? 1e-7 };
  if (!(h.lr > 0) || !Number.isFinite(h.lr)) throw new RangeError(`Adam: lr must be a positive number, got ${opts.lr}`);
  for (const [k, b] of [['beta1', h.beta1], ['beta2', h.beta2]] as const) {
    if (!(b >= 0 && b < 1)) throw new RangeError(`Adam: ${k} must be in [0, 1), got ${b}`);
  }
  return h;
}

/**
 * THE Adam update, the one every mode uses (the coordinator in star mode, each replica in ring
 * mode, one process), with Keras' rule (bias correction folded into the step size, epsilon added
 * to sqrt(v)):
 *   g = fround(sum / divisor)   (the gradient of the mean loss, rounded to float32 once)
 *   lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  w -= lr_t m / (sqrt(v) + epsilon)
 * m and v are rounded to float32 as they are stored and the update is computed from the stored
 * values, in plain JavaScript arithmetic, so every replica that applies the same sum gets the same
 * bits. Reads `from`, writes `to` (the same buffers for an update in place; distinct ones let a
 * replica keep the state before the step), over [start, end) (default: all; ranges of one step
 * may be applied in any order, each element depends only on its own index). One pass also checks
 * that every g is finite: returns false when one is not (`to` is then garbage and must not be used).
 */
export function adamStep(from: AdamBuffers, to: AdamBuffers, sum: ArrayLike<number>, divisor: number, t: number, h: AdamHyper, start = 0, end = from.params.length): boolean {
  const n = from.params.length;
  if (sum.length !== n || to.params.length !== n || from.m.length !== n || from.v.length !== n) {
    throw new RangeError(`Adam: a gradient of ${sum.length} values for ${n} weights`);
  }
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n)) {
    throw new RangeError(`Adam: range [${start}, ${end}) is not within [0, ${n})`);
  }
  const { params, m, v } = from;
  const { params: np, m: nm, v: nv } = to;
  const lrT = (h.lr * Math.sqrt(1 - h.beta2 ** t)) / (1 - h.beta1 ** t);
  const b1 = h.beta1;
  const b2 = h.beta2;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const eps = h.epsilon;
  let poison = 0; // stays 0 while every value is finite (x - x is NaN for NaN and Infinity)
  for (let i = start; i < end; i++) {
    const g = Math.fround(sum[i]! / divisor);
    poison += g - g;
    const mi = Math.fround(b1 * m[i]! + c1 * g);
    const vi = Math.fround(b2 * v[i]! + c2 * g * g);
    nm[i] = mi;
    nv[i] = vi;
    np[i] = params[i]! - (lrT * mi) / (Math.sqrt(vi) + eps);
  }
  return poison === 0;
}

/** The gradient holds a value that is not finite: nothing was applied. */
export class NonFiniteGradient extends Error {
  constructor(
    readonly index: number,
    readonly value: number,
  ) {
    super(`the reduced gradient sum is ${value} at index ${index}`);
    this.name = 'NonFiniteGradient';
  }
}

/** Throws NonFiniteGradient naming the first value of `sum` that is not finite. */
export function throwNonFinite(sum: ArrayLike<number>): never {
  for (let i = 0; i < sum.length; i++) if (!Number.isFinite(sum[i]!)) throw new NonFiniteGradient(i, sum[i]!);
  throw new NonFiniteGradient(-1, NaN);
}

/** Adam over flat Float32Arrays, updating the weights in place (adamStep with one set of buffers). */
export class Adam {
  readonly hyper: AdamHyper;
  private t = 0;
  private readonly m: Float32Array;
  private readonly v: Float32Array;

  constructor(readonly size: number, opts: AdamOptions = {}) {
    this.hyper = adamHyper(opts);
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  get lr(): number {
    return this.hyper.lr;
  }

  get steps(): number {
    return this.t;
  }

  /** Applies one step in place: `params -= update(grad)`. */
  step(params: Float32Array, grad: Float32Array): void {
    this.stepFromSum(params, grad, 1);
  }

  /**
   * One step from a gradient SUM over `divisor` samples (float32, or float64): the mean is
   * rounded to float32 once. Throws NonFiniteGradient, applying nothing,
   * when the sum holds NaN or Infinity.
   */
  stepFromSum(params: Float32Array, sum: Float32Array | Float64Array, divisor: number): void {
    if (params.length !== this.size || sum.length !== this.size) {
      throw new RangeError(`Adam: expected vectors of ${this.size}, got params ${params.length} and grad ${sum.length}`);
    }
    // Check first: the update is in place, so a poisoned pass could not be undone.
    for (let i = 0; i < sum.length; i++) if (!Number.isFinite(sum[i]!)) throwNonFinite(sum);
    const buf = { params, m: this.m, v: this.v };
    adamStep(buf, buf, sum, divisor, this.t + 1, this.hyper);
    this.t += 1;
  }

  state(): AdamState {
    return { t: this.t, m: this.m.slice(), v: this.v.slice() };
  }

  load(state: AdamState): void {
    if (state.m.length !== this.size || state.v.length !== this.size) throw new RangeError('Adam: state size mismatch');
    this.t = state.t;
    this.m.set(state.m);
    this.v.set(state.v);
  }
}
