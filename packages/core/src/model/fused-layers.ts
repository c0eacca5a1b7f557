import * as tf from '@tensorflow/tfjs-core';
import { RELU_BIAS_GRAD } from '../backend/kernels/ReluBiasGrad.js';

/**
 * The seed CNN's two layer kinds, y = relu(conv2d(x, filter) + bias) and y = relu(x W + bias), as
 * single ops with their own gradient.
 *
 * Why: under a gradient tape tfjs un-fuses tf.fused.conv2d / tf.fused.matMul with a relu (its
 * shouldFuse), so a training step ran a convolution, an Add for the bias and a Relu forward, and a
 * Step, a Cast, a Multiply and a Sum backward, each a pass over the activations. Here the forward is
 * one FusedConv2D / _FusedMatMul kernel (XNNPACK adds the bias and clamps in its output stage) and the
 * backward is one pass (ddp's DdpReluBiasGrad kernel on wasm) that masks dy and sums the bias
 * gradient, then the two convolution gradients. Measured in `ddp bench step` (fused / unfused).
 *
 * The forward values are the bits of tf.fused.* outside a tape (the same kernels), so evaluation is
 * unchanged. The gradient is tfjs' relu gradient dy * step(y) (NaN passes through), on any backend:
 * where DdpReluBiasGrad is not registered (cpu, tfjs-node) it is composed from tfjs ops.
 *
 * The layer input of the first convolution is the images, which need no gradient: pass it with
 * `inputGrad: false` and its (costly) input gradient is never computed.
 */

/** When false, the layers are the plain composition (conv2d, add, relu) tfjs would tape: for the step benchmark's before/after. */
let fusion = true;

/** Turns the fused layers on (the default) or off; returns the previous setting. For benchmarks. */
export function setLayerFusion(on: boolean): boolean {
  const was = fusion;
  fusion = on;
  return was;
}

export function layerFusion(): boolean {
  return fusion;
}

/** [dz, dbias] of y = relu(z + bias): dz = dy * step(y), dbias = dz summed over all axes but the last. */
export function reluBiasGrad(dy: tf.Tensor, y: tf.Tensor): [tf.Tensor, tf.Tensor1D] {
  if (tf.getKernel(RELU_BIAS_GRAD, tf.getBackend()) !== undefined) {
    const [dz, db] = tf.engine().runKernel(RELU_BIAS_GRAD, { dy, y }, {}) as tf.Tensor[];
    return [dz!, db as tf.Tensor1D];
  }
  const dz = tf.mul(dy, tf.step(y));
  return [dz, tf.sum(dz, [...Array(dy.rank - 1).keys()]) as tf.Tensor1D];
}

const CONV_ATTRS = { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] } as const;

/** relu(conv2d(x, filter, stride 1, valid) + bias), NHWC. */
export function conv2dBiasRelu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, opts: { inputGrad?: boolean } = {}): tf.Tensor4D {
  if (!fusion) return tf.relu(tf.add(tf.conv2d(x, filter, 1, 'valid'), bias)) as tf.Tensor4D;
  const forward = (input: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const y = tf.engine().runKernel('FusedConv2D', { x: input, filter: w, bias: b }, { ...CONV_ATTRS, activation: 'relu' }) as tf.Tensor4D;
    save([input, w, y]);
    return y;
  };
  const backward = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [input, w, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const [dz, db] = reluBiasGrad(dy, y);
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: input, dy: dz }, { ...CONV_ATTRS, filterShape: w.shape }) as tf.Tensor4D;
    return { dz, dw, db };
  };
  if (opts.inputGrad === false) {
    // x is a constant of the closure, not an input of the op: the tape asks for no gradient of it.
    const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
      value: forward(x, args[0] as tf.Tensor4D, args[1] as tf.Tensor1D, args[2] as tf.GradSaveFunc),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const { dw, db } = backward(dy, saved);
        return [dw, db];
      },
    }));
    return op(filter, bias) as tf.Tensor4D;
  }
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: forward(args[0] as tf.Tensor4D, args[1] as tf.Tensor4D, args[2] as tf.Tensor1D, args[3] as tf.GradSaveFunc),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const { dz, dw, db } = backward(dy, saved);
      const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy: dz, filter: saved[1]! }, { ...CONV_ATTRS, inputShape: saved[0]!.shape }) as tf.Tensor4D;
      return [dx, dw, db];
    },
  }));
  return op(x, filter, bias) as tf.Tensor4D;
}

/** relu(x W + bias) for x [n, k], W [k, m]. */
export function denseBiasRelu(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  if (!fusion) return tf.relu(tf.add(tf.matMul(x, w), bias)) as tf.Tensor2D;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [a, b, c, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    // The kernel takes batched (rank-3) operands, as tf.fused.matMul passes them.
    const [n, k] = a.shape;
    const m = b.shape[1];
    const a3 = tf.reshape(a, [1, n, k]);
    const b3 = tf.reshape(b, [1, k, m]);
    const y = tf.reshape(tf.engine().runKernel('_FusedMatMul', { a: a3, b: b3, bias: c }, { transposeA: false, transposeB: false, activation: 'relu' }) as tf.Tensor3D, [n, m]) as tf.Tensor2D;
    save([a, b, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [input, weights, out] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const [dz, db] = reluBiasGrad(dy, out);
        return [tf.matMul(dz as tf.Tensor2D, weights, false, true), tf.matMul(input, dz as tf.Tensor2D, true, false), db];
      },
    };
  });
  return op(x, w, bias) as tf.Tensor2D;
}
