// The coordinator: job/ (the job loop and the Trainer interface; one process), net/ (the port: the
// WebSocket server, the HTTP endpoints, the worker pool), observe/ (Prometheus metrics, the /events stream and the dashboard, from the events), star/ (star mode's trainer and step), ring/ (ring mode's trainer and
// its run bookkeeping).
export * from './job/index.js';
export * from './net/coordinator-server.js';
export * from './net/worker-pool.js';
export * from './net/http-endpoints.js';
export * from './observe/metrics.js';
export * from './observe/event-stream.js';
export * from './star/star-step.js';
export * from './star/star-trainer.js';
export * from './ring/ring-steps.js';
export * from './ring/ring-trainer.js';
