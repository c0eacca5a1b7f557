import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import { createRng, type Rng } from '../../data/random.js';

/**
 * Helpers for checking wasm kernels against the tfjs cpu backend (the reference). Inputs are
 * plain arrays so that the same values go to both backends.
 */
export interface KernelInput {
  values: Float32Array;
  shape: number[];
}

/** A fresh seed per run (printed in failure messages so that a failure can be replayed). */
export function freshSeed(): number {
  return (Math.random() * 0x7fffffff) | 0;
}

export function randomInput(rng: Rng, shape: number[], map: (v: number) => number = (v) => v): KernelInput {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = map(rng.nextFloat() * 2 - 1);
  return { values, shape };
}

/** Runs one kernel on the named backend and returns its output values. */
export async function runOn(backend: 'cpu' | 'wasm', kernel: string, inputs: Record<string, KernelInput>, attrs: NamedAttrMap): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [name, input] of Object.entries(inputs)) tensors[name] = tf.tensor(input.values, input.shape, 'float32');
    const out = tf.engine().runKernel(kernel, tensors, attrs) as tf.Tensor;
    return { values: out.dataSync() as Float32Array, shape: out.shape };
  });
}

/**
 * Relative error as used by every kernel test: max|a - b| / max(1, max|b|), with b the cpu
 * reference. Any NaN or infinity in either array, or a length mismatch, makes it Infinity, so a
 * broken kernel can never pass.
 */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 1;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Infinity;
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return maxDiff / maxRef;
}

export { createRng };
export type { Rng };

/** Picks one element of a list. */
export function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.nextBelow(list.length)];
}
