// Counts the payload bytes an allreduce hands to the transport, so that a run can report what
// actually travelled between the workers (and show that fp16 halves it).
import type { Transport } from '@ddp/core';

export class CountingTransport implements Transport {
  bytesSent = 0;

  constructor(private readonly inner: Transport) {}

  get rank(): number {
    return this.inner.rank;
  }

  get size(): number {
    return this.inner.size;
  }

  send(to: number, tag: string, payload: Uint8Array): Promise<void> {
    this.bytesSent += payload.byteLength;
    return this.inner.send(to, tag, payload);
  }

  recv(from: number, tag: string): Promise<Uint8Array> {
    return this.inner.recv(from, tag);
  }
}
