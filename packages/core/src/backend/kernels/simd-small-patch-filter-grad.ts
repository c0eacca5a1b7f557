import { forLoop, lazyRoutine, op, uleb } from './wasm-assembler.js';
import type { WasmMemory } from './wasm-backend.js';

/**
 * The filter gradient of a convolution with a small patch (kh*kw*in values, e.g. a first layer on
 * one-channel images), computed directly in WebAssembly SIMD on the tfjs heap:
 *   dW[t, o] = sum over (b, p, q) of x[b, p*sh + y_t, q*sw + x_t, i_t] * dy[b, p, q, o]
 * For each group of output channels, one pass over dy keeps the whole group's dW (patch x group)
 * in SIMD accumulators. XNNPACK has no good shape for this product (its reduction runs over all
 * n*oh*ow positions while the patch is tiny), so the matrix-product routes spend more time packing
 * operands than multiplying. Valid padding only; out-channels a multiple of 4 * GROUP_VECTORS.
 * Accumulates in float32 along the positions, like XNNPACK's products.
 */
export type SmallPatchFilterGrad = (
  x: number, dy: number, dw: number, n: number, h: number, w: number,
  oh: number, ow: number, outChannels: number, sh: number, sw: number,
) => void;

/** Output channels per pass, in vectors of 4: 2 x 4 = 8 channels, with 2 * patch accumulators. */
export const GROUP_VECTORS = 2;

// Parameters.
const X = 0;
const DY = 1;
const DW = 2;
const N = 3;
const H = 4;
const W = 5;
const OH = 6;
const OW = 7;
const CO = 8;
const SH = 9;
const SW = 10;
// i32 locals.
const G = 11; // byte offset of the channel group within a dy pixel / dW row
const B = 12;
const P = 13;
const Q = 14;
const DYP = 15; // dy pixel address + g
const XB = 16; // x address of the patch's top-left (channel 0)
const ROWB = 17; // bytes per x row (w * in * 4)
const ROW = 18; // x address of the current patch row
const I32_LOCALS = ROW - G + 1;
const FIRST_V128 = ROW + 1;

function code(kh: number, kw: number, ci: number): number[] {
  const patch = kh * kw * ci;
  const acc = (t: number, v: number) => FIRST_V128 + t * GROUP_VECTORS + v;
  const dyv = (v: number) => FIRST_V128 + patch * GROUP_VECTORS + v;
  const xs = FIRST_V128 + patch * GROUP_VECTORS + GROUP_VECTORS;
  const f32Load = (offset: number) => [0x2a, 0x02, ...uleb(offset)]; // align 4 bytes, constant offset
  const v128Store = (offset: number) => [0xfd, ...uleb(11), 0x00, ...uleb(offset)];
  const f32x4Mul = [0xfd, ...uleb(230)];
  const zero = [0xfd, ...uleb(12), ...Array(16).fill(0)]; // v128.const 0

  const taps: number[] = [];
  for (let y = 0; y < kh; y++) {
    // row = xb + y * rowBytes
    taps.push(...op.get(XB), ...op.get(ROWB), ...op.i32Const(y), ...op.i32Mul, ...op.i32Add, ...op.set(ROW));
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const t = (y * kw + x) * ci + i;
        taps.push(...op.get(ROW), ...f32Load((x * ci + i) * 4), ...op.f32x4Splat, ...op.set(xs));
        for (let v = 0; v < GROUP_VECTORS; v++) {
          taps.push(...op.get(acc(t, v)), ...op.get(xs), ...op.get(dyv(v)), ...f32x4Mul, ...op.f32x4Add, ...op.set(acc(t, v)));
        }
      }
    }
  }
  const position = [
    // dyp = dy + ((b*oh + p)*ow + q) * co * 4 + g
    ...op.get(DY),
    ...op.get(B), ...op.get(OH), ...op.i32Mul, ...op.get(P), ...op.i32Add, ...op.get(OW), ...op.i32Mul, ...op.get(Q), ...op.i32Add,
    ...op.get(CO), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.get(G), ...op.i32Add, ...op.set(DYP),
    ...Array.from({ length: GROUP_VECTORS }, (_, v) => [...op.get(DYP), 0xfd, ...uleb(0), 0x00, ...uleb(16 * v), ...op.set(dyv(v))]).flat(),
    // xb = x + ((b*h + p*sh) * w + q*sw) * ci * 4
    ...op.get(X),
    ...op.get(B), ...op.get(H), ...op.i32Mul, ...op.get(P), ...op.get(SH), ...op.i32Mul, ...op.i32Add, ...op.get(W), ...op.i32Mul,
    ...op.get(Q), ...op.get(SW), ...op.i32Mul, ...op.i32Add, ...op.i32Const(ci), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul,
    ...op.i32Add, ...op.set(XB),
    ...taps,
  ];
  const group = [
    ...Array.from({ length: patch * GROUP_VECTORS }, (_, k) => [...zero, ...op.set(FIRST_V128 + k)]).flat(),
    ...forLoop(B, N, op.i32Const(1), forLoop(P, OH, op.i32Const(1), forLoop(Q, OW, op.i32Const(1), position))),
    // dW[t, g..g+group] = acc[t]; dW rows are co * 4 bytes apart.
    ...Array.from({ length: patch }, (_, t) =>
      Array.from({ length: GROUP_VECTORS }, (_, v) => [
        ...op.get(DW), ...op.get(CO), ...op.i32Const(4), ...op.i32Mul, ...op.i32Const(t), ...op.i32Mul,
        ...op.i32Add, ...op.get(G), ...op.i32Add, ...op.get(acc(t, v)), ...v128Store(16 * v),
      ]).flat(),
    ).flat(),
  ];
  // rowBytes = w * ci * 4; then one pass per channel group (g steps 16 * GROUP_VECTORS bytes).
  return [
    ...op.get(W), ...op.i32Const(ci), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.set(ROWB),
    ...forLoopBytes(group),
  ];
}

// g from 0 to co * 4 bytes in steps of 16 * GROUP_VECTORS.
function forLoopBytes(body: number[]): number[] {
  return [
    ...op.i32Const(0), ...op.set(G),
    ...op.block, ...op.loop,
    ...op.get(G), ...op.get(CO), ...op.i32Const(4), ...op.i32Mul, ...op.i32GeU, ...op.brIf(1),
    ...body,
    ...op.get(G), ...op.i32Const(16 * GROUP_VECTORS), ...op.i32Add, ...op.set(G),
    ...op.br(0), ...op.end, ...op.end,
  ];
}

const routines = new Map<string, (memory: WasmMemory) => SmallPatchFilterGrad | null>();

/** The routine for a (kh, kw, in) patch, bound to a heap; null where the engine has no wasm SIMD. */
export function simdSmallPatchFilterGrad(kh: number, kw: number, ci: number): (memory: WasmMemory) => SmallPatchFilterGrad | null {
  const key = `${kh}x${kw}x${ci}`;
  let routine = routines.get(key);
  if (routine === undefined) {
    const patch = kh * kw * ci;
    routine = lazyRoutine<SmallPatchFilterGrad>(() => ({
      exportName: 'filterGrad',
      params: 11,
      i32Locals: I32_LOCALS,
      v128Locals: patch * GROUP_VECTORS + GROUP_VECTORS + 1,
      returnsI32: false,
      code: code(kh, kw, ci),
    }));
    routines.set(key, routine);
  }
  return routine;
}
