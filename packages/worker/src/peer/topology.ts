/**
 * Which members of a peer group hold a direct link. The allreduce algorithms only ever talk to
 * some peers (ring: the two neighbours; star: rank 0), so a group opens just those links:
 * 2 per member for a ring instead of N-1 for a full mesh.
 *
 * Every needed link is one WebSocket used in both directions, dialled by the higher rank and
 * accepted by the lower one, so each pair agrees on who dials without talking first.
 */
export const PEER_TOPOLOGIES = ['ring', 'star', 'full'] as const;
export type PeerTopology = (typeof PEER_TOPOLOGIES)[number];

function checkTopology(topology: unknown): asserts topology is PeerTopology {
  if (!(PEER_TOPOLOGIES as readonly unknown[]).includes(topology)) {
    throw new RangeError(`peer topology must be one of ${PEER_TOPOLOGIES.join(', ')}, got ${JSON.stringify(topology)}`);
  }
}

/** The ranks `rank` needs a link to under every listed topology (their union), ascending. */
export function linkedPeers(topologies: PeerTopology | readonly PeerTopology[], rank: number, size: number): number[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`linkedPeers: size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw new RangeError(`linkedPeers: rank must be an integer in [0, ${size - 1}], got ${rank}`);
  }
  const list: readonly PeerTopology[] = typeof topologies === 'string' ? [topologies] : topologies;
  if (!Array.isArray(list) || list.length === 0) throw new RangeError('linkedPeers: at least one topology is needed');
  const peers = new Set<number>();
  for (const topology of list) {
    checkTopology(topology);
    if (topology === 'full') {
      for (let r = 0; r < size; r++) peers.add(r);
    } else if (topology === 'ring') {
      peers.add((rank + 1) % size);
      peers.add((rank + size - 1) % size);
    } else if (rank === 0) {
      for (let r = 1; r < size; r++) peers.add(r);
    } else {
      peers.add(0);
    }
  }
  peers.delete(rank);
  return [...peers].sort((a, b) => a - b);
}

/** True when `rank` is the side that dials the link to `peer` (the higher rank dials). */
export const dialsPeer = (rank: number, peer: number): boolean => rank > peer;
