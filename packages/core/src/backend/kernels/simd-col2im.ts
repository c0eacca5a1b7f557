import { forLoop, lazyRoutine, op } from './wasm-assembler.js';

/**
 * col2im in WebAssembly SIMD on the tfjs heap: adds the patch gradients cols [n, oh, ow, kh, kw, in]
 * into dx [n, h, w, in] (which the caller zero-fills), skipping taps that fall on padding. Four
 * channels per instruction; the JS loop it replaces cost ~4 ms for the seed CNN's second layer,
 * enough to make the convolution route faster there.
 * Channels (in) must be a multiple of 4; the caller checks.
 */
export type Col2im = (
  cols: number, dx: number, n: number, h: number, w: number, pixelBytes: number,
  oh: number, ow: number, kh: number, kw: number, sh: number, sw: number, top: number, left: number,
) => void;

const COLS = 0;
const DX = 1;
const N = 2;
const H = 3;
const W = 4;
const CB = 5; // bytes per dx pixel (4 * in, a multiple of 16)
const OH = 6;
const OW = 7;
const KH = 8;
const KW = 9;
const SH = 10;
const SW = 11;
const TOP = 12;
const LEFT = 13;
const B = 14;
const P = 15;
const Q = 16;
const Y = 17;
const X = 18;
const I = 19;
const ROW = 20;
const COL = 21;
const SRC = 22; // walks cols in order
const DST = 23;

function code(): number[] {
  const addChannels = forLoop(I, CB, op.i32Const(16), [
    ...op.get(DST), ...op.get(I), ...op.i32Add,
    ...op.get(DST), ...op.get(I), ...op.i32Add, ...op.load,
    ...op.get(SRC), ...op.get(I), ...op.i32Add, ...op.load,
    ...op.f32x4Add, ...op.store,
  ]);
  const tap = [
    // col = q*sw + x - left; taps outside the image (unsigned compare catches negatives) are skipped.
    ...op.get(Q), ...op.get(SW), ...op.i32Mul, ...op.get(X), ...op.i32Add, ...op.get(LEFT), ...op.i32Sub, ...op.set(COL),
    ...op.get(ROW), ...op.get(H), ...op.i32LtU, ...op.get(COL), ...op.get(W), ...op.i32LtU, ...op.i32And,
    ...op.if,
    // dst = dx + ((b*h + row)*w + col) * pixelBytes
    ...op.get(DX),
    ...op.get(B), ...op.get(H), ...op.i32Mul, ...op.get(ROW), ...op.i32Add, ...op.get(W), ...op.i32Mul,
    ...op.get(COL), ...op.i32Add, ...op.get(CB), ...op.i32Mul, ...op.i32Add, ...op.set(DST),
    ...addChannels,
    ...op.end,
    ...op.get(SRC), ...op.get(CB), ...op.i32Add, ...op.set(SRC),
  ];
  const tapRow = [
    ...op.get(P), ...op.get(SH), ...op.i32Mul, ...op.get(Y), ...op.i32Add, ...op.get(TOP), ...op.i32Sub, ...op.set(ROW),
    ...forLoop(X, KW, op.i32Const(1), tap),
  ];
  return [
    ...op.get(COLS), ...op.set(SRC),
    ...forLoop(B, N, op.i32Const(1),
      forLoop(P, OH, op.i32Const(1),
        forLoop(Q, OW, op.i32Const(1),
          forLoop(Y, KH, op.i32Const(1), tapRow)))),
  ];
}

/** The routine bound to a heap, or null where the engine has no wasm SIMD. */
export const simdCol2im = lazyRoutine<Col2im>(() => ({
  exportName: 'col2im',
  params: 14,
  i32Locals: DST - B + 1,
  v128Locals: 0,
  returnsI32: false,
  code: code(),
}));
