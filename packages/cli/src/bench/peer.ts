// The peer transport from @ddp/worker. Until packages/worker/src/index.ts re-exports peer/ (its owner
// adds `export * from './peer/index.js'`), it is reached by path: the package's "exports" map only
// opens its index. Then this becomes `export ... from '@ddp/worker'`.
export { PeerEndpoint, PEER_TOPOLOGIES, type PeerTopology, type PeerEndpointOptions } from '../../../worker/dist/peer/index.js';
