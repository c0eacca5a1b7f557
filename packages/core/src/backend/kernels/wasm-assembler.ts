import type { WasmMemory } from './wasm-backend.js';

/**
 * A minimal WebAssembly binary writer, for ddp's few hand-written SIMD routines (there is no
 * toolchain here to compile C to wasm). Each routine is one exported function over i32 byte
 * addresses into the tfjs wasm heap, which the module imports as env.memory.
 */
export const I32 = 0x7f;
export const V128 = 0x7b;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const simd = (code: number) => [0xfd, ...uleb(code)];
const memarg = [0x00, 0x00]; // align hint 1 byte (unaligned is fine), offset 0

/** The instructions the routines use (SIMD opcodes as in the WebAssembly 2.0 binary format). */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  i32Const: (v: number) => {
    if (!Number.isInteger(v) || v < 0 || v > 63) throw new RangeError(`i32Const: ${v} needs a longer signed LEB128`);
    return [0x41, v];
  },
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  f32ConstNegInf: [0x43, 0x00, 0x00, 0x80, 0xff],
  load: [...simd(0), ...memarg],
  store: [...simd(11), ...memarg],
  f32x4Splat: simd(19),
  f32x4Eq: simd(65),
  f32x4Gt: simd(68),
  not: simd(77),
  and: simd(78),
  andNot: simd(79), // a & ~b
  or: simd(80),
  bitselect: simd(82), // (a & c) | (b & ~c)
  anyTrue: simd(83),
  f32x4Add: simd(228),
};

/** `for (local = 0; local < limit; local += step) { ...body }` with i32 locals (step: a local or a constant). */
export function forLoop(local: number, limit: number, step: number[], body: number[]): number[] {
  return [
    ...op.i32Const(0), ...op.set(local),
    ...op.block, ...op.loop,
    ...op.get(local), ...op.get(limit), ...op.i32GeU, ...op.brIf(1),
    ...body,
    ...op.get(local), ...step, ...op.i32Add, ...op.set(local),
    ...op.br(0), ...op.end, ...op.end,
  ];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(Buffer.from(s, 'utf8'))];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export interface RoutineSpec {
  exportName: string;
  params: number; // all i32
  i32Locals: number; // after the parameters
  v128Locals: number; // after the i32 locals
  returnsI32: boolean;
  code: number[]; // the body, without the final end
}

/** A module with one exported function, importing env.memory. */
export function moduleBytes(spec: RoutineSpec): Uint8Array {
  const locals = spec.v128Locals > 0
    ? [...uleb(2), ...uleb(spec.i32Locals), I32, ...uleb(spec.v128Locals), V128]
    : [...uleb(1), ...uleb(spec.i32Locals), I32];
  const func = [...locals, ...spec.code, ...op.end];
  const results = spec.returnsI32 ? [...uleb(1), I32] : uleb(0);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [...uleb(1), 0x60, ...uleb(spec.params), ...Array(spec.params).fill(I32), ...results]),
    ...section(2, [...uleb(1), ...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]),
    ...section(3, [...uleb(1), ...uleb(0)]),
    ...section(7, [...uleb(1), ...name(spec.exportName), 0x00, ...uleb(0)]),
    ...section(10, [...uleb(1), ...uleb(func.length), ...func]),
  ]);
}

// The compiler's lib here has no WebAssembly typings; this is the part used.
interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;

/**
 * Compiles `spec` once and binds it to each heap it is asked for. Returns a getter that yields
 * null where the engine cannot validate the module (no wasm SIMD), so callers keep a JS path.
 */
export function lazyRoutine<F>(spec: () => RoutineSpec): (memory: WasmMemory) => F | null {
  let compiled: object | null | undefined;
  let exportName = '';
  const bound = new WeakMap<WasmMemory, F>();
  return (memory) => {
    if (compiled === undefined) {
      const s = spec();
      exportName = s.exportName;
      const bytes = moduleBytes(s);
      compiled = wasmApi?.validate(bytes) ? new wasmApi.Module(bytes) : null;
    }
    if (compiled === null || wasmApi === undefined) return null;
    let fn = bound.get(memory);
    if (fn === undefined) {
      fn = new wasmApi.Instance(compiled, { env: { memory } }).exports[exportName] as F;
      bound.set(memory, fn);
    }
    return fn;
  };
}
