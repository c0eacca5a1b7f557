import { lazyRoutine } from './simd-routine.js';
import type { WasmMemory } from './wasm-backend.js';

/**
 * The filter gradient of a convolution with a small patch (kh*kw*in values, e.g. a first layer on
 * one-channel images), computed directly in WebAssembly SIMD (wat/simd-small-patch-filter-grad.wat)
 * on the tfjs heap:
 *   dW[t, o] = sum over (b, p, q) of x[b, p*sh + y_t, q*sw + x_t, i_t] * dy[b, p, q, o]
 * Output channels go in groups of 4 * GROUP_VECTORS; along each output row, up to 4 taps x one
 * group of dW stay in SIMD registers. XNNPACK has no good shape for this product (its reduction
 * runs over all n*oh*ow positions while the patch is tiny), so the matrix-product routes spend more
 * time packing operands than multiplying. Valid padding only; out-channels a multiple of
 * 4 * GROUP_VECTORS. Accumulates in float32 along the positions, like XNNPACK's products.
 * x, dy and dw are byte addresses.
 */
export type SmallPatchFilterGrad = (
  x: number, dy: number, dw: number, n: number, h: number, w: number,
  oh: number, ow: number, outChannels: number, sh: number, sw: number,
) => void;

/** Output channels per group, in vectors of 4: 2 x 4 = 8 channels (fixed in the .wat). */
export const GROUP_VECTORS = 2;

/** The routine itself takes the patch shape as its last arguments. */
type FilterGrad = (...args: [...Parameters<SmallPatchFilterGrad>, kh: number, kw: number, ci: number]) => void;

const filterGrad = lazyRoutine<FilterGrad>('simd-small-patch-filter-grad', 'filterGrad');

/** The routine for a (kh, kw, in) patch, bound to a heap; null where the engine has no wasm SIMD. */
export function simdSmallPatchFilterGrad(kh: number, kw: number, ci: number): (memory: WasmMemory) => SmallPatchFilterGrad | null {
  return (memory) => {
    const routine = filterGrad(memory);
    if (routine === null) return null;
    return (x, dy, dw, n, h, w, oh, ow, co, sh, sw) => routine(x, dy, dw, n, h, w, oh, ow, co, sh, sw, kh, kw, ci);
  };
}
