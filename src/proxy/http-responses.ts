/**
 * What the HTTP front answers by itself: one-line text responses (through
 * Node's ServerResponse or, for sockets Node no longer manages, as raw
 * bytes), failures with their mapped status and code header, the 407
 * challenge, and the credentials check.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { KubesocksError } from '../errors.js';
import { BASIC_CHALLENGE } from './auth.js';
import type { ProxyContext } from './client-connection.js';
import { failureReply } from './replies.js';

/** Header naming the KubesocksError code on proxy-generated failure responses, for scripts. */
export const ERROR_CODE_HEADER = 'X-Kubesocks-Error';

/** Whether the request carries the proxy's credentials in one of `headers` (always, without credentials set). */
export function authorized(ctx: ProxyContext, req: IncomingMessage, ...headers: Array<'proxy-authorization' | 'authorization'>): boolean {
  const { checker } = ctx;
  return !checker || headers.some((h) => checker.matchesBasic(req.headers[h]));
}

/** Whether the request presented credentials in one of `headers`: without any, a 401/407 is the challenge round trip, not a wrong guess. */
export function presentsCredentials(req: IncomingMessage, ...headers: Array<'proxy-authorization' | 'authorization'>): boolean {
  return headers.some((h) => req.headers[h] !== undefined);
}

const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ').trim();

export function proxyAuthError(): KubesocksError {
  return new KubesocksError('PROXY_AUTH', 'proxy credentials missing or wrong (HTTP)');
}

/** A one-line text response; `close`: the connection cannot carry another request after it. */
export function sendText(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${oneLine(message)}\n`;
  if (close) res.shouldKeepAlive = false;
  res.writeHead(status, {
    ...headers,
    ...(close ? { Connection: 'close' } : {}),
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** A failure as an HTTP response: the mapped status and the error's one-line message. */
export function sendError(res: ServerResponse, err: KubesocksError): void {
  sendText(res, failureReply(err).http, err.message, errorHeaders(err));
}

/** The error code header, and for a 407 the challenge RFC 9110 §11.7.1 requires with it. */
export function errorHeaders(err: KubesocksError): Record<string, string> {
  const headers: Record<string, string> = { [ERROR_CODE_HEADER]: err.code };
  if (failureReply(err).http === 407) headers['Proxy-Authenticate'] = BASIC_CHALLENGE;
  return headers;
}

export function sendProxyAuthRequired(res: ServerResponse): void {
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
