import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { simdReluBiasGrad } from './simd-relu-bias-grad.js';
import { disposeTemps, f32Index, heapF32, makeF32, sizeOf, wasmKernelConfig, wasmMemory, type WasmBackend } from './wasm-backend.js';

/**
 * ddp's own kernel (no tfjs kernel has this name): the backward pass of y = relu(z + bias) down to
 * z, for a layer whose last axis holds the channels. Inputs dy and y ([n, ..., c], float32);
 * outputs [dz, dbias]: dz = dy * step(y) (tfjs' relu gradient, NaN included) and dbias = the sum
 * of dz over every axis but the last. model/fused-layers.ts calls it where it is registered and
 * composes the same from tfjs ops elsewhere.
 */
export const RELU_BIAS_GRAD = 'DdpReluBiasGrad';

export function reluBiasGrad(args: { inputs: { dy?: TensorInfo; y?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo[] {
  const { backend } = args;
  const { dy, y } = args.inputs;
  if (dy === undefined || y === undefined) throw new Error(`ddp wasm kernel ${RELU_BIAS_GRAD}: needs inputs dy and y`);
  if (dy.dtype !== 'float32' || y.dtype !== 'float32' || dy.shape.join() !== y.shape.join() || dy.shape.length < 2) {
    throw new Error(`ddp wasm kernel ${RELU_BIAS_GRAD}: dy and y must be float32 of one shape of rank >= 2, got ${dy.dtype} [${dy.shape}] and ${y.dtype} [${y.shape}]`);
  }
  const c = dy.shape[dy.shape.length - 1];
  const images = dy.shape[0];
  const pixels = sizeOf(dy.shape.slice(1, -1));
  const dz = makeF32(backend, [...dy.shape]);
  const partial = makeF32(backend, [images, c]);
  const memory = wasmMemory(backend);
  const simd = memory !== undefined && c % 4 === 0 ? simdReluBiasGrad(memory) : null;
  if (simd) {
    simd(f32Index(backend, dy) * 4, f32Index(backend, y) * 4, f32Index(backend, dz) * 4, f32Index(backend, partial) * 4, images, pixels, c * 4);
  } else {
    // The same arithmetic in JS (float32 at each step): for channel counts the routine does not take.
    const heap = heapF32(backend);
    const g = f32Index(backend, dy);
    const s = f32Index(backend, y);
    const o = f32Index(backend, dz);
    const p = f32Index(backend, partial);
    const run = new Float32Array(c);
    for (let b = 0, at = 0; b < images; b++) {
      run.fill(0);
      for (let q = 0; q < pixels; q++, at += c) {
        for (let i = 0; i < c; i++) {
          const yv = heap[s + at + i]!;
          const v = Math.fround(heap[g + at + i]! * (yv > 0 ? 1 : yv !== yv ? yv : 0));
          heap[o + at + i] = v;
          run[i] = Math.fround(run[i]! + v);
        }
      }
      heap.set(run, p + b * c);
    }
  }
  // The images' partial sums, added in float64 and rounded once.
  const db = makeF32(backend, [c]);
  const acc = new Float64Array(c);
  const heap = heapF32(backend);
  const p = f32Index(backend, partial);
  for (let b = 0; b < images; b++) for (let i = 0; i < c; i++) acc[i] += heap[p + b * c + i]!;
  heap.set(acc, f32Index(backend, db));
  disposeTemps(backend, partial);
  return [dz, db];
}

export const reluBiasGradConfig = wasmKernelConfig(RELU_BIAS_GRAD, reluBiasGrad as unknown as (args: never) => TensorInfo);
