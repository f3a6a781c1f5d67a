/**
 * What the HTTP front refuses in a request before anything is dialled, and
 * in words that name the real reason: absolute-form targets it cannot
 * forward (userinfo, other schemes), transfer codings it cannot frame, and
 * hosts no front accepts. Also the request line of a request Node could not
 * parse, readable and without userinfo, for the log.
 */
import type { IncomingMessage } from 'node:http';
import { KubesocksError } from '../errors.js';
import { hasUserinfo, hostProblem, quoteWireText, redactUserinfo } from './wire-text.js';

/** Why an absolute-form request target is not forwarded (never showing userinfo). */
export function unforwardableUrlError(url: string): KubesocksError {
  const shown = quoteWireText(url);
  if (/^http:\/\//i.test(url) && hasUserinfo(url)) {
    return new KubesocksError(
      'BAD_TARGET',
      `cannot forward ${shown}: userinfo (user:password@) is not allowed in a proxied request's URL (RFC 9110 §4.2.4); send credentials in an Authorization header`,
    );
  }
  if (/^http:\/\//i.test(url)) return new KubesocksError('BAD_TARGET', `cannot forward ${shown}: the host or port is not valid`);
  return new KubesocksError('BAD_TARGET', `cannot forward ${shown}: only http:// URLs are forwarded (use CONNECT for https)`);
}

/** Why CONNECT's target is not host:port (never showing userinfo). */
export function badConnectTargetError(authority: string): KubesocksError {
  const shown = quoteWireText(authority);
  if (hasUserinfo(authority)) {
    return new KubesocksError('BAD_TARGET', `CONNECT ${shown}: userinfo (user:password@) is not allowed in a CONNECT target; send proxy credentials in Proxy-Authorization`);
  }
  return new KubesocksError('BAD_TARGET', `CONNECT needs host:port, got ${shown}`);
}

/** A requested host every front refuses (unspecified address, not ASCII), as an error. */
export function hostError(host: string): KubesocksError | undefined {
  const problem = hostProblem(host);
  return problem ? new KubesocksError('BAD_TARGET', problem) : undefined;
}

const codingsOf = (te: string): string[] =>
  te
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');

/** True when there is no Transfer-Encoding, or its last coding is chunked (the message frames itself). */
export function endsInChunked(te: string | undefined): boolean {
  return te === undefined || codingsOf(te).at(-1) === 'chunked';
}

/** Codings the proxy can pass on ahead of a final chunked (it does not decode them). */
const KNOWN_CODINGS = new Set(['chunked', 'gzip', 'x-gzip', 'deflate', 'compress', 'x-compress']);

/**
 * A request whose Transfer-Encoding does not end in chunked (once) has a
 * body of unknown length (RFC 9112 §6.3: 400, then close); one with a coding
 * the proxy does not know gets 501 (RFC 9112 §6.1). Either way nothing is
 * dialled and the connection closes after the answer.
 */
export function transferCodingError(req: IncomingMessage): KubesocksError | undefined {
  const te = req.headers['transfer-encoding'];
  if (te === undefined) return undefined;
  const codings = codingsOf(te);
  if (endsInChunked(te) && codings.indexOf('chunked') === codings.length - 1) return undefined;
  const shown = quoteWireText(te);
  if (codings.some((c) => !KNOWN_CODINGS.has(c))) {
    return new KubesocksError('NOT_IMPLEMENTED', `request Transfer-Encoding ${shown} is not supported: only chunked (last) can be forwarded`);
  }
  return new KubesocksError('PROTOCOL_ERROR', `request Transfer-Encoding ${shown} does not end in chunked: the body's length cannot be known (RFC 9112 §6.3)`);
}

/** The request line of a packet Node could not parse, readable and without userinfo; '' when there is none. */
export function requestLineOf(packet: unknown): string {
  if (!Buffer.isBuffer(packet)) return '';
  const end = packet.indexOf('\r\n');
  const line = packet.subarray(0, Math.min(end < 0 ? packet.length : end, 300)).toString('latin1');
  const m = /^(\S+) (\S+)(.*)$/.exec(line);
  if (!m) return '';
  return quoteWireText(`${m[1]} ${redactUserinfo(m[2] ?? '')}${m[3]}`);
}
