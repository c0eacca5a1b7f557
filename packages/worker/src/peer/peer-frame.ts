/**
 * The binary frames of a peer link. A message `send(to, tag, payload)` travels as:
 *
 *   1. one DATA header frame:  [u8 1][u8 0][u16 tag bytes][u32 payload bytes][tag, UTF-8]
 *   2. then the payload itself, raw, in ceil(bytes / chunkBytes) binary frames (none when empty).
 *
 * The payload frames carry no header: a link delivers frames in order and a sender writes all of
 * one message's frames before the next message's, so the receiver knows what follows a header.
 * Sending the caller's bytes as their own frames spares a copy into a header+payload buffer, and
 * cutting large vectors into chunks keeps `ws` from assembling one 40 MB frame (DESIGN.md: Traps).
 *
 * A member whose group failed tells its linked peers why before closing, so that members not
 * linked to the dead one learn of it too:
 *
 *   FAILURE frame:  [u8 2][u8 code index][u16 summary bytes][i32 rank at fault][summary, UTF-8]
 *
 * All integers are little-endian.
 */
import type { CollectiveErrorCode } from '@ddp/core';

export const FRAME_KIND = { DATA: 1, FAILURE: 2 } as const;

/** Longest tag, in UTF-8 bytes, a link accepts (algorithm tags are a few dozen bytes). */
export const MAX_TAG_BYTES = 1024;
/** Longest failure summary sent; longer ones are cut. */
const MAX_SUMMARY_BYTES = 2048;
/** Largest header frame: what a link must accept besides payload chunks. */
export const MAX_HEADER_FRAME_BYTES = 8 + Math.max(MAX_TAG_BYTES, MAX_SUMMARY_BYTES);

/** The codes a FAILURE frame can carry, by index (the index is what travels). */
const FAILURE_CODES: readonly CollectiveErrorCode[] = ['PEER_FAILED', 'RECV_TIMEOUT', 'PAYLOAD_SIZE', 'TRANSPORT_CLOSED'];

export interface DataHeader {
  kind: typeof FRAME_KIND.DATA;
  tag: string;
  bytes: number;
}

export interface FailureNotice {
  kind: typeof FRAME_KIND.FAILURE;
  code: CollectiveErrorCode;
  /** The rank at fault. */
  rank: number;
  /** What happened, as the member that saw it first put it. */
  summary: string;
}

/** A frame that breaks the format above; the link that sent it is treated as failed. */
export class PeerFrameError extends Error {
  override readonly name = 'PeerFrameError';
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeDataHeader(tag: string, bytes: number): Uint8Array {
  const tagBytes = utf8.encode(tag);
  if (tagBytes.byteLength === 0 || tagBytes.byteLength > MAX_TAG_BYTES) {
    throw new RangeError(`peer frame: tag must be 1..${MAX_TAG_BYTES} UTF-8 bytes, got ${tagBytes.byteLength}`);
  }
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > 0xffffffff) {
    throw new RangeError(`peer frame: payload must be 0..4294967295 bytes, got ${bytes}`);
  }
  const frame = new Uint8Array(8 + tagBytes.byteLength);
  const dv = new DataView(frame.buffer);
  dv.setUint8(0, FRAME_KIND.DATA);
  dv.setUint16(2, tagBytes.byteLength, true);
  dv.setUint32(4, bytes, true);
  frame.set(tagBytes, 8);
  return frame;
}

export function encodeFailureNotice(code: CollectiveErrorCode, rank: number, summary: string): Uint8Array {
  let text = utf8.encode(summary);
  if (text.byteLength > MAX_SUMMARY_BYTES) text = utf8.encode(`${summary.slice(0, MAX_SUMMARY_BYTES / 4)}...`);
  const frame = new Uint8Array(8 + text.byteLength);
  const dv = new DataView(frame.buffer);
  dv.setUint8(0, FRAME_KIND.FAILURE);
  dv.setUint8(1, Math.max(0, FAILURE_CODES.indexOf(code)));
  dv.setUint16(2, text.byteLength, true);
  dv.setInt32(4, rank, true);
  frame.set(text, 8);
  return frame;
}

/** Reads a header frame (DATA or FAILURE); throws a PeerFrameError saying what is wrong. */
export function decodeHeaderFrame(frame: Uint8Array): DataHeader | FailureNotice {
  if (frame.byteLength < 8) throw new PeerFrameError(`header frame of ${frame.byteLength} bytes, expected at least 8`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const kind = dv.getUint8(0);
  const textBytes = dv.getUint16(2, true);
  if (frame.byteLength !== 8 + textBytes) {
    throw new PeerFrameError(`header frame of ${frame.byteLength} bytes, but its length field says ${8 + textBytes}`);
  }
  let text: string;
  try {
    text = fromUtf8.decode(frame.subarray(8));
  } catch {
    throw new PeerFrameError('header frame text is not valid UTF-8');
  }
  if (kind === FRAME_KIND.DATA) {
    if (textBytes === 0 || textBytes > MAX_TAG_BYTES) throw new PeerFrameError(`tag of ${textBytes} bytes, expected 1..${MAX_TAG_BYTES}`);
    return { kind: FRAME_KIND.DATA, tag: text, bytes: dv.getUint32(4, true) };
  }
  if (kind === FRAME_KIND.FAILURE) {
    const code = FAILURE_CODES[dv.getUint8(1)];
    if (code === undefined) throw new PeerFrameError(`failure notice with unknown code index ${dv.getUint8(1)}`);
    return { kind: FRAME_KIND.FAILURE, code, rank: dv.getInt32(4, true), summary: text };
  }
  throw new PeerFrameError(`unknown frame kind ${kind} (expected ${FRAME_KIND.DATA} data or ${FRAME_KIND.FAILURE} failure)`);
}
