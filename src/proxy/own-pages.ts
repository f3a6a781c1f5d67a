/**
 * The proxy's own pages, served on the proxy port: `/healthz`,
 * `/proxy.pac` and the status pages (status-pages.ts), for origin-form requests whose Host names the proxy and for
 * absolute-form requests that name the proxy's own address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asKubesocksError } from '../errors.js';
import { formatHostPort, unmapIPv4 } from '../net/address.js';
import type { ProxyTarget } from '../net/connector.js';
import { isLoopbackHost } from '../net/loopback.js';
import { BASIC_CHALLENGE } from './auth.js';
import type { ClientConnection, ProxyContext } from './client-connection.js';
import { authorized, presentsCredentials, proxyAuthError, sendError, sendProxyAuthRequired, sendText } from './http-responses.js';
import { isOwnHost } from './own-host.js';
import { serveStatus, STATUS_PATHS } from './status-pages.js';
import { PAC_CONTENT_TYPE, renderPac } from './pac.js';

/** An absolute-form URL naming this proxy's own address is a request to the proxy, not through it. */
export function isSelf(conn: ClientConnection, target: ProxyTarget): boolean {
  const local = unmapIPv4(conn.socket.localAddress ?? '');
  if (target.port !== conn.socket.localPort) return false;
  const host = unmapIPv4(target.host.toLowerCase());
  return host === local || (isLoopbackHost(host) && isLoopbackHost(local));
}

/** /healthz and /proxy.pac. */
export interface OwnPageRequest {
  /** The request target's path and query. */
  path: string;
  /** The client addressed the proxy as a proxy (absolute-form), not as a web server. */
  asProxy: boolean;
  startedAt: number;
}

export function serveOwnPage(ctx: ProxyContext, conn: ClientConnection, req: IncomingMessage, res: ServerResponse, page: OwnPageRequest): void {
  const { path, asProxy, startedAt } = page;
  const pathname = path.replace(/[?#].*$/, '');
  // Absolute-form requests were matched to our own address already; an
  // origin-form request proves it is for us only by its Host (DNS rebinding).
  if (!asProxy && !isOwnHost(req.headers.host, [conn.socket.localAddress])) {
    sendText(res, 403, `forbidden: kubesocks serves its own pages only to requests addressed to it (Host 127.0.0.1, localhost or the listen address), e.g. http://127.0.0.1:${conn.socket.localPort ?? ''}${pathname}`);
    return;
  }
  if (STATUS_PATHS.has(pathname)) {
    serveStatus({ conn, req, res, pathname, asProxy, authorized: authorized(ctx, req, 'proxy-authorization', 'authorization') });
    return;
  }
  if (pathname !== '/healthz' && pathname !== '/readyz' && pathname !== '/proxy.pac') {
    sendText(res, 404, 'not found: this is kubesocks, a SOCKS5/HTTP proxy; it serves /, /status.json, /metrics, /proxy.pac, /healthz and /readyz itself');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, `${req.method ?? ''} is not allowed on ${pathname}`, { Allow: 'GET, HEAD' });
    return;
  }
  if (pathname === '/healthz') {
    // The process is alive: nothing about the cluster (that is /readyz).
    sendText(res, 200, 'ok');
    return;
  }
  // The PAC and /readyz name the cluster's namespaces: when credentials are set, it needs them too.
  if (!authorized(ctx, req, 'proxy-authorization', 'authorization')) {
    const deny = (): void => (asProxy ? sendProxyAuthRequired(res) : sendText(res, 401, 'credentials required', { 'WWW-Authenticate': BASIC_CHALLENGE }));
    const presented = presentsCredentials(req, 'proxy-authorization', 'authorization');
    const error = ctx.wrongCredentials.answer(conn, { presented, error: proxyAuthError(), answer: deny, inHandshake: false });
    conn.report({ protocol: 'http', target: pathname, via: 'proxy', startedAt, error });
    return;
  }
  if (pathname === '/readyz') {
    serveReadiness(ctx, res);
    return;
  }
  const proxyAddress = formatHostPort(unmapIPv4(conn.socket.localAddress ?? '127.0.0.1'), conn.socket.localPort ?? 0);
  Promise.resolve()
    .then(() => ctx.connector.pacInfo())
    .then(
      (info) => {
        const pac = renderPac({ ...info, proxyAddress });
        res.writeHead(200, {
          'Content-Type': PAC_CONTENT_TYPE,
          'Content-Length': Buffer.byteLength(pac),
          // Namespaces come and go: browsers should fetch it again.
          'Cache-Control': 'no-store',
        });
        res.end(pac);
        conn.report({ protocol: 'http', target: pathname, via: 'proxy', bytesDown: Buffer.byteLength(pac), startedAt });
      },
      (err: unknown) => {
        const error = asKubesocksError(err, 'CONNECTION_LOST');
        conn.report({ protocol: 'http', target: pathname, via: 'proxy', startedAt, error });
        sendError(res, error);
      },
    )
    .catch((err: unknown) => {
      ctx.reportError(asKubesocksError(err, 'INTERNAL'));
      res.destroy();
    });
}

/**
 * /readyz: one line per kubeconfig context, `CONTEXT: ok` or what is wrong;
 * 200 when every context is ready, else 503.
 */
function serveReadiness(ctx: ProxyContext, res: ServerResponse): void {
  const probe = ctx.connector.readiness?.() ?? Promise.resolve([]);
  probe.then(
    (contexts) => {
      const ready = contexts.every((c) => c.ready);
      const body = contexts.length > 0 ? contexts.map((c) => `${c.context}: ${c.reason}`).join('; ') : 'ok';
      sendText(res, ready ? 200 : 503, body);
    },
    (err: unknown) => sendText(res, 503, `readiness probe failed: ${(err as Error).message}`),
  );
}
