import { describe, expect, it } from 'vitest';
import { decodeHeaderFrame, encodeDataHeader, encodeFailureNotice, FRAME_KIND, PeerFrameError } from './peer-frame.js';
import { linkedPeers, dialsPeer } from './topology.js';

describe('peer frames', () => {
  it('round-trips data headers, at any byte offset, for random tags and sizes', () => {
    for (let k = 0; k < 200; k++) {
      const tag = `allreduce/ring/rs/${k}/${'é'.repeat(k % 5)}`;
      const bytes = Math.floor(Math.random() * 0xffffffff);
      const frame = encodeDataHeader(tag, bytes);
      const shifted = new Uint8Array(frame.byteLength + 3);
      shifted.set(frame, 3);
      expect(decodeHeaderFrame(shifted.subarray(3))).toEqual({ kind: FRAME_KIND.DATA, tag, bytes });
    }
  });

  it('round-trips failure notices and cuts long summaries', () => {
    expect(decodeHeaderFrame(encodeFailureNotice('RECV_TIMEOUT', 3, 'no message "x" from rank 3'))).toEqual({
      kind: FRAME_KIND.FAILURE,
      code: 'RECV_TIMEOUT',
      rank: 3,
      summary: 'no message "x" from rank 3',
    });
    const long = decodeHeaderFrame(encodeFailureNotice('PEER_FAILED', 1, 'x'.repeat(10_000)));
    expect(long.kind === FRAME_KIND.FAILURE && long.summary.length < 1000).toBe(true);
  });

  it('says what is wrong with a malformed header', () => {
    const good = encodeDataHeader('tag', 5);
    expect(() => decodeHeaderFrame(good.subarray(0, 5))).toThrow(/header frame of 5 bytes, expected at least 8/);
    expect(() => decodeHeaderFrame(good.subarray(0, 10))).toThrow(/its length field says 11/);
    const bad = good.slice();
    bad[0] = 5;
    expect(() => decodeHeaderFrame(bad)).toThrow(PeerFrameError);
    const notUtf8 = good.slice();
    notUtf8[8] = 0xff;
    expect(() => decodeHeaderFrame(notUtf8)).toThrow(/not valid UTF-8/);
    expect(() => encodeDataHeader('', 1)).toThrow(RangeError);
    expect(() => encodeDataHeader('t', -1)).toThrow(/payload must be 0..4294967295 bytes, got -1/);
  });
});

describe('topology', () => {
  it('links ring neighbours, the star root, or everyone, and both ends of a link agree', () => {
    expect(linkedPeers('ring', 0, 5)).toEqual([1, 4]);
    expect(linkedPeers('ring', 1, 2)).toEqual([0]);
    expect(linkedPeers('ring', 0, 1)).toEqual([]);
    expect(linkedPeers('star', 0, 4)).toEqual([1, 2, 3]);
    expect(linkedPeers('star', 2, 4)).toEqual([0]);
    expect(linkedPeers(['ring', 'star'], 2, 5)).toEqual([0, 1, 3]);
    expect(linkedPeers('full', 1, 3)).toEqual([0, 2]);
    for (const topo of ['ring', 'star', 'full'] as const) {
      for (let n = 1; n <= 9; n++) {
        for (let r = 0; r < n; r++) {
          for (const p of linkedPeers(topo, r, n)) {
            expect(linkedPeers(topo, p, n)).toContain(r); // symmetric
            expect(dialsPeer(r, p)).toBe(!dialsPeer(p, r)); // exactly one side dials
          }
        }
      }
    }
    expect(() => linkedPeers('tree' as 'ring', 0, 2)).toThrow(/topology must be one of ring, star, full, got "tree"/);
  });
});
