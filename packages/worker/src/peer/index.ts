// Peer links between workers (ring mode): the WebSocket Transport, its rendezvous, and their parts.
export { PEER_TOPOLOGIES, linkedPeers, dialsPeer, type PeerTopology } from './topology.js';
export {
  WsTransport,
  PEER_CLOSE,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  resolveTransportOptions,
  linkMaxPayload,
  type WsTransportOptions,
  type ResolvedTransportOptions,
} from './ws-transport.js';
export { PeerEndpoint, type PeerEndpointOptions } from './peer-endpoint.js';
export { createLocalPeerGroup, type LocalPeerGroupOptions } from './local-peer-group.js';
export { PEER_LINK_VERSION, PEER_HEADER, helloHeaders, checkPeerHello, type PeerIdentity, type HelloVerdict } from './peer-handshake.js';
export { FRAME_KIND, MAX_TAG_BYTES, PeerFrameError, encodeDataHeader, encodeFailureNotice, decodeHeaderFrame } from './peer-frame.js';
