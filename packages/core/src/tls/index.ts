export { readTlsCa, readTlsMaterial, TlsConfigError, type TlsMaterial } from './tls-material.js';
export { createPortServer, REFUSAL_HEADER, type PortServer, type PortServerOptions } from './tls-port.js';
export { refusalFrom, tlsFailure } from './tls-failure.js';
export { checkHost, makeJobCertificates, type JobCertificates } from './job-certificates.js';
