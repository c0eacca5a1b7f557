// Small helpers shared by the unit tests of every package (exported as `@ddp/core/testing`).
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { Split } from './data/datasets.js';
import { ProtocolError, type ProtocolErrorCode } from './protocol/protocol-error.js';

/** A split of `count` random 28x28 images with labels 0..9. */
export function randomSplit(count: number): Split {
  return { images: new Uint8Array(randomBytes(count * 784)), labels: new Uint8Array(randomBytes(count).map((b) => b % 10)), count, rows: 28, cols: 28 };
}

/** Runs `fn`, expects it to throw a ProtocolError (with `code`, when given) and returns it. */
export function protocolRefusal(fn: () => unknown, code?: ProtocolErrorCode): ProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    if (code) expect((err as ProtocolError).code).toBe(code);
    return err as ProtocolError;
  }
  throw new Error('expected a ProtocolError, but nothing was refused');
}
