import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { formatFlags, numOf, parseFlags, str, UsageError, type FlagSpec } from '../args.js';
import { checkHost, makeJobCertificates } from '@ddp/core';

const FLAGS: readonly FlagSpec[] = [
  { name: 'out', type: 'string', metavar: 'DIR', help: 'folder to write ca.crt, node.crt and node.key to (required; created if missing)' },
  { name: 'hosts', type: 'string', metavar: 'H1,H2,...', help: 'host names and IP addresses the node certificate is valid for: every address workers and peers dial (required)' },
  { name: 'days', type: 'int', min: 1, max: 3650, default: 30, metavar: 'N', help: 'validity of the certificates' },
  { name: 'force', type: 'bool', help: 'overwrite certificates already in --out' },
];

export const CERTS_HELP = `Usage: ddp certs --out DIR --hosts H1,H2,...

Makes a job CA and one node certificate it signs, valid for the hosts listed (as server and as client,
so the same three files serve the coordinator, the workers' ring peer links and their dialling):
  DIR/ca.crt     the CA certificate: give it to every process (--tls-ca)
  DIR/node.crt   the node certificate (--tls-cert)
  DIR/node.key   its private key, readable by its owner only (--tls-key)
The CA's own key is not kept, so nothing else can be signed with it; to add a host, make a new set.
Keys are ECDSA P-256; the certificates are valid from 5 minutes ago for --days.

Flags:
${formatFlags(FLAGS)}

Example:
  ddp certs --out certs --hosts coordinator.lan,10.0.0.1,10.0.0.2,10.0.0.3
  ddp coordinator start --workers 3 --host 0.0.0.0 --tls-cert certs/node.crt --tls-key certs/node.key
  ddp worker --connect wss://10.0.0.1:7070 --tls-ca certs/ca.crt --tls-cert certs/node.crt --tls-key certs/node.key`;

const FILES = ['ca.crt', 'node.crt', 'node.key'] as const;

export async function runCertsCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags(argv, FLAGS, { positionals: 0 });
  if (help) {
    console.log(CERTS_HELP);
    return 0;
  }
  const out = str(values, 'out');
  if (out === undefined) throw new UsageError('--out DIR is required (where to write ca.crt, node.crt and node.key)');
  const hostList = str(values, 'hosts');
  if (hostList === undefined || hostList.trim() === '') throw new UsageError('--hosts H1,H2,... is required (every name or address the processes dial)');
  const hosts = hostList.split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (const h of hosts) {
    try {
      checkHost(h);
    } catch (err) {
      throw new UsageError(`--hosts: ${(err as Error).message}`);
    }
  }
  const existing = FILES.filter((f) => existsSync(path.join(out, f)));
  if (existing.length > 0 && values.force !== true) throw new UsageError(`${out} already holds ${existing.join(', ')}: pass --force to replace them`);
  const certs = await makeJobCertificates(hosts, numOf(values, 'days'));
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'ca.crt'), certs.caCert, { mode: 0o644 });
  writeFileSync(path.join(out, 'node.crt'), certs.nodeCert, { mode: 0o644 });
  const keyFile = path.join(out, 'node.key');
  writeFileSync(keyFile, certs.nodeKey, { mode: 0o600 });
  chmodSync(keyFile, 0o600); // an existing file keeps its mode on write
  console.log(`ddp certs: wrote ${FILES.map((f) => path.join(out, f)).join(', ')} (valid ${numOf(values, 'days')} days for ${hosts.join(', ')})`);
  return 0;
}
