/**
 * Micro-benchmark of exact summation against the plain float32 sum it replaces, on the shape of
 * one step: 4 micro-shard gradients of 93,322 float32 values (the default model). Prints medians
 * of interleaved rounds (each round runs every case once, in a rotated order, so drift from other
 * work on the machine spreads over all cases alike) and the encoded size per element.
 *
 *   npx nx run-many -t build && node packages/core/dist/allreduce/exact-sum/bench.js [rounds] [length]
 *
 * Not a test: nothing here runs in CI.
 */
import os from 'node:os';
import { createRng } from '../../data/random.js';
import { median, quantile } from '../../bench/stats.js';
import { ExactAccumulator } from './accumulator.js';
import { addends, gradientLike, type SampleKind } from './sample-data.js';

const rounds = Number(process.argv[2] ?? 41);
const n = Number(process.argv[3] ?? 93_322);
const SHARDS = 4;

const rng = createRng(2024);
const grads = Array.from({ length: SHARDS }, () => gradientLike(rng, n));
const wide = addends(rng, 'anyExponent', n, SHARDS);

const out32 = new Float32Array(n);
const acc = new ExactAccumulator(n);
const other = new ExactAccumulator(n);
for (const g of grads) other.add(g);
const encoded = other.encode();
const encodedRaw = other.encode(0, n, 'raw');
// gradients where 1% of the values are 1e-20 .. 1e-30 times smaller: a few percent of the sums
// span more than float64's 53 bits and take the bigint path
const tinyRng = createRng(99);
const gradsTiny = grads.map((g) => g.map((v) => (tinyRng.nextFloat() < 0.01 ? v * 1e-20 * 10 ** -tinyRng.nextBelow(11) : v)));
let sink = 0; // keeps results alive

/**
 * The design not taken, for the record: fixed bins of 32 bits of exponent per element (10 float64
 * bins from 2^-149, each an integer multiple of its unit; a float32 lands in two adjacent bins by
 * splitting at the bin boundary). Only its add and a plain float64 read-out are timed, without
 * the carry propagation and exact rounding a real read-out needs: a lower bound of its cost.
 */
const BINS = 10;
const binOfExponent = new Int32Array(256).map((_, e) => Math.floor(((e === 0 ? -149 : e - 150) + 149) / 32));
const splitAt = Float64Array.from({ length: BINS + 1 }, (_, k) => 1.5 * 2 ** (-149 + 32 * k + 52));
const bins = new Float64Array(n * BINS);
function binsAdd(x: Float32Array): void {
  const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    const k = binOfExponent[(xb[i]! >>> 23) & 255]!;
    const c = splitAt[k + 1]!;
    const high = v + c - c; // v rounded to a multiple of bin k+1's unit
    const o = i * BINS + k;
    bins[o] += v - high;
    bins[o + 1] += high;
  }
}
function binsReadLowerBound(out: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let k = BINS - 1; k >= 0; k--) s += bins[i * BINS + k]!;
    out[i] = s;
  }
}

interface Case {
  name: string;
  run: () => void;
  /** Runs before each timed run, untimed (e.g. a reset). */
  before?: () => void;
}

const cases: Case[] = [
  {
    name: 'float32 sum of 4 (baseline)',
    run: () => {
      out32.set(grads[0]!);
      for (let k = 1; k < SHARDS; k++) {
        const g = grads[k]!;
        for (let i = 0; i < n; i++) out32[i] += g[i]!;
      }
      sink += out32[7]!;
    },
  },
  {
    name: 'exact: reset + add x4 + toFloat32',
    run: () => {
      acc.reset();
      for (const g of grads) acc.add(g);
      acc.toFloat32(out32);
      sink += out32[7]!;
    },
  },
  { name: 'exact: add (one vector)', before: () => acc.reset(), run: () => void acc.add(grads[0]!) },
  {
    name: 'exact: toFloat32',
    before: () => {
      acc.reset();
      for (const g of grads) acc.add(g);
    },
    run: () => void acc.toFloat32(out32),
  },
  { name: 'exact: reset', run: () => void acc.reset() },
  { name: 'exact: merge (full length)', before: () => acc.reset(), run: () => void acc.merge(other) },
  { name: 'exact: encode packed (full length)', run: () => void (sink += other.encode().length) },
  { name: 'exact: addEncoded packed (decode + add)', before: () => acc.reset(), run: () => void acc.addEncoded(encoded) },
  { name: 'exact: encode raw (full length)', run: () => void (sink += other.encode(0, n, 'raw').length) },
  { name: 'exact: addEncoded raw (decode + add)', before: () => acc.reset(), run: () => void acc.addEncoded(encodedRaw) },
  {
    name: '1% tiny values: reset + add x4 + toFloat32',
    run: () => {
      acc.reset();
      for (const g of gradsTiny) acc.add(g);
      acc.toFloat32(out32);
    },
  },
  {
    name: 'not taken: bins add x4 + read (lower bound)',
    run: () => {
      bins.fill(0);
      for (const g of grads) binsAdd(g);
      binsReadLowerBound(out32);
    },
  },
  {
    name: 'adversarial: reset + add x4 + toFloat32',
    run: () => {
      acc.reset();
      for (const w of wide) acc.add(w);
      acc.toFloat32(out32);
    },
  },
];

const times = cases.map(() => [] as number[]);
for (let r = 0; r < rounds + 3; r++) {
  for (let c = 0; c < cases.length; c++) {
    const k = (c + r) % cases.length;
    const cs = cases[k]!;
    cs.before?.();
    const t0 = performance.now();
    cs.run();
    const dt = performance.now() - t0;
    if (r >= 3) times[k]!.push(dt); // the first rounds warm the JIT up
  }
}

const fmt = (ms: number): string => ms.toFixed(3).padStart(8);
console.log(`exact-sum bench: length ${n}, ${SHARDS} shards, ${rounds} interleaved rounds (after 3 warm-up)`);
console.log(`${os.cpus()[0]?.model ?? 'cpu?'}, ${os.availableParallelism()} cores, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`${'case'.padEnd(44)}  median ms      p10      p90`);
for (let c = 0; c < cases.length; c++) {
  const t = times[c]!;
  console.log(`${cases[c]!.name.padEnd(44)} ${fmt(median(t))} ${fmt(quantile(t, 0.1))} ${fmt(quantile(t, 0.9))}`);
}
const base = median(times[0]!);
console.log(`exact / float32 (4 vectors, to float32): ${(median(times[1]!) / base).toFixed(2)}x, extra ${(median(times[1]!) - base).toFixed(3)} ms`);

/** Encoded bytes per element of the exact sum of `vectors`, and how many elements have a tail. */
function size(label: string, vectors: Float32Array[]): void {
  const a = new ExactAccumulator(n);
  for (const v of vectors) a.add(v);
  const wideCount = a.wideElements;
  const packed = a.encode().length / n;
  const raw = a.encode(0, n, 'raw').length / n;
  console.log(`${label.padEnd(52)} ${packed.toFixed(3).padStart(7)} ${raw.toFixed(3).padStart(7)}   ${wideCount} / ${a.wideElements}`);
}
console.log(`encoded bytes per element (a float32 payload is 4)       packed     raw   elements with a tail (before / after encode normalises)`);
const r2 = createRng(7);
size('gradient N(0, 1e-3), 10% zeros, 1 vector', [gradientLike(r2, n)]);
size('gradient, 4 vectors (one worker step)', grads);
size('gradient, 64 vectors (16 workers x 4 shards)', Array.from({ length: 64 }, () => gradientLike(r2, n)));
size('gradient with 1% of values 1e-20 .. 1e-30 smaller, 4 vectors', gradsTiny);
for (const kind of ['anyExponent', 'cancelling', 'mixed', 'subnormal', 'nearMax'] as SampleKind[]) {
  size(`adversarial ${kind}, 4 vectors`, addends(r2, kind, n, 4));
}
if (sink === 12345.678) console.log('');
