// Ring mode on the worker: the replica it holds, the inputs it prepares ahead, its part in the ring.
export { RingMember, type RingMemberOptions } from './ring-member.js';
export { NonFiniteGradient, Replica, type ReplicaSnapshot } from './replica.js';
export { CountingTransport } from './counting-transport.js';
export { ShardPrefetch } from './shard-inputs.js';
