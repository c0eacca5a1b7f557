import { lazyRoutine } from './simd-routine.js';

/**
 * The relu-and-bias backward pass in WebAssembly SIMD (wat/simd-relu-bias-grad.wat) on the tfjs
 * heap: out = dy * step(y) and, per image, the float32 sum of out over its pixels into
 * partial [images, c]. One pass over dy and y instead of tfjs' Step, Cast, Multiply and Sum.
 * Channels must be a multiple of 4 (pixelBytes = 4 * c); the caller checks. Addresses in bytes.
 */
export type ReluBiasGrad = (dy: number, y: number, out: number, partial: number, images: number, pixels: number, pixelBytes: number) => void;

/** The routine bound to a heap, or null where the engine has no wasm SIMD. */
export const simdReluBiasGrad = lazyRoutine<ReluBiasGrad>('simd-relu-bias-grad', 'reluBiasGrad');
