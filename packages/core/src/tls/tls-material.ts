/**
 * The certificate files a TLS link is configured with (--tls-cert, --tls-key, --tls-ca), read and
 * checked at start: a missing file, a file that is not PEM, or a key that does not belong to the
 * certificate is a one-line TlsConfigError naming the flag, before anything listens or dials.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

export interface TlsMaterial {
  /** This end's certificate chain (PEM). */
  cert: Buffer;
  /** Its private key (PEM). */
  key: Buffer;
  /** The CA the other end's certificate must verify against (PEM); absent: the system's CAs. */
  ca?: Buffer;
}

/** A bad TLS setting (a usage error: exit 2). */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

function readPem(file: string, flag: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TlsConfigError(`${flag} ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}`);
  }
  const text = bytes.toString('latin1');
  const ok = kind === 'CERTIFICATE' ? text.includes('-----BEGIN CERTIFICATE-----') : /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text);
  if (!ok) throw new TlsConfigError(`${flag} ${file}: not a PEM ${kind.toLowerCase()} (ddp certs writes ca.crt, node.crt and node.key)`);
  return bytes;
}

/** Reads a CA file alone (a worker that only verifies the coordinator). */
export function readTlsCa(file: string, flag = '--tls-ca'): Buffer {
  const ca = readPem(file, flag, 'CERTIFICATE');
  try {
    createSecureContext({ ca });
  } catch (err) {
    throw new TlsConfigError(`${flag} ${file}: ${(err as Error).message}`);
  }
  return ca;
}

/** Reads and checks a certificate and its key (and a CA, when given). */
export function readTlsMaterial(files: { cert: string; key: string; ca?: string }, flags = { cert: '--tls-cert', key: '--tls-key', ca: '--tls-ca' }): TlsMaterial {
  const cert = readPem(files.cert, flags.cert, 'CERTIFICATE');
  const key = readPem(files.key, flags.key, 'PRIVATE KEY');
  const ca = files.ca === undefined ? undefined : readTlsCa(files.ca, flags.ca);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const why = (err as Error).message;
    throw new TlsConfigError(/mismatch/i.test(why) ? `${flags.key} ${files.key} is not the key of ${flags.cert} ${files.cert}` : `${flags.cert}/${flags.key}: ${why}`);
  }
  return { cert, key, ...(ca ? { ca } : {}) };
}
