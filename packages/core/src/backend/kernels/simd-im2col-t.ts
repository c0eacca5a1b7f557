import { lazyRoutine } from './simd-routine.js';

/**
 * Transposed im2col in WebAssembly SIMD (wat/simd-im2col-t.wat) on the tfjs heap: colsT [T*in, M]
 * with colsT[(t*in + c), m] = x at byte base[m] + taps[t], channel c. M and in must be multiples of 4
 * and every window inside x; the caller checks. Addresses in bytes; pixelBytes = 4 * in.
 */
export type Im2colT = (x: number, base: number, taps: number, out: number, m: number, t: number, pixelBytes: number) => void;

/** The routine bound to a heap, or null where the engine has no wasm SIMD. */
export const simdIm2colT = lazyRoutine<Im2colT>('simd-im2col-t', 'im2colT');
