/**
 * Ring peer links over mutual TLS (PeerEndpoint with `tls`): the transport behaves as over plain
 * WebSockets (the conformance suite, and an allreduce bitwise equal to the in-memory one), and the
 * links are refused, with the DDP_* code in the error, when a certificate does not verify either
 * way or when one side speaks plaintext.
 */
import { CollectiveError, createMemoryTransports, makeJobCertificates, ringAllreduce, type TlsMaterial } from '@ddp/core';
import { transportConformance, type MakeConformanceGroup } from '@ddp/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLocalPeerGroup } from './local-peer-group.js';
import { PeerEndpoint } from './peer-endpoint.js';

type PeerTls = TlsMaterial & { ca: Buffer };
const material = async (hosts = ['127.0.0.1']): Promise<PeerTls> => {
  const c = await makeJobCertificates(hosts, 1);
  return { cert: Buffer.from(c.nodeCert), key: Buffer.from(c.nodeKey), ca: Buffer.from(c.caCert) };
};

// One job's certificates for the whole file (the conformance suite needs them when it declares its tests).
const job = await material();

const tlsGroup: MakeConformanceGroup = async (n, { recvTimeoutMs }) => {
  const ts = await createLocalPeerGroup(n, { topology: 'full', recvTimeoutMs, tls: job });
  return {
    transports: ts,
    kill: (rank) => ts[rank]!.destroy(),
    close: async () => {
      await Promise.all(ts.map((t) => t.close()));
    },
  };
};
transportConformance('WebSocket over mutual TLS', tlsGroup);

const rejection = async (ps: Promise<unknown>[]) => {
  const settled = await Promise.allSettled(ps);
  return settled.map((s) => (s.status === 'rejected' ? (s.reason as CollectiveError) : null));
};

describe('ring peer links over TLS', () => {
  let other: PeerTls; // another job's CA and node certificate
  let wrongHost: PeerTls; // the job CA, but a certificate for another address
  beforeAll(async () => {
    other = await material();
    const c = await makeJobCertificates(['10.9.9.9'], 1);
    wrongHost = { cert: Buffer.from(c.nodeCert), key: Buffer.from(c.nodeKey), ca: Buffer.from(c.caCert) };
  });

  it('listens on wss:// and ring-allreduces to the same bits as the in-memory transport', async () => {
    const ts = await createLocalPeerGroup(3, { topology: 'ring', tls: job });
    const inputs = [0, 1, 2].map((r) => Float32Array.from({ length: 10_001 }, (_, i) => Math.sin(i * 0.37 + r) * 10 ** ((i % 7) - 3)));
    const mem = createMemoryTransports(3);
    const want = await Promise.all(mem.map((t, r) => ringAllreduce(t, inputs[r]!)));
    const got = await Promise.all(ts.map((t, r) => ringAllreduce(t, inputs[r]!)));
    for (let r = 0; r < 3; r++) expect(Buffer.from(got[r]!.buffer).equals(Buffer.from(want[r]!.buffer))).toBe(true);
    await Promise.all(ts.map((t) => t.close()));
    const ep = await PeerEndpoint.listen({ rank: 0, size: 2, token: 't', tls: job });
    expect(ep.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    await ep.close();
  });

  it('refuses a peer whose certificate another CA signed, both ways, with DDP_TLS_UNVERIFIED', async () => {
    const common = { size: 2, group: 'g', token: 't', topology: 'ring' as const, connectTimeoutMs: 1500 };
    const e0 = await PeerEndpoint.listen({ ...common, rank: 0, tls: job });
    const e1 = await PeerEndpoint.listen({ ...common, rank: 1, tls: other });
    const urls = [e0.url, e1.url];
    const [r0, r1] = await rejection([e0.connect(urls), e1.connect(urls)]);
    // Rank 1 dials rank 0: it cannot verify rank 0's certificate against its own CA.
    expect(r1).toBeInstanceOf(CollectiveError);
    expect(r1!.code).toBe('PEER_FAILED');
    expect(r1!.message).toMatch(/refused the link: DDP_TLS_UNVERIFIED: the certificate of wss:\/\/127\.0\.0\.1:\d+\/ does not verify/);
    expect(r0!.code).toBe('RECV_TIMEOUT');
    await Promise.all([e0.close(), e1.close()]);
  });

  it('refuses a certificate for another address (its name is checked, not only its CA)', async () => {
    const common = { size: 2, group: 'g', token: 't', topology: 'ring' as const, connectTimeoutMs: 1500 };
    const e0 = await PeerEndpoint.listen({ ...common, rank: 0, tls: wrongHost });
    const e1 = await PeerEndpoint.listen({ ...common, rank: 1, tls: wrongHost });
    const [, r1] = await rejection([e0.connect([e0.url, e1.url]), e1.connect([e0.url, e1.url])]);
    expect(r1!.message).toMatch(/DDP_TLS_UNVERIFIED: .*ERR_TLS_CERT_ALTNAME_INVALID/);
    await Promise.all([e0.close(), e1.close()]);
  });

  it('refuses a plaintext dialler on a TLS listener (DDP_TLS_REQUIRED), and a TLS dialler on a plaintext one (DDP_TLS_UNSUPPORTED)', async () => {
    const common = { size: 2, group: 'g', token: 't', topology: 'ring' as const, connectTimeoutMs: 1500 };
    let e0 = await PeerEndpoint.listen({ ...common, rank: 0, tls: job });
    let e1 = await PeerEndpoint.listen({ ...common, rank: 1 });
    const plain = e0.url.replace('wss:', 'ws:'); // rank 1 holds no certificate: it dials in plaintext
    let [, r1] = await rejection([e0.connect([e0.url, e1.url]), e1.connect([plain, e1.url])]);
    expect(r1!.message).toMatch(/refused the link: HTTP 400: DDP_TLS_REQUIRED: this ring member links over TLS only/);
    await Promise.all([e0.close(), e1.close()]);

    e0 = await PeerEndpoint.listen({ ...common, rank: 0 });
    e1 = await PeerEndpoint.listen({ ...common, rank: 1, tls: job });
    [, r1] = await rejection([e0.connect([e0.url.replace('ws:', 'wss:'), e1.url]), e1.connect([e0.url.replace('ws:', 'wss:'), e1.url])]);
    expect(r1!.message).toMatch(/DDP_TLS_UNSUPPORTED: wss:\/\/127\.0\.0\.1:\d+\/ does not speak TLS/);
    await Promise.all([e0.close(), e1.close()]);
  });

  it('the listener refuses a dialler whose own certificate another CA signed (mutual TLS)', async () => {
    const common = { size: 2, group: 'g', token: 't', topology: 'ring' as const, connectTimeoutMs: 1500 };
    const e0 = await PeerEndpoint.listen({ ...common, rank: 0, tls: job });
    // Rank 1 trusts the job CA (so it accepts rank 0), but its own certificate is another job's.
    const e1 = await PeerEndpoint.listen({ ...common, rank: 1, tls: { cert: other.cert, key: other.key, ca: job.ca } });
    const [, r1] = await rejection([e0.connect([e0.url, e1.url]), e1.connect([e0.url, e1.url])]);
    expect(r1!.code).toBe('PEER_FAILED');
    expect(r1!.message).toMatch(/refused the link: HTTP 403: DDP_TLS_UNVERIFIED: the certificate of rank 1 does not verify against this member's CA/);
    await Promise.all([e0.close(), e1.close()]);
  });
});
