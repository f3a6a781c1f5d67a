/**
 * `CONNECT host:port` (RFC 9110 §9.3.6): `200 Connection established`, then
 * raw bytes both ways.
 */
import type { IncomingMessage } from 'node:http';
import { asKubesocksError } from '../errors.js';
import { formatTarget, parseAuthority } from '../net/address.js';
import { admitBasic, BASIC_CHALLENGE } from './auth.js';
import type { ProxyTarget } from '../net/connector.js';
import type { ClientConnection, ProxyContext } from './client-connection.js';
import { openTunnel, type TunnelReplies } from './connect-and-relay.js';
import { ERROR_CODE_HEADER, errorHeaders, presentsCredentials, proxyAuthError, rawResponse } from './http-responses.js';
import { badConnectTargetError, hostError } from './http-request-checks.js';
import { failureReply } from './replies.js';
import { displayWireText, redactUserinfo } from './wire-text.js';

/** Sent once a CONNECT tunnel is open (RFC 9110 §9.3.6: any 2xx; this is the customary text). */
export const CONNECT_ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

const CONNECT_REPLIES: TunnelReplies = {
  protocol: 'http',
  success: () => CONNECT_ESTABLISHED,
  failure: (error) => rawResponse(failureReply(error).http, error.message, errorHeaders(error)),
};

/** Answers a CONNECT request whose head Node parsed; `head` are bytes the client sent after it. */
export function serveConnect(ctx: ProxyContext, conn: ClientConnection, req: IncomingMessage, head: Buffer): void {
  const authority = req.url ?? '';
  // The username may also select what the Connector reaches (admit()).
  const admitted = admitBasic(ctx.checker, req.headers['proxy-authorization']);
  if (!admitted.ok) {
    // A wrong guess is answered after its address's delay (wrong-credentials.ts); the socket is not read meanwhile.
    conn.socket.pause();
    const deny = (): void => conn.endWith(rawResponse(407, 'proxy credentials required', { 'Proxy-Authenticate': BASIC_CHALLENGE }));
    const error = ctx.wrongCredentials.answer(conn, { presented: presentsCredentials(req, 'proxy-authorization'), error: proxyAuthError(), answer: deny, inHandshake: false });
    conn.report({ target: displayWireText(redactUserinfo(authority.slice(0, 300))), error });
    return;
  }
  const target = parseAuthority(authority);
  const error = target ? hostError(target.host) : badConnectTargetError(authority);
  if (error || !target) {
    const failure = error ?? badConnectTargetError(authority);
    conn.report({ target: target ? displayWireText(formatTarget(target)) : null, error: failure });
    conn.endWith(rawResponse(400, failure.message, { [ERROR_CODE_HEADER]: failure.code }));
    return;
  }
  const selected: ProxyTarget = admitted.selector === undefined ? target : { ...target, selector: admitted.selector };
  openTunnel(conn, selected, head, CONNECT_REPLIES).catch((err: unknown) => {
    ctx.reportError(asKubesocksError(err, 'INTERNAL'));
    conn.socket.destroy();
  });
}
