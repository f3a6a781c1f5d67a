/**
 * Absolute-form requests (`GET http://web.demo/x HTTP/1.1`, RFC 9112
 * §3.2.2): each forwarded over one Connector stream, hop-by-hop headers
 * removed, the client connection kept alive.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { formatTarget, parseAuthority } from '../net/address.js';
import type { ProxyTarget } from '../net/connector.js';
import type { ClientConnection } from './client-connection.js';
import { filterHeaders } from './http-headers.js';
import { endsInChunked } from './http-request-checks.js';
import { sendError } from './http-responses.js';

const debug = debuglog('kubesocks:proxy');

export interface AbsoluteUrl {
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

/**
 * Forwards one absolute-form request over a fresh Connector stream. Node's
 * client writes the origin-form request and parses the response; the
 * client connection stays alive whatever the upstream does (the upstream
 * side is `Connection: close`, one stream per request).
 */
export async function forwardRequest(conn: ClientConnection, req: IncomingMessage, res: ServerResponse, parsed: AbsoluteUrl, startedAt: number): Promise<void> {
  const targetText = formatTarget(parsed.target);
  // Aborted when the client connection closes or this response is abandoned.
  const abort = new AbortController();
  const onSocketGone = (): void => abort.abort(conn.signal.reason);
  // A queued pipelined request can start after its client left.
  if (conn.signal.aborted) onSocketGone();
  else conn.signal.addEventListener('abort', onSocketGone, { once: true });
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
  const counts = { bytesUp: 0, bytesDown: 0 };
  const open = conn.ctx.observer.opened({ client: conn.client, protocol: 'http', target: targetText, via, pod: connected.pod, startedAt, counts });
  let reported = false;
  const finish = (error?: KubesocksError): void => {
    if (reported) return;
    reported = true;
    open.close();
    conn.report({ protocol: 'http', target: targetText, via, ...counts, startedAt, error });
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
    else resetClient(res);
    finish(error);
  });
  // The upstream request carries no Upgrade (hop-by-hop, dropped), so a 101
  // is a broken or hostile backend; Node hands it over as 'upgrade' and
  // would otherwise leave the client without an answer.
  upstream.on('upgrade', (_response: IncomingMessage, upSocket: Duplex) => {
    upSocket.destroy();
    const error = new KubesocksError('PROTOCOL_ERROR', 'the destination answered 101 Switching Protocols to a request that asked for no upgrade');
    sendError(res, error);
    finish(error);
  });
  upstream.on('response', (up: IncomingMessage) => {
    const headers = filterHeaders(up.rawHeaders, { transferEncoding: 'unless-chunked' });
    // RFC 9112 §6.3: a response whose transfer coding does not end in
    // chunked is delimited by closing the connection. Relayed on a kept-alive
    // connection, the next response would become part of its body.
    if (!endsInChunked(up.headers['transfer-encoding'])) {
      headers.push('Connection', 'close');
      res.shouldKeepAlive = false;
    }
    try {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, headers);
    } catch (err) {
      // Node's writer is stricter than its parser about some characters.
      up.destroy();
      const error = new KubesocksError('PROTOCOL_ERROR', `the destination sent a response that cannot be relayed: ${(err as Error).message}`);
      sendError(res, error);
      finish(error);
      return;
    }
    up.on('data', (chunk: Buffer) => {
      counts.bytesDown += chunk.length;
    });
    up.on('error', (err) => {
      // The response broke off midway: the destination's failure, reported as such.
      finish(asKubesocksError(err, 'CONNECTION_LOST'));
      resetClient(res);
    });
    up.pipe(res);
  });
  req.on('data', (chunk: Buffer) => {
    counts.bytesUp += chunk.length;
  });
  req.on('error', () => upstream.destroy());
  req.pipe(upstream);
  // Finished, or the client went away early (normal, as for tunnels); a
  // destination failure was reported where it happened. Keyed on the abort
  // signal, not only on the response's 'close': a pipelined response still
  // queued behind another is never given the socket, and Node never closes
  // it when the client connection goes.
  const cleanUp = (): void => {
    finish();
    upstream.destroy();
    stream.destroy();
  };
  if (abort.signal.aborted) cleanUp();
  else abort.signal.addEventListener('abort', cleanUp, { once: true });
}

/**
 * A response cut short: the client connection is reset (RST), never ended
 * with a FIN or kept alive for the next request, so no client can take the
 * truncated body for a complete one (an EOF-delimited body has no other sign).
 */
function resetClient(res: ServerResponse): void {
  const socket = res.socket as Socket | null;
  if (socket && !socket.destroyed && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  res.destroy();
}
