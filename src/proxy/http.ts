/**
 * The HTTP front: Node's own HTTP parser (an internal `http.Server` that
 * never listens; the listener hands it sockets) serves
 *
 * - `CONNECT host:port` (RFC 9110 §9.3.6): `200 Connection established`,
 *   then raw bytes both ways;
 * - absolute-form requests (`GET http://web.demo/x HTTP/1.1`, RFC 9112
 *   §3.2.2): forwarded over one Connector stream per request, hop-by-hop
 *   headers removed, the client connection kept alive;
 * - requests to the proxy itself: `/healthz` and `/proxy.pac`.
 *
 * Timing: the first request's headers must arrive within the handshake
 * timeout (enforced by ClientConnection); after each response the next
 * request's headers must arrive within the same time, or the idle
 * connection is closed (this replaces Node's keepAliveTimeout and
 * headersTimeout, whose checks do not cover sockets handed over by 'connection').
 */
import { createServer, request as httpRequest, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { formatHostPort, formatTarget, parseAuthority, unmapIPv4 } from '../net/address.js';
import { isLoopbackHost } from '../net/loopback.js';
import { BASIC_CHALLENGE } from './auth.js';
import type { ClientConnection, ProxyContext } from './client-connection.js';
import { filterHeaders } from './http-headers.js';
import { isOwnHost } from './own-host.js';
import { PAC_CONTENT_TYPE, renderPac } from './pac.js';
import { failureReply } from './replies.js';
import { openTunnel, type TunnelReplies } from './connect-and-relay.js';
import type { ProxyTarget } from '../net/connector.js';

const debug = debuglog('kubesocks:proxy');

/** Sent once a CONNECT tunnel is open (RFC 9110 §9.3.6: any 2xx; this is the customary text). */
export const CONNECT_ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

/** Header naming the KubesocksError code on proxy-generated failure responses, for scripts. */
export const ERROR_CODE_HEADER = 'X-Kubesocks-Error';

const CONNECT_REPLIES: TunnelReplies = {
  protocol: 'http',
  success: () => CONNECT_ESTABLISHED,
  failure: (error) => rawResponse(failureReply(error).http, error.message, { [ERROR_CODE_HEADER]: error.code }),
};

/** Per-socket state of the HTTP front. */
interface HttpSocketState {
  conn: ClientConnection;
  /** Requests received whose responses have not closed yet. */
  inFlight: number;
  /** The socket became a CONNECT tunnel: no more HTTP on it. */
  tunnel: boolean;
  /** A malformed request was answered; the socket is closing. */
  rejected: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

export class HttpFront {
  readonly #ctx: ProxyContext;
  readonly #server: Server;
  readonly #sockets = new Map<Socket, HttpSocketState>();

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
    this.#server = createServer({
      maxHeaderSize: ctx.maxHeaderBytes,
      // HTTP/1.0 absolute-form requests may lack Host; the URL has the authority.
      requireHostHeader: false,
      // Uploads through the proxy may take as long as they take.
      requestTimeout: 0,
    });
    // Idle keep-alive connections are timed by this front (see armIdle).
    this.#server.keepAliveTimeout = 0;
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onConnect(req, socket, head));
    this.#server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => this.#onClientError(err, socket));
  }

  /**
   * Takes over a client socket whose first bytes were read by the listener:
   * they are pushed back so Node's parser sees the whole request.
   */
  accept(conn: ClientConnection, first: Buffer): void {
    const { socket } = conn;
    conn.protocol = 'http';
    const state: HttpSocketState = { conn, inFlight: 0, tunnel: false, rejected: false, idleTimer: undefined };
    this.#sockets.set(socket, state);
    socket.once('close', () => {
      clearTimeout(state.idleTimer);
      this.#sockets.delete(socket);
    });
    socket.unshift(first);
    this.#server.emit('connection', socket);
  }

  /** For a closing server: closes keep-alive connections that wait for a next request. */
  closeIdle(): void {
    for (const state of this.#sockets.values()) {
      if (state.inFlight === 0 && !state.tunnel && !state.conn.handshaking) state.conn.socket.destroy();
    }
  }

  #state(socket: Duplex): HttpSocketState | undefined {
    return this.#sockets.get(socket as Socket);
  }

  #armIdle(state: HttpSocketState): void {
    const { socket } = state.conn;
    if (state.tunnel || state.inFlight > 0 || socket.destroyed) return;
    if (this.#ctx.closing) {
      socket.destroy();
      return;
    }
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => socket.destroy(), this.#ctx.handshakeTimeoutMs);
    state.idleTimer.unref();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = Date.now();
    const state = this.#state(req.socket);
    if (!state) {
      res.destroy();
      return;
    }
    const { conn } = state;
    conn.endHandshake();
    clearTimeout(state.idleTimer);
    state.inFlight++;
    res.once('close', () => {
      state.inFlight--;
      this.#armIdle(state);
    });
    if (this.#ctx.closing) res.shouldKeepAlive = false;
    conn.guard(() => this.#dispatch(conn, req, res, startedAt))();
  }

  #dispatch(conn: ClientConnection, req: IncomingMessage, res: ServerResponse, startedAt: number): void {
    const url = req.url ?? '';
    if (url.startsWith('/')) {
      this.#serveSelf(conn, req, res, url, false, startedAt);
      return;
    }
    const parsed = parseAbsoluteHttpUrl(url);
    if (!parsed) {
      const err = new KubesocksError('BAD_TARGET', `cannot forward ${JSON.stringify(url.slice(0, 200))}: only http:// URLs are forwarded (use CONNECT for https)`);
      conn.report({ protocol: 'http', target: null, startedAt, error: err });
      sendError(res, err);
      return;
    }
    if (this.#isSelf(conn, parsed.target)) {
      this.#serveSelf(conn, req, res, parsed.path, true, startedAt);
      return;
    }
    if (!this.#authorized(req, 'proxy-authorization')) {
      conn.report({ protocol: 'http', target: formatTarget(parsed.target), startedAt, error: proxyAuthError() });
      sendProxyAuthRequired(res);
      return;
    }
    this.#forward(conn, req, res, parsed, startedAt).catch((err: unknown) => {
      this.#ctx.reportError(asKubesocksError(err, 'PROTOCOL_ERROR'));
      res.destroy();
    });
  }

  #authorized(req: IncomingMessage, ...headers: Array<'proxy-authorization' | 'authorization'>): boolean {
    const { checker } = this.#ctx;
    return !checker || headers.some((h) => checker.matchesBasic(req.headers[h]));
  }

  /** An absolute-form URL naming this proxy's own address is a request to the proxy, not through it. */
  #isSelf(conn: ClientConnection, target: ProxyTarget): boolean {
    const local = unmapIPv4(conn.socket.localAddress ?? '');
    if (target.port !== conn.socket.localPort) return false;
    const host = unmapIPv4(target.host.toLowerCase());
    return host === local || (isLoopbackHost(host) && isLoopbackHost(local));
  }

  /** /healthz and /proxy.pac; `asProxy`: the client addressed us as a proxy (absolute-form). */
  #serveSelf(conn: ClientConnection, req: IncomingMessage, res: ServerResponse, path: string, asProxy: boolean, startedAt: number): void {
    const pathname = path.replace(/[?#].*$/, '');
    // Absolute-form requests were matched to our own address already; an
    // origin-form request proves it is for us only by its Host (DNS rebinding).
    if (!asProxy && !isOwnHost(req.headers.host, [conn.socket.localAddress])) {
      sendText(res, 403, `forbidden: kubesocks serves its own pages only to requests addressed to it (Host 127.0.0.1, localhost or the listen address), e.g. http://127.0.0.1:${conn.socket.localPort ?? ''}${pathname}`);
      return;
    }
    if (pathname !== '/healthz' && pathname !== '/proxy.pac') {
      sendText(res, 404, 'not found: this is kubesocks, a SOCKS5/HTTP proxy; it serves /proxy.pac and /healthz itself');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `${req.method ?? ''} is not allowed on ${pathname}`, { Allow: 'GET, HEAD' });
      return;
    }
    if (pathname === '/healthz') {
      sendText(res, 200, 'ok');
      return;
    }
    // The PAC names the cluster's namespaces: when credentials are set, it needs them too.
    if (!this.#authorized(req, 'proxy-authorization', 'authorization')) {
      conn.report({ protocol: 'http', target: pathname, via: 'proxy', startedAt, error: proxyAuthError() });
      if (asProxy) sendProxyAuthRequired(res);
      else sendText(res, 401, 'credentials required', { 'WWW-Authenticate': BASIC_CHALLENGE });
      return;
    }
    const proxyAddress = formatHostPort(unmapIPv4(conn.socket.localAddress ?? '127.0.0.1'), conn.socket.localPort ?? 0);
    Promise.resolve()
      .then(() => this.#ctx.connector.pacInfo())
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
        this.#ctx.reportError(asKubesocksError(err, 'PROTOCOL_ERROR'));
        res.destroy();
      });
  }

  /**
   * Forwards one absolute-form request over a fresh Connector stream. Node's
   * client writes the origin-form request and parses the response; the
   * client connection stays alive whatever the upstream does (the upstream
   * side is `Connection: close`, one stream per request).
   */
  async #forward(conn: ClientConnection, req: IncomingMessage, res: ServerResponse, parsed: AbsoluteUrl, startedAt: number): Promise<void> {
    const targetText = formatTarget(parsed.target);
    // Aborted when the client connection closes or this response is abandoned.
    const abort = new AbortController();
    const onSocketGone = (): void => abort.abort(conn.signal.reason);
    conn.signal.addEventListener('abort', onSocketGone, { once: true });
    res.once('close', () => {
      conn.signal.removeEventListener('abort', onSocketGone);
      abort.abort(new KubesocksError('CLOSED', 'the response is over'));
    });
    let connected;
    try {
      connected = await conn.open(parsed.target, abort.signal);
    } catch (err) {
      const error = asKubesocksError(err);
      debug('%s %s %s failed: %s %s', conn.client, req.method, targetText, error.code, error.message);
      conn.report({ protocol: 'http', target: targetText, startedAt, error });
      if (error.code === 'CLOSED') res.destroy();
      else sendError(res, error);
      return;
    }
    const { stream, via } = connected;
    let bytesUp = 0;
    let bytesDown = 0;
    let reported = false;
    const finish = (error?: KubesocksError): void => {
      if (reported) return;
      reported = true;
      conn.report({ protocol: 'http', target: targetText, via, bytesUp, bytesDown, startedAt, error });
    };

    // RFC 9112 §3.2.2: a proxy replaces Host with the authority of the absolute-form target.
    // `Expect: 100-continue` was already answered by Node's server. The
    // upstream side is one stream per request, hence `Connection: close`.
    const headers = [
      'Host',
      parsed.host,
      ...filterHeaders(req.rawHeaders, { drop: ['host', 'expect'], transferEncoding: 'keep' }),
      'Connection',
      'close',
    ];
    const upstream = httpRequest({
      method: req.method ?? 'GET',
      path: parsed.path,
      headers,
      // No agent: with `agent: false` Node would build a fresh Agent and
      // ignore createConnection; without one, the request uses this stream.
      // @types/node declares a Socket; Node's client only needs a Duplex (it is how TLS and proxies plug in).
      createConnection: () => stream as Socket,
    });
    upstream.on('error', (err) => {
      const error = asKubesocksError(err, 'CONNECTION_LOST');
      debug('%s %s %s upstream error: %s', conn.client, req.method, targetText, err.message);
      if (!res.headersSent && !res.destroyed) sendError(res, error);
      else res.destroy();
      finish(error);
    });
    upstream.on('response', (up: IncomingMessage) => {
      try {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, filterHeaders(up.rawHeaders, { transferEncoding: 'unless-chunked' }));
      } catch (err) {
        // Node's writer is stricter than its parser about some characters.
        up.destroy();
        const error = new KubesocksError('PROTOCOL_ERROR', `the destination sent a response that cannot be relayed: ${(err as Error).message}`);
        sendError(res, error);
        finish(error);
        return;
      }
      up.on('data', (chunk: Buffer) => {
        bytesDown += chunk.length;
      });
      up.on('error', (err) => {
        // The response broke off midway: the destination's failure, reported as such.
        finish(asKubesocksError(err, 'CONNECTION_LOST'));
        res.destroy();
      });
      up.pipe(res);
    });
    req.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
    });
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
    res.once('close', () => {
      // Finished, or the client went away early (normal, as for tunnels); a
      // destination failure was reported where it happened.
      finish();
      upstream.destroy();
      stream.destroy();
    });
  }

  #onConnect(req: IncomingMessage, socketDuplex: Duplex, head: Buffer): void {
    const state = this.#state(socketDuplex);
    if (!state) {
      socketDuplex.destroy();
      return;
    }
    const { conn } = state;
    conn.endHandshake();
    conn.protocol = 'http-connect';
    state.tunnel = true;
    clearTimeout(state.idleTimer);
    conn.guard(() => {
      const authority = req.url ?? '';
      if (!this.#authorized(req, 'proxy-authorization')) {
        conn.report({ target: authority.slice(0, 300), error: proxyAuthError() });
        conn.endWith(rawResponse(407, 'proxy credentials required', { 'Proxy-Authenticate': BASIC_CHALLENGE }));
        return;
      }
      const target = parseAuthority(authority);
      if (!target) {
        const error = new KubesocksError('BAD_TARGET', `CONNECT needs host:port, got ${JSON.stringify(authority.slice(0, 200))}`);
        conn.report({ target: null, error });
        conn.endWith(rawResponse(400, error.message, { [ERROR_CODE_HEADER]: error.code }));
        return;
      }
      openTunnel(conn, target, head, CONNECT_REPLIES).catch((err: unknown) => {
        this.#ctx.reportError(asKubesocksError(err, 'PROTOCOL_ERROR'));
        conn.socket.destroy();
      });
    })();
  }

  /**
   * Node calls this for requests it cannot parse (and for resets). Answer 400
   * (431 for headers over the size cap) when no response is under way, and close.
   */
  #onClientError(err: Error & { code?: string }, socketDuplex: Duplex): void {
    const state = this.#state(socketDuplex);
    if (!state) {
      socketDuplex.destroy();
      return;
    }
    const { conn } = state;
    debug('%s HTTP client error: %s %s', conn.client, err.code, err.message);
    // Node's parser stays in its error state and may report again while the reply lingers.
    if (state.rejected) return;
    state.rejected = true;
    if (err.code === 'ECONNRESET' || !conn.socket.writable || state.inFlight > 0) {
      conn.socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const error = new KubesocksError('PROTOCOL_ERROR', `malformed HTTP request (${err.code ?? err.message})`);
    conn.report({ protocol: 'http', target: null, error });
    conn.endWith(rawResponse(status, error.message));
  }
}

interface AbsoluteUrl {
  target: ProxyTarget;
  /** The authority as it belongs in Host: `web.demo`, `web.demo:8080`, `[::1]:8080`. */
  host: string;
  /** The origin-form request target, exactly as the client wrote it after the authority. */
  path: string;
}

/** Parses `http://authority/path?query`; null for anything else (other schemes, userinfo, bad ports). */
export function parseAbsoluteHttpUrl(url: string): AbsoluteUrl | null {
  const m = /^http:\/\/([^/?#\s]+)([^#\s]*)/i.exec(url);
  const authority = m?.[1];
  if (authority === undefined) return null;
  const target = parseAuthority(authority, 80);
  if (!target) return null;
  const rest = m?.[2] ?? '';
  const path = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
  return { target, host: authority, path };
}

const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ').trim();

function proxyAuthError(): KubesocksError {
  return new KubesocksError('PROXY_AUTH', 'proxy credentials missing or wrong (HTTP)');
}

function sendText(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${oneLine(message)}\n`;
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** A failure as an HTTP response: the mapped status and the error's one-line message. */
function sendError(res: ServerResponse, err: KubesocksError): void {
  sendText(res, failureReply(err).http, err.message, { [ERROR_CODE_HEADER]: err.code });
}

function sendProxyAuthRequired(res: ServerResponse): void {
  sendText(res, 407, 'proxy credentials required', { 'Proxy-Authenticate': BASIC_CHALLENGE });
}

/** A complete response written straight to a socket Node's HTTP server no longer manages. */
export function rawResponse(status: number, message: string, headers: Record<string, string> = {}): string {
  const body = `${oneLine(message)}\n`;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${oneLine(value)}`);
  lines.push('Content-Type: text/plain; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
