/**
 * A whole peer group inside one process, over real sockets on 127.0.0.1: for tests, and for a
 * quick look at what the socket path costs next to the in-memory transport.
 *
 *   const ts = await createLocalPeerGroup(4, { topology: ['ring', 'star'] });
 *   await Promise.all(ts.map((t, r) => ringAllreduce(t, inputs[r])));
 *   await Promise.all(ts.map((t) => t.close()));
 */
import { randomBytes } from 'node:crypto';
import { PeerEndpoint, type PeerEndpointOptions } from './peer-endpoint.js';
import type { WsTransport } from './ws-transport.js';

export type LocalPeerGroupOptions = Omit<PeerEndpointOptions, 'rank' | 'size' | 'token' | 'port'> & { token?: string };

export async function createLocalPeerGroup(size: number, opts: LocalPeerGroupOptions = {}): Promise<WsTransport[]> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`createLocalPeerGroup: size must be an integer >= 1, got ${size}`);
  const token = opts.token ?? randomBytes(16).toString('base64url');
  const group = opts.group ?? `local-${randomBytes(6).toString('hex')}`;
  const endpoints = await Promise.all(Array.from({ length: size }, (_, rank) => PeerEndpoint.listen({ ...opts, rank, size, token, group })));
  const urls = endpoints.map((e) => e.url);
  try {
    return await Promise.all(endpoints.map((e) => e.connect(urls)));
  } catch (err) {
    await Promise.all(endpoints.map((e) => e.close()));
    throw err;
  }
}
