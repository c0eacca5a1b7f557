/**
 * TagMailbox on its own: what the transports build on but the conformance suite cannot see from
 * outside (the timeout calling back into the transport once, deliveries after a failure).
 * Matching, buffering and the failure rules are checked on both transports by transport-conformance.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CollectiveError } from './collective-error.js';
import { TagMailbox, type TransportFailure } from './tag-mailbox.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('TagMailbox', () => {
  it('on a receive timeout, rejects that receive, fails itself, then asks the transport once to fail the group', async () => {
    vi.useFakeTimers();
    const calls: Array<[TransportFailure, TransportFailure | undefined]> = [];
    const box: TagMailbox = new TagMailbox({ rank: 1, recvTimeoutMs: 50, failGroup: (f) => calls.push([f, box.failure]) });
    const late = box.recv(0, 'late');
    const other = box.recv(2, 'other');
    const lateDone = expect(late).rejects.toMatchObject({ code: 'RECV_TIMEOUT', rank: 0, message: 'rank 1: no message "late" from rank 0 within 50 ms (waited at rank 1)' });
    const otherDone = expect(other).rejects.toMatchObject({ code: 'RECV_TIMEOUT', rank: 0, message: 'rank 1 recv(from 2, "other"): no message "late" from rank 0 within 50 ms (waited at rank 1)' });
    await vi.advanceTimersByTimeAsync(50);
    await Promise.all([lateDone, otherDone]);
    expect(calls).toHaveLength(1); // the second receive's timer was cleared by the failure
    const [failure, seenByTransport] = calls[0]!;
    expect(failure).toEqual({ code: 'RECV_TIMEOUT', rank: 0, summary: 'no message "late" from rank 0 within 50 ms (waited at rank 1)' });
    expect(seenByTransport).toBe(failure); // the mailbox had already failed when the transport heard
    await expect(box.recv(2, 'later')).rejects.toBeInstanceOf(CollectiveError);
  });

  it('keeps the first failure, and ignores deliveries once failed', async () => {
    const box = new TagMailbox({ rank: 0, failGroup: () => expect.fail('no timeout is set') });
    box.deliver(1, 't', Uint8Array.of(1));
    expect(box.hasBuffered(1, 't')).toBe(true);
    expect(box.fail({ code: 'PEER_FAILED', rank: 1, summary: 'rank 1 failed (first)' })).toBe(true);
    expect(box.fail({ code: 'TRANSPORT_CLOSED', rank: 0, summary: 'the transport was closed' })).toBe(false);
    expect(box.hasBuffered(1, 't')).toBe(false); // dropped with the failure
    box.deliver(1, 't', Uint8Array.of(2));
    await expect(box.recv(1, 't')).rejects.toMatchObject({ code: 'PEER_FAILED', rank: 1, message: 'rank 0 recv(from 1, "t"): rank 1 failed (first)' });
    expect(box.errorFor('send(to 1, "t")').message).toBe('rank 0 send(to 1, "t"): rank 1 failed (first)');
  });

  it('reports the tag of a receive pending on a rank, and none once it is served', async () => {
    const box = new TagMailbox({ rank: 0, failGroup: () => {} });
    expect(box.pendingTagFrom(2)).toBeUndefined();
    const got = box.recv(2, 'x');
    expect(box.pendingTagFrom(2)).toBe('x');
    expect(box.pendingTagFrom(1)).toBeUndefined();
    box.deliver(2, 'x', Uint8Array.of(7));
    expect([...(await got)]).toEqual([7]);
    expect(box.pendingTagFrom(2)).toBeUndefined();
  });

  it('rejects a bad recvTimeoutMs at once', () => {
    expect(() => new TagMailbox({ rank: 0, recvTimeoutMs: -1, failGroup: () => {} })).toThrow(RangeError);
  });
});
