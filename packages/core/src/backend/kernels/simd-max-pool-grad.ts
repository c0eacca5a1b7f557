import { lazyRoutine } from './simd-routine.js';

/**
 * A 2x2, stride-2 MaxPoolGrad written directly in WebAssembly SIMD (wat/simd-max-pool-grad.wat),
 * running on the tfjs wasm backend's own memory (imported, so it reads x and dy and writes dx in
 * place, with no copies).
 *
 * Why: the JS loop spends most of its time in mispredicted branches (which of four values is the
 * first maximum is random): ~6 ms for the seed CNN's first pool at batch 64, against ~0.5 ms here.
 * f32x4 compares and bit selects have no data-dependent branches and do four channels at a time.
 *
 * Semantics, as the tfjs cpu kernel: each window's dy goes to its first maximum in row-major order
 * (strict '>', so -0 and +0 tie). A window holding a NaN, or only -Infinity, is where the rules get
 * subtle; the function reports such windows (returns 1) and the caller redoes the whole tensor
 * with the careful JS loop. Windows must not overlap and must lie inside the image (2x2, stride 2,
 * no padding before); channels must be a multiple of 4. The caller checks all that.
 * Arguments: byte addresses of one image's x, dy and dx; then oh, ow, bytes per pixel (4 * channels)
 * and bytes per input row.
 */
export type MaxPoolGrad2x2 = (x: number, dy: number, dx: number, oh: number, ow: number, pixelBytes: number, rowBytes: number) => number;

/** The routine bound to a heap, or null where the engine has no wasm SIMD. */
export const simdMaxPoolGrad2x2 = lazyRoutine<MaxPoolGrad2x2>('simd-max-pool-grad', 'maxPoolGrad2x2');
