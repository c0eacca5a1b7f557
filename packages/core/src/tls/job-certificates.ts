/**
 * A job's certificates: a fresh CA (ECDSA P-256) and one node certificate it signs, valid for the
 * hosts given (DNS names and IP addresses as subjectAltNames) for both server and client use, so the
 * same files serve the coordinator's port, the workers' peer listeners and the peers' dialling (mutual
 * TLS). The CA's private key is dropped once the node certificate is signed: nothing else can ever be
 * signed by this CA, and there is one key fewer to guard. (Adding a host means a new set.)
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs it first
import { isIP } from 'node:net';
import { webcrypto, randomBytes } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 3600 * 1000;

export interface JobCertificates {
  /** PEM: the CA certificate every end verifies the others against. */
  caCert: string;
  /** PEM: the node certificate (server and client auth), signed by the CA. */
  nodeCert: string;
  /** PEM (PKCS#8): the node certificate's private key. */
  nodeKey: string;
}

/** A host of --hosts: a DNS name or an IP address; throws a RangeError naming it otherwise. */
export function checkHost(host: string): { type: 'dns' | 'ip'; value: string } {
  const h = host.trim();
  if (isIP(h)) return { type: 'ip', value: h };
  if (/^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(h)) return { type: 'dns', value: h };
  throw new RangeError(`'${host}' is neither a host name nor an IP address`);
}

const serial = () => {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // a positive serial
  return b.toString('hex');
};

export async function makeJobCertificates(hosts: readonly string[], days: number, now = new Date()): Promise<JobCertificates> {
  if (hosts.length === 0) throw new RangeError('at least one host is needed');
  const names = hosts.map(checkHost);
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const notBefore = new Date(now.getTime() - 5 * 60 * 1000); // some clock skew between hosts
  const notAfter = new Date(now.getTime() + days * DAY_MS);
  const caKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const caName = `CN=ddp job CA ${serial().slice(0, 8)}`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys as CryptoKeyPair,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as CryptoKey),
    ],
  });
  const nodeKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const node = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0]!.value}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: nodeKeys.publicKey as CryptoKey,
    signingKey: caKeys.privateKey as CryptoKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: n.type, value: n.value }))),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', nodeKeys.privateKey as CryptoKey));
  const nodeKey = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
  return { caCert: `${ca.toString('pem')}\n`, nodeCert: `${node.toString('pem')}\n`, nodeKey };
}
