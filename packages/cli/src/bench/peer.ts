// The peer transport the allreduce benchmark's members use: the one ring-mode training uses.
export { PeerEndpoint, PEER_TOPOLOGIES, type PeerTopology, type PeerEndpointOptions } from '@ddp/worker';
