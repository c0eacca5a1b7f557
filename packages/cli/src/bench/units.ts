/**
 * Quantities on the command line: bandwidths (10Gbit, 100Mbit/s, 1.25GB/s), latencies (50us,
 * 0.2ms), worker counts (2..256 doubles, 1,2,4 lists) and sizes (93322,1e6). Every parser throws a
 * UsageError that names the flag, what it got and what it accepts.
 */
import { UsageError } from '../args.js';

/** Seconds per unit. */
const TIME_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1 };

function splitNumber(flag: string, raw: string, accepts: string): [number, string] {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zµ/]*)\s*$/i.exec(raw);
  if (!m) throw new UsageError(`--${flag}: cannot read '${raw}' (expected a number and a unit: ${accepts})`);
  return [Number(m[1]), m[2]!.toLowerCase()];
}

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/**
 * Bytes per second. Bits (decimal, as links are sold: 10Gbit = 1.25e9 B/s): bit, Kbit, Mbit, Gbit,
 * Tbit, also written Gbit/s, Gbps or Gb/s. Bytes: B/s, KB/s, MB/s, GB/s (decimal) and KiB/s, MiB/s,
 * GiB/s (binary). Only the b/B of "Gb/s" vs "GB/s" is case-sensitive.
 */
export function parseBandwidth(flag: string, raw: string): number {
  const accepts = 'Gbit, Mbit, Kbit, bit (also Gbit/s, Gbps, Gb/s) or GB/s, MB/s, KB/s, B/s, GiB/s, MiB/s, KiB/s';
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zA-Z]*?)(\/s|ps)?\s*$/.exec(raw);
  if (!m) throw new UsageError(`--${flag}: cannot read '${raw}' (expected a number and a unit: ${accepts})`);
  const value = Number(m[1]);
  const unit = m[2]!;
  let factor: number | undefined;
  const bits = /^([kmgt]?)(bit|b)$/i.exec(unit);
  const bytes = /^([kmgt]?)(i?)B$/i.exec(unit);
  if (bits && (bits[2]!.toLowerCase() === 'bit' || bits[2] === 'b')) factor = PREFIX[bits[1]!.toLowerCase()]! / 8;
  else if (bytes && bytes[0].endsWith('B')) {
    const p = bytes[1]!.toLowerCase();
    factor = bytes[2] ? 1024 ** ' kmgt'.indexOf(p || ' ') : PREFIX[p]!;
    if (bytes[2] && !p) factor = undefined; // "iB" alone is not a unit
  }
  if (factor === undefined) throw new UsageError(`--${flag}: unknown unit '${unit}${m[3] ?? ''}' in '${raw}' (accepted: ${accepts})`);
  if (!(value > 0)) throw new UsageError(`--${flag} must be more than 0, got '${raw}'`);
  return value * factor;
}

/** Seconds. Units: ns, us (or µs), ms, s. */
export function parseDuration(flag: string, raw: string): number {
  const [value, unit] = splitNumber(flag, raw, 'ns, us, ms, s');
  const factor = TIME_UNITS[unit];
  if (factor === undefined) throw new UsageError(`--${flag}: unknown unit '${unit || '(none)'}' in '${raw}' (accepted: ns, us, ms, s)`);
  return value * factor;
}

/** "2..256" doubles from 2 to 256 (2, 4, ..., 256; the end is included even if not a power); "1,2,3" is a list. */
export function parseCountList(flag: string, raw: string, min: number, max = 1 << 20): number[] {
  const out: number[] = [];
  const int = (s: string): number => {
    if (!/^\s*\d+\s*$/.test(s)) throw new UsageError(`--${flag}: '${s}' is not a whole number (in '${raw}'; use A..B or a,b,c)`);
    const n = Number(s);
    if (n < min || n > max) throw new UsageError(`--${flag}: ${n} is out of range [${min}, ${max}] (in '${raw}')`);
    return n;
  };
  for (const part of raw.split(',')) {
    const range = /^(.*)\.\.(.*)$/.exec(part);
    if (range) {
      const [a, b] = [int(range[1]!), int(range[2]!)];
      if (b < a) throw new UsageError(`--${flag}: range '${part}' ends before it starts`);
      if (a === 0) throw new UsageError(`--${flag}: a doubling range cannot start at 0 ('${part}')`);
      for (let n = a; n < b; n *= 2) out.push(n);
      out.push(b);
    } else out.push(int(part));
  }
  return [...new Set(out)];
}

/** Comma-separated positive integers, also in exponent form (1e6). */
export function parseSizeList(flag: string, raw: string, max = 2 ** 30): number[] {
  return raw.split(',').map((s) => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(n) || n < 1 || n > max) {
      throw new UsageError(`--${flag}: '${s}' is not a whole number in [1, ${max}] (in '${raw}')`);
    }
    return n;
  });
}

/** A comma list whose items must come from `choices`. */
export function parseChoiceList<T extends string>(flag: string, raw: string, choices: readonly T[]): T[] {
  const items = raw.split(',').map((s) => s.trim());
  for (const s of items) {
    if (!(choices as readonly string[]).includes(s)) throw new UsageError(`--${flag}: '${s}' is not one of ${choices.join(', ')} (in '${raw}')`);
  }
  return [...new Set(items)] as T[];
}

export function formatBandwidth(bytesPerSec: number): string {
  const bits = bytesPerSec * 8;
  if (bits >= 1e9) return `${+(bits / 1e9).toPrecision(4)} Gbit/s`;
  if (bits >= 1e6) return `${+(bits / 1e6).toPrecision(4)} Mbit/s`;
  return `${+(bits / 1e3).toPrecision(4)} Kbit/s`;
}

export function formatDuration(sec: number): string {
  if (sec >= 1) return `${+sec.toPrecision(4)} s`;
  if (sec >= 1e-3) return `${+(sec * 1e3).toPrecision(4)} ms`;
  if (sec >= 1e-6) return `${+(sec * 1e6).toPrecision(4)} us`;
  return `${+(sec * 1e9).toPrecision(4)} ns`;
}
