/**
 * The HTTP side of the coordinator's port (the WebSocket upgrade is handled beside it, in
 * coordinator-server.ts):
 *
 *   GET /healthz   200 "ok" while the process lives; never needs the token.
 *   GET /readyz    200 once training has started, 503 before (and after the job), one line saying why.
 *   GET /metrics   Prometheus text format.
 *   GET /          the live dashboard (observe/dashboard.ts), when `events` is given;
 *   GET /events    the run's events as Server-Sent Events (observe/event-stream.ts), history first;
 *   GET /assets/*  the dashboard's script and style, and uPlot's.
 *   anything else  404.
 *
 * With a token set, everything but /healthz needs it, as `Authorization: Bearer TOKEN` or `?token=TOKEN`,
 * compared in constant time (tokensMatch); 401 otherwise. The same rule as for workers. A view token
 * (`viewToken`, --view-token) is accepted here too, but never by the WebSocket handshake: it lets one
 * watch a run without being able to join it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tokensMatch } from '@ddp/core';
import { dashboardAsset, dashboardPage } from '../observe/dashboard.js';
import type { EventStream } from '../observe/event-stream.js';

export interface HttpEndpoints {
  /** What /readyz answers: null when ready, else why not (one line). */
  readiness?: () => string | null;
  /** What /metrics serves; absent: 404. */
  metrics?: { contentType: string; text(): Promise<string> };
  /** What /events streams; absent: no /, /events or /assets (404). */
  events?: EventStream;
  /** A read-only token: grants the HTTP endpoints, not joining as a worker ('' or absent: none). */
  viewToken?: string;
}

export interface HttpContext extends HttpEndpoints {
  /** The shared token ('' accepts anyone). */
  token: string;
  /** Default readiness, when `readiness` is not given. */
  defaultReadiness: () => string | null;
}

const DASHBOARD = new Set(['/', '/events']);
const KNOWN = new Set(['/healthz', '/readyz', '/metrics', ...DASHBOARD]);
const ASSETS = '/assets/';

function reply(res: ServerResponse, status: number, body: string | Buffer, contentType = 'text/plain; charset=utf-8', head = false): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

/** Whether a request presenting `given` may see the endpoints behind the token (all but /healthz): the token or the view token, when one is set. */
function allowed(ctx: HttpContext, given: string): boolean {
  if (ctx.token === '') return true;
  return tokensMatch(ctx.token, given) || (ctx.viewToken !== undefined && ctx.viewToken !== '' && tokensMatch(ctx.viewToken, given));
}

/** The token a request presents: the Authorization bearer, else ?token=; '' when none. */
function presented(req: IncomingMessage, url: URL): string {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    return m ? m[1]! : '';
  }
  return url.searchParams.get('token') ?? '';
}

export function serveHttp(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): void {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://coordinator');
  } catch {
    return reply(res, 400, 'bad request URL\n');
  }
  const path = url.pathname;
  const known = path.startsWith(ASSETS) || KNOWN.has(path);
  const absent = (path === '/metrics' && !ctx.metrics) || ((DASHBOARD.has(path) || path.startsWith(ASSETS)) && !ctx.events);
  if (!known || absent) return reply(res, 404, `not found: ${path} (try /, /healthz, /readyz, /metrics)\n`);
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD');
    return reply(res, 405, `method ${req.method} not allowed\n`);
  }
  const given = presented(req, url);
  if (path !== '/healthz' && !allowed(ctx, given)) {
    res.setHeader('www-authenticate', 'Bearer');
    return reply(res, 401, 'unauthorized: give the token as "Authorization: Bearer TOKEN" or ?token=TOKEN\n', undefined, head);
  }
  switch (path) {
    case '/healthz':
      return reply(res, 200, 'ok\n', undefined, head);
    case '/readyz': {
      const why = (ctx.readiness ?? ctx.defaultReadiness)();
      return why === null ? reply(res, 200, 'ready\n', undefined, head) : reply(res, 503, `${why.replace(/\s*\n\s*/g, ' ')}\n`, undefined, head);
    }
    case '/':
      return reply(res, 200, dashboardPage(ctx.token === '' ? '' : given), 'text/html; charset=utf-8', head);
    case '/events':
      if (head) return reply(res, 200, '', 'text/event-stream; charset=utf-8', true);
      return ctx.events!.serve(req, res);
    case '/metrics': {
      const m = ctx.metrics!;
      m.text().then(
        (text) => reply(res, 200, text, m.contentType, head),
        (err: unknown) => reply(res, 500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
  }
  // /assets/NAME
  let asset;
  try {
    asset = dashboardAsset(path.slice(ASSETS.length));
  } catch (err) {
    return reply(res, 500, `asset unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  if (!asset) return reply(res, 404, `not found: ${path}\n`);
  res.writeHead(200, { 'content-type': asset.contentType, 'content-length': asset.body.length, 'cache-control': 'no-cache' });
  res.end(head ? undefined : asset.body);
}
