// A small seeded PRNG: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit
// state) seeded by splitmix32. Pure 32-bit integer arithmetic, so every platform and JS engine
// produces the same stream from the same seed.

export interface Rng {
  /** Uniform integer in [0, 2^32). */
  nextUint32(): number;
  /** Uniform float in [0, 1) with 32 bits of resolution. */
  nextFloat(): number;
  /** Uniform integer in [0, bound), without modulo bias; bound is an integer in [1, 2^32]. */
  nextBelow(bound: number): number;
}

const TWO_32 = 4294967296;
const GOLDEN_GAMMA = 0x9e3779b9;

/** splitmix32's output mix (a bijection on 32-bit integers). */
export function mix32(x: number): number {
  let z = x | 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x21f0aaad);
  z ^= z >>> 15;
  z = Math.imul(z, 0x735a2d97);
  z ^= z >>> 15;
  return z >>> 0;
}

function checkSeed(where: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
    throw new RangeError(`${where}: ${name} must be a 32-bit integer (-2^31 .. 2^32-1), got ${String(value)}`);
  }
}

/**
 * A 32-bit seed for stream `stream` of `seed` (e.g. one per epoch): different streams of one
 * seed always get different seeds, because both mixing steps are bijections.
 */
export function deriveSeed(seed: number, stream: number): number {
  checkSeed('deriveSeed', 'seed', seed);
  checkSeed('deriveSeed', 'stream', stream);
  return mix32(mix32((seed + GOLDEN_GAMMA) | 0) ^ (stream | 0));
}

/** Creates an sfc32 generator from a 32-bit integer seed (negative seeds are taken mod 2^32). */
export function createRng(seed: number): Rng {
  checkSeed('createRng', 'seed', seed);
  // splitmix32 fills the 128-bit state so that nearby seeds give unrelated states.
  let sm = seed | 0;
  const splitmix = (): number => {
    sm = (sm + GOLDEN_GAMMA) | 0;
    return mix32(sm);
  };
  let a = splitmix() | 0;
  let b = splitmix() | 0;
  let c = splitmix() | 0;
  let d = 1; // sfc32's counter; PractRand's seeding starts it at 1

  const nextUint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // PractRand's seeding also discards the first 12 outputs to mix the state.
  for (let i = 0; i < 12; i++) nextUint32();

  return {
    nextUint32,
    nextFloat: () => nextUint32() / TWO_32,
    nextBelow(bound: number): number {
      if (!Number.isInteger(bound) || bound < 1 || bound > TWO_32) {
        throw new RangeError(`nextBelow: bound must be an integer in [1, 2^32], got ${String(bound)}`);
      }
      // Reject the top TWO_32 % bound values so every result is equally likely.
      const limit = TWO_32 - (TWO_32 % bound);
      let r = nextUint32();
      while (r >= limit) r = nextUint32();
      return r % bound;
    },
  };
}
