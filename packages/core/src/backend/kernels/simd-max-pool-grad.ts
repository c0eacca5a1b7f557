import { forLoop, lazyRoutine, op } from './wasm-assembler.js';

/**
 * A 2x2, stride-2 MaxPoolGrad written directly in WebAssembly SIMD, running on the tfjs wasm
 * backend's own memory (imported, so it reads x and dy and writes dx in place, with no copies).
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
 */
export type MaxPoolGrad2x2 = (x: number, dy: number, dx: number, oh: number, ow: number, pixelBytes: number, rowBytes: number) => number;

// Locals: parameters first (byte addresses of one image's x, dy, dx; sizes).
const X = 0;
const DY = 1;
const DX = 2;
const OH = 3;
const OW = 4;
const CB = 5; // bytes per pixel (4 * channels, a multiple of 16)
const RB = 6; // bytes per input row
const PY = 7;
const PX = 8;
const D = 9;
const XW = 10; // the window's top-left x address + d
const GP = 11; // the dy pixel's address
const OFF = 12; // dx address - x address
const A = 13; // v128 from here on
const P = 14;
const Q = 15;
const R = 16;
const S1 = 17;
const S2 = 18;
const S3 = 19;
const M01 = 20;
const M23 = 21;
const G = 22;
const BAD = 23;
const NEG_INF = 24;

function code(): number[] {
  const load = (addr: number[]) => [...addr, ...op.load];
  const store = (addr: number[], value: number[]) => [...addr, ...value, ...op.store];
  const x = (extra: number[]) => [...op.get(XW), ...extra];
  const dx = (extra: number[]) => [...op.get(XW), ...op.get(OFF), ...op.i32Add, ...extra];
  const plus = (local: number) => [...op.get(local), ...op.i32Add];
  const isNum = (v: number) => [...op.get(v), ...op.get(v), ...op.f32x4Eq];
  const channels = [
    // xw = x + py*2*rowBytes + px*2*pixelBytes + d
    ...op.get(X),
    ...op.get(PY), ...op.get(RB), ...op.i32Mul, ...op.i32Const(2), ...op.i32Mul, ...op.i32Add,
    ...op.get(PX), ...op.get(CB), ...op.i32Mul, ...op.i32Const(2), ...op.i32Mul, ...op.i32Add,
    ...op.get(D), ...op.i32Add, ...op.set(XW),
    ...load(x([])), ...op.set(A),
    ...load(x(plus(CB))), ...op.set(P),
    ...load(x(plus(RB))), ...op.set(Q),
    ...load(x([...plus(RB), ...plus(CB)])), ...op.set(R),
    ...load([...op.get(GP), ...op.get(D), ...op.i32Add]), ...op.set(G),
    // s1 = p > a, s2 = r > q, s3 = max(q, r) > max(a, p): a tie keeps the earlier position.
    ...op.get(P), ...op.get(A), ...op.f32x4Gt, ...op.set(S1),
    ...op.get(R), ...op.get(Q), ...op.f32x4Gt, ...op.set(S2),
    ...op.get(P), ...op.get(A), ...op.get(S1), ...op.bitselect, ...op.set(M01),
    ...op.get(R), ...op.get(Q), ...op.get(S2), ...op.bitselect, ...op.set(M23),
    ...op.get(M23), ...op.get(M01), ...op.f32x4Gt, ...op.set(S3),
    // bad |= any NaN | (max == -Infinity)
    ...op.get(BAD),
    ...isNum(A), ...isNum(P), ...op.and, ...isNum(Q), ...isNum(R), ...op.and, ...op.and, ...op.not,
    ...op.get(M23), ...op.get(M01), ...op.get(S3), ...op.bitselect, ...op.get(NEG_INF), ...op.f32x4Eq,
    ...op.or, ...op.or, ...op.set(BAD),
    // Each position's dx: g where it is the first maximum, +0 elsewhere.
    ...store(dx([]), [...op.get(G), ...op.get(S1), ...op.not, ...op.get(S3), ...op.andNot, ...op.and]),
    ...store(dx(plus(CB)), [...op.get(G), ...op.get(S1), ...op.get(S3), ...op.andNot, ...op.and]),
    ...store(dx(plus(RB)), [...op.get(G), ...op.get(S3), ...op.get(S2), ...op.andNot, ...op.and]),
    ...store(dx([...plus(RB), ...plus(CB)]), [...op.get(G), ...op.get(S3), ...op.get(S2), ...op.and, ...op.and]),
  ];
  const pixel = [
    ...forLoop(D, CB, op.i32Const(16), channels),
    ...op.get(GP), ...op.get(CB), ...op.i32Add, ...op.set(GP),
  ];
  return [
    ...op.f32ConstNegInf, ...op.f32x4Splat, ...op.set(NEG_INF),
    ...op.get(DX), ...op.get(X), ...op.i32Sub, ...op.set(OFF),
    ...op.get(DY), ...op.set(GP),
    ...forLoop(PY, OH, op.i32Const(1), forLoop(PX, OW, op.i32Const(1), pixel)),
    ...op.get(BAD), ...op.anyTrue,
  ];
}

/** The routine bound to a heap, or null where the engine has no wasm SIMD. */
export const simdMaxPoolGrad2x2 = lazyRoutine<MaxPoolGrad2x2>(() => ({
  exportName: 'maxPoolGrad2x2',
  params: 7,
  i32Locals: OFF - PY + 1,
  v128Locals: NEG_INF - A + 1,
  returnsI32: true,
  code: code(),
}));
