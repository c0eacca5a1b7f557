import { lazyRoutine } from './simd-routine.js';

/**
 * col2im in WebAssembly SIMD (wat/simd-col2im.wat) on the tfjs heap: adds the patch gradients
 * cols [n, oh, ow, kh, kw, in] into dx [n, h, w, in] (which the caller zero-fills), skipping taps
 * that fall on padding. Four channels per instruction; the JS loop it replaces cost ~4 ms for the
 * seed CNN's second layer, enough to make the convolution route faster there.
 * Channels (in) must be a multiple of 4; the caller checks. cols and dx are byte addresses;
 * pixelBytes is 4 * in.
 */
export type Col2im = (
  cols: number, dx: number, n: number, h: number, w: number, pixelBytes: number,
  oh: number, ow: number, kh: number, kw: number, sh: number, sw: number, top: number, left: number,
) => void;

/** The routine bound to a heap, or null where the engine has no wasm SIMD. */
export const simdCol2im = lazyRoutine<Col2im>('simd-col2im', 'col2im');
