/**
 * The proxy's status pages on its own port: `/` (the live page),
 * `/status.json` (the same data for scripts) and `/metrics` (Prometheus
 * text format). All three are read-only (GET and HEAD), answered only when
 * `Host` names the proxy itself (http.ts checks it with own-host.ts before
 * any page of the proxy is served), and, with `--auth`,
 * only to a client that presents the credentials (Basic, as
 * `Authorization` from a browser or `Proxy-Authorization`). They show no
 * token, certificate or credential: the snapshot holds none.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asKubesocksError } from '../errors.js';
import { PROMETHEUS_CONTENT_TYPE } from '../observe/metrics.js';
import { formatHostPort, unmapIPv4 } from '../net/address.js';
import { BASIC_CHALLENGE } from './auth.js';
import { presentsCredentials, proxyAuthError } from './http-responses.js';
import type { ClientConnection } from './client-connection.js';
import { renderStatusPage, STATUS_PAGE_CSP } from './status-page.js';

export const STATUS_PATHS: ReadonlySet<string> = new Set(['/', '/status.json', '/metrics']);

/** Headers every status response carries: not cached, not sniffed, not framed, not leaked by Referer. */
const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

export interface StatusRequest {
  conn: ClientConnection;
  req: IncomingMessage;
  res: ServerResponse;
  pathname: string;
  /** The client addressed us as a proxy (absolute-form): it gets 407, not 401, without credentials. */
  asProxy: boolean;
  /** Whether the request carries the proxy's credentials (true when none are set). */
  authorized: boolean;
}

/** Answers one request for a path in STATUS_PATHS. */
export function serveStatus({ conn, req, res, pathname, asProxy, authorized }: StatusRequest): void {
  const { socket, ctx } = conn;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    reply(res, 405, 'text/plain; charset=utf-8', `${req.method ?? ''} is not allowed on ${pathname}: the status pages are read-only\n`, { Allow: 'GET, HEAD' });
    return;
  }
  if (!authorized) {
    const deny = (): void => {
      if (asProxy) reply(res, 407, 'text/plain; charset=utf-8', 'proxy credentials required\n', { 'Proxy-Authenticate': BASIC_CHALLENGE });
      else reply(res, 401, 'text/plain; charset=utf-8', 'credentials required: the proxy runs with --auth\n', { 'WWW-Authenticate': BASIC_CHALLENGE });
    };
    // Without credentials this is a browser's first request: answered at once, not logged.
    // Wrong ones are a guess: logged (summarised per address) and answered after the address's delay.
    if (!presentsCredentials(req, 'proxy-authorization', 'authorization')) {
      deny();
      return;
    }
    const error = ctx.wrongCredentials.answer(conn, { presented: true, error: proxyAuthError(), answer: deny, inHandshake: false });
    conn.report({ protocol: 'http', target: pathname, via: 'proxy', error });
    return;
  }
  if (pathname === '/metrics') {
    reply(res, 200, PROMETHEUS_CONTENT_TYPE, ctx.observer.metrics());
    return;
  }
  const listen = formatHostPort(unmapIPv4(socket.localAddress ?? '127.0.0.1'), socket.localPort ?? 0);
  ctx.observer
    .snapshot({ listen, auth: ctx.checker !== undefined })
    .then((snapshot) => {
      if (pathname === '/status.json') reply(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(snapshot, null, 2)}\n`);
      else reply(res, 200, 'text/html; charset=utf-8', renderStatusPage(snapshot), { 'Content-Security-Policy': STATUS_PAGE_CSP });
    })
    .catch((err: unknown) => {
      ctx.reportError(asKubesocksError(err, 'PROTOCOL_ERROR'));
      if (!res.headersSent) reply(res, 500, 'text/plain; charset=utf-8', 'the status snapshot failed; see the proxy log\n');
      else res.destroy();
    });
}

function reply(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { ...COMMON_HEADERS, ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  // HEAD: Node's server sends the headers only.
  res.end(body);
}
