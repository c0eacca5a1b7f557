/**
 * The coordinator container's probes.
 *
 * Liveness: GET /healthz, which needs no token, so the kubelet's own httpGet does it.
 *
 * Readiness: GET /readyz, which needs the token when one is set (always, here: the coordinator listens
 * on 0.0.0.0). An httpGet probe can only send headers written in the manifest, and the token must stay
 * in its Secret, so the probe is an exec of node inside the container, which has DDP_TOKEN in its
 * environment (from the Secret) like the coordinator. It reads DDP_PORT too, and speaks https when
 * DDP_TLS_CERT is set; it skips certificate checks because it only ever dials 127.0.0.1 in its own pod
 * (as the kubelet does for an https httpGet). Node's http module rather than fetch: fetch cannot skip
 * the check without undici's dispatcher, which Node 20 does not expose. Costs one node start (about 50
 * ms of CPU) per period.
 *
 * /readyz answers 200 once every --workers worker has joined and training started: the pod shows
 * READY 1/1 while it trains. The coordinator's Service therefore publishes not-ready addresses (see
 * k8s-manifests.ts), or the workers could never reach it to join.
 */
export const HEALTHZ_PATH = '/healthz';
export const READYZ_PATH = '/readyz';

/** Exits 0 if GET /readyz on this pod's coordinator answers 200 with the container's token, else 1. */
export const READYZ_PROBE_SCRIPT = [
  "const tls = !!process.env.DDP_TLS_CERT;",
  "const url = (tls ? 'https' : 'http') + '://127.0.0.1:' + (process.env.DDP_PORT || 7070) + '" + READYZ_PATH + "';",
  "const headers = process.env.DDP_TOKEN ? { authorization: 'Bearer ' + process.env.DDP_TOKEN } : {};",
  "require(tls ? 'https' : 'http').get(url, { headers, rejectUnauthorized: false, timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1))",
  ".on('error', () => process.exit(1)).on('timeout', () => process.exit(1));",
].join(' ');

export function readinessProbe() {
  return { exec: { command: ['node', '-e', READYZ_PROBE_SCRIPT] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 1 };
}

/** A coordinator busy evaluating may answer late: 6 misses, 10 s apart, before a restart. */
export function livenessProbe(portName: string, tls: boolean) {
  return { httpGet: { path: HEALTHZ_PATH, port: portName, ...(tls ? { scheme: 'HTTPS' } : {}) }, initialDelaySeconds: 15, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 };
}
