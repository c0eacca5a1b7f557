/**
 * The opening of a peer link: an HTTP upgrade whose headers say who is dialling. The dialler
 * sends the shared token (`Authorization: Bearer`), its rank, the group's size and id, and the
 * link version; the listener checks them before any WebSocket exists and refuses with a status
 * and a one-line reason (header X-Ddp-Peer-Refusal). The listener's answer names its own rank,
 * so a dialler that reached the wrong member (a stale address) finds out at once.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { tokensMatch } from '@ddp/core';

/** Bump on any change to the link's frames or handshake. */
export const PEER_LINK_VERSION = 1;

export const PEER_HEADER = {
  RANK: 'x-ddp-peer-rank',
  SIZE: 'x-ddp-peer-size',
  GROUP: 'x-ddp-peer-group',
  VERSION: 'x-ddp-peer-version',
  REFUSAL: 'x-ddp-peer-refusal',
} as const;

export interface PeerIdentity {
  token: string;
  rank: number;
  size: number;
  group: string;
}

/** The headers a dialling member sends. */
export function helloHeaders(me: PeerIdentity): Record<string, string> {
  return {
    authorization: `Bearer ${me.token}`,
    [PEER_HEADER.RANK]: String(me.rank),
    [PEER_HEADER.SIZE]: String(me.size),
    [PEER_HEADER.GROUP]: encodeURIComponent(me.group),
    [PEER_HEADER.VERSION]: String(PEER_LINK_VERSION),
  };
}

export type HelloVerdict = { ok: true; rank: number } | { ok: false; status: 400 | 401 | 409; reason: string };

export interface HelloExpectation extends PeerIdentity {
  /** Ranks allowed to dial this member (the topology's higher-ranked neighbours). */
  acceptFrom: readonly number[];
  /** True when `rank` already has a link here. */
  attached(rank: number): boolean;
}

const one = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Decides on a dialler's headers: its rank, or a refusal with a status and a reason. */
export function checkPeerHello(headers: IncomingHttpHeaders, me: HelloExpectation): HelloVerdict {
  const auth = one(headers, 'authorization') ?? '';
  if (!auth.startsWith('Bearer ') || !tokensMatch(me.token, auth.slice(7))) {
    return { ok: false, status: 401, reason: 'wrong or missing token' };
  }
  const version = one(headers, PEER_HEADER.VERSION);
  if (version !== String(PEER_LINK_VERSION)) {
    return { ok: false, status: 400, reason: `peer link version ${version ?? '(none)'}, expected ${PEER_LINK_VERSION}` };
  }
  const rawRank = one(headers, PEER_HEADER.RANK) ?? '';
  const rank = /^\d{1,9}$/.test(rawRank) ? Number(rawRank) : NaN;
  if (!Number.isInteger(rank)) return { ok: false, status: 400, reason: `${PEER_HEADER.RANK} must be an integer, got '${rawRank}'` };
  const size = one(headers, PEER_HEADER.SIZE);
  let group: string;
  try {
    group = decodeURIComponent(one(headers, PEER_HEADER.GROUP) ?? '');
  } catch {
    return { ok: false, status: 400, reason: `${PEER_HEADER.GROUP} is not valid percent-encoding` };
  }
  if (size !== String(me.size) || group !== me.group) {
    return { ok: false, status: 409, reason: `group '${group}' of size ${size}, but rank ${me.rank} is in group '${me.group}' of size ${me.size}` };
  }
  if (!me.acceptFrom.includes(rank)) {
    return { ok: false, status: 409, reason: `rank ${rank} is not expected to dial rank ${me.rank} (expected: ${me.acceptFrom.join(', ') || 'nobody'})` };
  }
  if (me.attached(rank)) return { ok: false, status: 409, reason: `rank ${rank} is already linked to rank ${me.rank}` };
  return { ok: true, rank };
}
