/**
 * One message per binary WebSocket frame, msgpack-encoded. The Packr has `moreTypes` on: a default
 * Packr silently writes wrong bytes for a Float32Array (DESIGN.md, Traps), with it typed arrays
 * travel as a msgpack extension and come back as the same type, copied into an aligned buffer.
 * Records (msgpackr's shared structures) are off so that every frame decodes on its own.
 */
import { Packr } from 'msgpackr';
import type { Message } from './messages.js';
import { ProtocolError } from './protocol-error.js';

const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

/** The frame for a message (a view into msgpackr's output buffer, which later calls do not overwrite). */
export function encodeMessage(message: Message): Uint8Array {
  return packr.pack(message);
}

/**
 * Decodes one frame into a plain value, NOT yet a trusted message: pass it to the validators.
 * Undecodable bytes (truncated, trailing data, a bad extension) become a DDP_BAD_MESSAGE error.
 */
export function decodeFrame(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ProtocolError('DDP_BAD_MESSAGE', `undecodable frame of ${bytes.byteLength} bytes (${why})`);
  }
}
