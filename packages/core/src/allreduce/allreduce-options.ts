/** Options shared by every allreduce algorithm, and their up-front validation. */
import type { Transport } from './transport.js';

export const COMPRESSION_MODES = ['none', 'fp16'] as const;
export type Compression = (typeof COMPRESSION_MODES)[number];

export interface AllreduceOptions {
  /**
   * How payloads travel. 'fp16' halves the bytes; sums are still accumulated in float32, but
   * every value sent is rounded to the nearest half (relative error <= 2^-11 in the normal
   * range; magnitudes >= 65520 become Infinity, so scale gradients first if they can be that
   * large). Default 'none'.
   */
  compress?: Compression;
  /**
   * Prefix of every message tag (default 'allreduce'). Two allreduces running at the same time
   * over one transport need different tags; consecutive ones may share a tag.
   */
  tag?: string;
}

export interface ResolvedOptions {
  compress: Compression;
  tag: string;
}

/** Throws a TypeError/RangeError naming the caller and the field, before anything is sent. */
export function resolveOptions(caller: string, t: Transport, data: Float32Array, opts: AllreduceOptions): ResolvedOptions {
  if (!(data instanceof Float32Array)) {
    throw new TypeError(`${caller}: data must be a Float32Array, got ${Object.prototype.toString.call(data)}`);
  }
  checkTransport(caller, t);
  const compress = opts.compress ?? 'none';
  if (compress !== 'none' && compress !== 'fp16') {
    throw new RangeError(`${caller}: opts.compress must be 'none' or 'fp16', got ${JSON.stringify(compress)}`);
  }
  return { compress, tag: resolveTag(caller, opts.tag) };
}

/** Throws a RangeError naming the caller unless the transport's size and rank make sense. */
export function checkTransport(caller: string, t: Transport): void {
  if (!Number.isInteger(t.size) || t.size < 1) {
    throw new RangeError(`${caller}: transport.size must be an integer >= 1, got ${t.size}`);
  }
  if (!Number.isInteger(t.rank) || t.rank < 0 || t.rank >= t.size) {
    throw new RangeError(`${caller}: transport.rank must be an integer in [0, ${t.size - 1}], got ${t.rank}`);
  }
}

/** opts.tag, or 'allreduce'; throws a TypeError naming the caller for anything but a non-empty string. */
export function resolveTag(caller: string, tag: string | undefined): string {
  const t = tag ?? 'allreduce';
  if (typeof t !== 'string' || t.length === 0) {
    throw new TypeError(`${caller}: opts.tag must be a non-empty string, got ${JSON.stringify(t)}`);
  }
  return t;
}
