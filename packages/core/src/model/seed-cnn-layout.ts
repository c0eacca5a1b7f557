/**
 * The seed CNN's parameters, in the one fixed order in which ddp flattens them into a Float32Array:
 * layer by layer, kernel then bias (Keras' own `model.weights` order), each tensor row-major.
 * Conv kernels are [kh, kw, inChannels, outChannels] (NHWC, as tfjs and Keras store them).
 */
export interface ParamSpec {
  /** Keras-style weight name, as written in model.json. */
  name: string;
  shape: number[];
  /** Offset of the first element in the flat vector. */
  offset: number;
  size: number;
  /** For kernels: the fan-in and fan-out used by glorot_uniform; biases start at zero. */
  fan?: { in: number; out: number };
}

const conv = (k: number, cin: number, cout: number) => ({
  kernel: [k, k, cin, cout],
  bias: [cout],
  fan: { in: k * k * cin, out: k * k * cout },
});
const dense = (nin: number, nout: number) => ({ kernel: [nin, nout], bias: [nout], fan: { in: nin, out: nout } });

const LAYERS: Array<[string, { kernel: number[]; bias: number[]; fan: { in: number; out: number } }]> = [
  ['conv2d', conv(3, 1, 32)],
  ['conv2d_1', conv(3, 32, 64)],
  ['conv2d_2', conv(3, 64, 64)],
  ['dense', dense(576, 64)],
  ['dense_1', dense(64, 10)],
];

function buildSpecs(): ParamSpec[] {
  const specs: ParamSpec[] = [];
  let offset = 0;
  for (const [layer, s] of LAYERS) {
    for (const [kind, shape] of [['kernel', s.kernel], ['bias', s.bias]] as const) {
      const size = shape.reduce((a, b) => a * b, 1);
      specs.push({ name: `${layer}/${kind}`, shape: [...shape], offset, size, fan: kind === 'kernel' ? s.fan : undefined });
      offset += size;
    }
  }
  return specs;
}

export const SEED_CNN_PARAMS: readonly ParamSpec[] = buildSpecs();
export const SEED_CNN_PARAM_COUNT: number = SEED_CNN_PARAMS.reduce((n, p) => n + p.size, 0);
export const IMAGE_SIZE = 28;
export const NUM_CLASSES = 10;
