/**
 * The HTTP front: Node's own HTTP parser (an internal `http.Server` that
 * never listens; the listener hands it sockets) reads each request and
 * routes it: `CONNECT` to http-connect.ts, absolute-form requests to
 * http-forward.ts, requests to the proxy itself to own-pages.ts.
 *
 * Timing: the first request's headers must arrive within the handshake
 * timeout (enforced by ClientConnection); after each response the next
 * request's headers must arrive within the same time, or the idle
 * connection is closed (this replaces Node's keepAliveTimeout and
 * headersTimeout, whose checks do not cover sockets handed over by 'connection').
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { formatTarget } from '../net/address.js';
import { admitBasic } from './auth.js';
import type { ClientConnection, ProxyContext } from './client-connection.js';
import { serveConnect } from './http-connect.js';
import { forwardRequest, parseAbsoluteHttpUrl } from './http-forward.js';
import { hostError, requestLineOf, transferCodingError, unforwardableUrlError } from './http-request-checks.js';
import { ERROR_CODE_HEADER, presentsCredentials, proxyAuthError, rawResponse, sendError, sendProxyAuthRequired, sendText } from './http-responses.js';
import { isSelf, serveOwnPage } from './own-pages.js';
import { displayWireText } from './wire-text.js';

const debug = debuglog('kubesocks:proxy');

/**
 * Pipelined requests served at once on one connection; beyond it the client
 * is not read until one finishes (backpressure: 10,000 pipelined requests
 * must not become 10,000 streams).
 */
export const PIPELINE_LIMIT = 4;

/** Per-socket state of the HTTP front. */
interface HttpSocketState {
  conn: ClientConnection;
  /** Requests received whose responses have not closed yet (started or queued). */
  inFlight: number;
  /** Requests being served now (at most PIPELINE_LIMIT). */
  active: number;
  /** Pipelined requests received beyond PIPELINE_LIMIT, started in order as others finish; the socket is not read meanwhile. */
  queue: Array<() => void>;
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
    const state: HttpSocketState = { conn, inFlight: 0, active: 0, queue: [], tunnel: false, rejected: false, idleTimer: undefined };
    // While requests are queued the socket stays paused: Node's server
    // resumes it when its own reasons to pause pass (and a request body's
    // read does too), so pause it again at once ('resume' comes on the next
    // tick, before any read).
    socket.on('resume', () => {
      if (state.queue.length > 0) socket.pause();
    });
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
    let started = false;
    const start = (): void => {
      started = true;
      state.active++;
      conn.guard(() => this.#dispatch(conn, req, res, startedAt))();
    };
    res.once('close', () => {
      state.inFlight--;
      if (started) state.active--;
      this.#startQueued(state);
      this.#armIdle(state);
    });
    if (this.#ctx.closing) res.shouldKeepAlive = false;
    if (state.active < PIPELINE_LIMIT && state.queue.length === 0) {
      start();
      return;
    }
    // Pipelined beyond the limit: serve it later, read nothing more meanwhile.
    // Node parses the rest of the chunk at hand, so the queue holds at most
    // one read's worth of requests (objects, no streams).
    state.queue.push(start);
    conn.socket.pause();
  }

  #startQueued(state: HttpSocketState): void {
    // A closed client takes its queued requests with it.
    if (state.conn.socket.destroyed) state.queue.length = 0;
    while (state.active < PIPELINE_LIMIT && state.queue.length > 0) state.queue.shift()?.();
    if (state.queue.length === 0 && !state.conn.socket.destroyed && !state.tunnel) state.conn.socket.resume();
  }

  #dispatch(conn: ClientConnection, req: IncomingMessage, res: ServerResponse, startedAt: number): void {
    const url = req.url ?? '';
    if (url.startsWith('/')) {
      serveOwnPage(this.#ctx, conn, req, res, { path: url, asProxy: false, startedAt });
      return;
    }
    const parsed = parseAbsoluteHttpUrl(url);
    if (!parsed) {
      const err = unforwardableUrlError(url);
      conn.report({ protocol: 'http', target: null, startedAt, error: err });
      sendError(res, err);
      return;
    }
    if (isSelf(conn, parsed.target)) {
      serveOwnPage(this.#ctx, conn, req, res, { path: parsed.path, asProxy: true, startedAt });
      return;
    }
    const targetText = displayWireText(formatTarget(parsed.target));
    const admitted = admitBasic(this.#ctx.checker, req.headers['proxy-authorization']);
    if (!admitted.ok) {
      // A wrong guess is answered after its address's delay (wrong-credentials.ts).
      const error = this.#ctx.wrongCredentials.answer(conn, {
        presented: presentsCredentials(req, 'proxy-authorization'),
        error: proxyAuthError(),
        answer: () => sendProxyAuthRequired(res),
        inHandshake: false,
      });
      conn.report({ protocol: 'http', target: targetText, startedAt, error });
      return;
    }
    // Refused before anything is dialled: the request cannot be framed upstream, or names no host.
    const refusal = transferCodingError(req) ?? hostError(parsed.target.host);
    if (refusal) {
      conn.report({ protocol: 'http', target: targetText, startedAt, error: refusal });
      // The body's length is unknown: the connection cannot carry another request.
      sendText(res, refusal.code === 'NOT_IMPLEMENTED' ? 501 : 400, refusal.message, { [ERROR_CODE_HEADER]: refusal.code }, true);
      return;
    }
    const selected = admitted.selector === undefined ? parsed : { ...parsed, target: { ...parsed.target, selector: admitted.selector } };
    forwardRequest(conn, req, res, selected, startedAt).catch((err: unknown) => {
      this.#ctx.reportError(asKubesocksError(err, 'INTERNAL'));
      res.destroy();
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
    conn.guard(() => serveConnect(this.#ctx, conn, req, head))();
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
    const line = requestLineOf((err as { rawPacket?: unknown }).rawPacket);
    const error = new KubesocksError('PROTOCOL_ERROR', `malformed HTTP request (${err.code ?? err.message})${line ? `: ${line}` : ''}`);
    conn.report({ protocol: 'http', target: null, error });
    conn.endWith(rawResponse(status, error.message));
  }
}
