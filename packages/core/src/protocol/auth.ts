// The shared-token check. Both tokens are hashed first so that the comparison takes the same time
// whatever the lengths and contents (timingSafeEqual needs equal lengths).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** True when `given` is the expected token. */
export function tokensMatch(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

/** A fresh random token (what `ddp train` hands its own coordinator and workers). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** The environment variable both commands read the token from when --token is absent. */
export const TOKEN_ENV = 'DDP_TOKEN';
/** The coordinator's read-only token for its HTTP endpoints (--view-token): never accepted from a worker. */
export const VIEW_TOKEN_ENV = 'DDP_VIEW_TOKEN';
