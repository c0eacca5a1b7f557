import { describe, expect, it } from 'vitest';
import { bytesToFloat32, bytesToUint16, float32ToBytes, uint16ToBytes } from './codec.js';
import { CollectiveError } from './collective-error.js';

const randomFloats = (n: number): Float32Array => Float32Array.from({ length: n }, () => (Math.random() - 0.5) * 1e3);

describe('codec', () => {
  it('sends float32 as a little-endian byte view of the same memory', () => {
    const values = randomFloats(5);
    const bytes = float32ToBytes(values);
    expect(bytes.buffer).toBe(values.buffer);
    expect(bytes.byteLength).toBe(20);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    for (let i = 0; i < 5; i++) expect(dv.getFloat32(4 * i, true)).toBe(values[i]);
  });

  it('views a subarray without taking the rest of the buffer', () => {
    const values = randomFloats(10);
    const bytes = float32ToBytes(values.subarray(3, 6));
    expect([bytes.byteOffset, bytes.byteLength]).toEqual([12, 12]);
    expect([...bytesToFloat32(bytes)]).toEqual([...values.subarray(3, 6)]);
  });

  it('reads aligned bytes as a view and unaligned bytes as an aligned copy, with the same values', () => {
    const values = randomFloats(7);
    const aligned = float32ToBytes(values);
    expect(bytesToFloat32(aligned).buffer).toBe(values.buffer);
    for (const offset of [1, 2, 3]) {
      const padded = new Uint8Array(aligned.byteLength + offset);
      padded.set(aligned, offset);
      const got = bytesToFloat32(padded.subarray(offset), 7);
      expect(got.byteOffset % 4).toBe(0);
      expect([...got]).toEqual([...values]);
    }
  });

  it('round-trips uint16 through aligned and unaligned bytes', () => {
    const values = Uint16Array.from({ length: 9 }, () => Math.floor(Math.random() * 65536));
    const bytes = uint16ToBytes(values);
    expect([...bytesToUint16(bytes)]).toEqual([...values]);
    const padded = new Uint8Array(bytes.byteLength + 1);
    padded.set(bytes, 1);
    expect([...bytesToUint16(padded.subarray(1), 9)]).toEqual([...values]);
  });

  it('rejects a payload of the wrong size with an error naming the sender and both sizes', () => {
    const origin = { from: 3, what: 'ringAllreduce: chunk 2' };
    let caught: unknown;
    try {
      bytesToFloat32(new Uint8Array(12), 4, origin);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CollectiveError);
    expect((caught as CollectiveError).code).toBe('PAYLOAD_SIZE');
    expect((caught as CollectiveError).rank).toBe(3);
    expect((caught as Error).message).toMatch(/ringAllreduce: chunk 2 from rank 3: got 12 bytes, expected 16 \(4 elements/);
    expect(() => bytesToFloat32(new Uint8Array(6))).toThrow(/got 6 bytes, expected a multiple of 4/);
    expect(() => bytesToUint16(new Uint8Array(3))).toThrow(/got 3 bytes, expected a multiple of 2/);
  });
});
