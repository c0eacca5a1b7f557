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

/**
 * Adam over flat Float32Arrays, with Keras' defaults and update rule (bias correction folded
 * into the step size, epsilon added to sqrt(v)):
 *   lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  w -= lr_t m / (sqrt(v) + epsilon)
 * Plain JavaScript arithmetic, so every replica that applies the same gradient gets the same bits.
 */
export class Adam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  private t = 0;
  private readonly m: Float32Array;
  private readonly v: Float32Array;

  constructor(readonly size: number, opts: AdamOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-7;
    if (!(this.lr > 0) || !Number.isFinite(this.lr)) throw new RangeError(`Adam: lr must be a positive number, got ${opts.lr}`);
    for (const [k, b] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new RangeError(`Adam: ${k} must be in [0, 1), got ${b}`);
    }
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  get steps(): number {
    return this.t;
  }

  /** Applies one step in place: `params -= update(grad)`. */
  step(params: Float32Array, grad: Float32Array): void {
    if (params.length !== this.size || grad.length !== this.size) {
      throw new RangeError(`Adam: expected vectors of ${this.size}, got params ${params.length} and grad ${grad.length}`);
    }
    this.t += 1;
    const { beta1: b1, beta2: b2, epsilon: eps, m, v } = this;
    const lrT = (this.lr * Math.sqrt(1 - b2 ** this.t)) / (1 - b1 ** this.t);
    const c1 = 1 - b1;
    const c2 = 1 - b2;
    for (let i = 0; i < params.length; i++) {
      const g = grad[i];
      const mi = b1 * m[i] + c1 * g;
      const vi = b2 * v[i] + c2 * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] -= (lrT * m[i]) / (Math.sqrt(v[i]) + eps);
    }
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
