// The local multi-process launcher behind `ddp train --workers N` (N >= 1).
export { runLocalCluster } from './local-cluster.js';
export type { LocalClusterOptions } from './local-cluster.js';
