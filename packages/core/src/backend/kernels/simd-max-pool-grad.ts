/**
 * A 2x2, stride-2 MaxPoolGrad written directly in WebAssembly SIMD, running on the tfjs wasm
 * backend's own memory (imported, so it reads x and dy and writes dx in place, with no copies).
 *
 * Why hand-assembled: the JS loop spends most of its time in mispredicted branches (which of four
 * values is the first maximum is random), ~6 ms for the seed CNN's first pool at batch 64; there is
 * no toolchain here to compile C to wasm, and the module is one small function. With f32x4
 * compares and bit selects there are no data-dependent branches, four channels at a time.
 *
 * Semantics, as the tfjs cpu kernel: each window's dy goes to its first maximum in row-major order
 * (strict '>', so -0 and +0 tie). A window holding a NaN, or only -Infinity, is where the rules get
 * subtle; the function reports such windows (returns 1) and the caller redoes the whole tensor
 * with the careful JS loop. Windows must not overlap and must lie inside the image (valid 2x2,
 * stride 2); channels must be a multiple of 4. The caller checks all that.
 */

import type { WasmMemory } from './wasm-backend.js';

// --- a minimal WebAssembly binary writer: just what the function below uses ---

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(Buffer.from(s, 'utf8'))];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  i32Const: (v: number) => [0x41, ...uleb(v)], // small non-negative constants only
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32GeU: [0x4f],
  f32ConstNegInf: [0x43, 0x00, 0x00, 0x80, 0xff],
  // SIMD: 0xfd prefix, then the opcode as LEB128 (memarg: align 0, offset 0).
  load: [0xfd, ...uleb(0), 0x00, 0x00],
  store: [0xfd, ...uleb(11), 0x00, 0x00],
  f32x4Splat: [0xfd, ...uleb(19)],
  f32x4Eq: [0xfd, ...uleb(65)],
  f32x4Gt: [0xfd, ...uleb(68)],
  not: [0xfd, ...uleb(77)],
  and: [0xfd, ...uleb(78)],
  andNot: [0xfd, ...uleb(79)], // a & ~b
  or: [0xfd, ...uleb(80)],
  bitselect: [0xfd, ...uleb(82)], // (a & c) | (b & ~c)
  anyTrue: [0xfd, ...uleb(83)],
};

// Locals: parameters first.
const X = 0; // byte address of the image's x
const DY = 1; // byte address of the image's dy
const DX = 2; // byte address of the image's dx
const OH = 3; // output rows
const OW = 4; // output columns
const CB = 5; // bytes per pixel (4 * channels, a multiple of 16)
const RB = 6; // bytes per input row
const PY = 7;
const PX = 8;
const D = 9;
const XW = 10; // window's top-left x address + d
const GP = 11; // dy pixel address
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

function body(): number[] {
  const loadAt = (addr: number[]) => [...addr, ...op.load];
  const xAt = (extra: number[]) => [...op.get(XW), ...extra];
  const storeAt = (addr: number[], value: number[]) => [...addr, ...value, ...op.store];
  const dxAt = (extra: number[]) => [...op.get(XW), ...op.get(OFF), ...op.i32Add, ...extra];
  const plus = (local: number) => [...op.get(local), ...op.i32Add];
  const isNum = (v: number) => [...op.get(v), ...op.get(v), ...op.f32x4Eq];
  return [
    ...op.f32ConstNegInf, ...op.f32x4Splat, ...op.set(NEG_INF),
    ...op.get(DX), ...op.get(X), ...op.i32Sub, ...op.set(OFF),
    ...op.get(DY), ...op.set(GP),
    ...op.block, ...op.loop, // py
    ...op.get(PY), ...op.get(OH), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...op.set(PX),
    ...op.block, ...op.loop, // px
    ...op.get(PX), ...op.get(OW), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...op.set(D),
    ...op.block, ...op.loop, // d
    ...op.get(D), ...op.get(CB), ...op.i32GeU, ...op.brIf(1),
    // xw = x + py*2*rowBytes + px*2*pixelBytes + d
    ...op.get(X),
    ...op.get(PY), ...op.get(RB), ...op.i32Mul, ...op.i32Const(2), ...op.i32Mul, ...op.i32Add,
    ...op.get(PX), ...op.get(CB), ...op.i32Mul, ...op.i32Const(2), ...op.i32Mul, ...op.i32Add,
    ...op.get(D), ...op.i32Add, ...op.set(XW),
    ...loadAt(xAt([])), ...op.set(A),
    ...loadAt(xAt(plus(CB))), ...op.set(P),
    ...loadAt(xAt(plus(RB))), ...op.set(Q),
    ...loadAt(xAt([...plus(RB), ...plus(CB)])), ...op.set(R),
    ...loadAt([...op.get(GP), ...op.get(D), ...op.i32Add]), ...op.set(G),
    // s1 = p > a, s2 = r > q, s3 = max(q, r) > max(a, p): ties keep the earlier position.
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
    // dx of each position: g where it is the first maximum, +0 elsewhere.
    ...storeAt(dxAt([]), [...op.get(G), ...op.get(S1), ...op.not, ...op.get(S3), ...op.andNot, ...op.and]),
    ...storeAt(dxAt(plus(CB)), [...op.get(G), ...op.get(S1), ...op.get(S3), ...op.andNot, ...op.and]),
    ...storeAt(dxAt(plus(RB)), [...op.get(G), ...op.get(S3), ...op.get(S2), ...op.andNot, ...op.and]),
    ...storeAt(dxAt([...plus(RB), ...plus(CB)]), [...op.get(G), ...op.get(S3), ...op.get(S2), ...op.and, ...op.and]),
    ...op.get(D), ...op.i32Const(16), ...op.i32Add, ...op.set(D),
    ...op.br(0), ...op.end, ...op.end, // d
    ...op.get(GP), ...op.get(CB), ...op.i32Add, ...op.set(GP),
    ...op.get(PX), ...op.i32Const(1), ...op.i32Add, ...op.set(PX),
    ...op.br(0), ...op.end, ...op.end, // px
    ...op.get(PY), ...op.i32Const(1), ...op.i32Add, ...op.set(PY),
    ...op.br(0), ...op.end, ...op.end, // py
    ...op.get(BAD), ...op.anyTrue,
    ...op.end,
  ];
}

function moduleBytes(): Uint8Array {
  const code = body();
  const locals = [...uleb(2), ...uleb(OFF - PY + 1), I32, ...uleb(NEG_INF - A + 1), V128];
  const func = [...locals, ...code];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [...uleb(1), 0x60, ...uleb(7), ...Array(7).fill(I32), ...uleb(1), I32]),
    ...section(2, [...uleb(1), ...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]),
    ...section(3, [...uleb(1), ...uleb(0)]),
    ...section(7, [...uleb(1), ...name('maxPoolGrad2x2'), 0x00, ...uleb(0)]),
    ...section(10, [...uleb(1), ...uleb(func.length), ...func]),
  ]);
}

export type MaxPoolGrad2x2 = (x: number, dy: number, dx: number, oh: number, ow: number, pixelBytes: number, rowBytes: number) => number;

// The compiler's lib here has no WebAssembly typings; this is the part used.
interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

let compiled: object | null | undefined;
const instances = new WeakMap<WasmMemory, MaxPoolGrad2x2>();

/** The SIMD routine bound to `memory`, or null where this engine has no wasm SIMD. */
export function simdMaxPoolGrad2x2(memory: WasmMemory): MaxPoolGrad2x2 | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = wasmApi.validate(bytes) ? new wasmApi.Module(bytes) : null;
  }
  if (compiled === null) return null;
  let fn = instances.get(memory);
  if (fn === undefined) {
    const instance = new wasmApi.Instance(compiled, { env: { memory } });
    fn = instance.exports.maxPoolGrad2x2 as MaxPoolGrad2x2;
    instances.set(memory, fn);
  }
  return fn;
}
