/**
 * The wire protocol's version, sent by the worker in `hello` and echoed in `welcome`. Bump it on any
 * change to a message's fields or meaning: a coordinator refuses a worker that speaks another version
 * (code DDP_VERSION) instead of misreading its frames.
 */
export const PROTOCOL_VERSION = 6;
