/**
 * What a failed dial means when TLS is involved: a certificate that does not verify, a TLS client
 * on a plaintext port, or our certificate refused by the other end. These are not worth retrying
 * (the same certificates give the same answer), so dialers end at once with the DDP_* code.
 */
import { ProtocolError, isProtocolErrorCode } from '../protocol/protocol-error.js';

/** OpenSSL / Node verification results of the other end's certificate. */
const UNVERIFIED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The ProtocolError a dial error stands for, or null for an ordinary network error (retry those). */
export function tlsFailure(err: Error & { code?: string; reason?: string }, url: string): ProtocolError | null {
  const code = err.code ?? '';
  if (UNVERIFIED.has(code)) {
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ` (${err.reason ?? err.message}; list it in ddp certs --hosts)` : ' (is --tls-ca the job CA that signed it? ddp certs writes ca.crt)';
    return new ProtocolError('DDP_TLS_UNVERIFIED', `the certificate of ${url} does not verify: ${code}${hint}`);
  }
  if (/ALERT_(?:CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE)/.test(code) || /alert (?:certificate required|bad certificate|unknown ca)/i.test(err.message)) {
    return new ProtocolError('DDP_TLS_UNVERIFIED', `${url} refused our certificate (${code || err.message}): give --tls-cert/--tls-key signed by the job CA`);
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || (code === 'EPROTO' && /wrong version number|packet length too long|http request/i.test(err.message))) {
    return new ProtocolError('DDP_TLS_UNSUPPORTED', `${url} does not speak TLS: dial it with ws:// (or give its side --tls-cert and --tls-key)`);
  }
  return null;
}

/** A refusal from the header of an HTTP answer to an upgrade ("CODE: message"), or null. */
export function refusalFrom(header: string | string[] | undefined): ProtocolError | null {
  const v = Array.isArray(header) ? header[0] : header;
  const m = v?.match(/^(DDP_[A-Z_]+): (.*)$/);
  if (!m || !isProtocolErrorCode(m[1])) return null;
  return new ProtocolError(m[1], m[2]!);
}
