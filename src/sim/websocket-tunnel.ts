/**
 * The API server's WebSocket side of port-forward: recognising a KEP-4006
 * tunnelling request, the subprotocols it offers, and completing a WebSocket
 * handshake (for the tunnel, and for the kubelet's own channel protocol).
 *
 * Source: apiserver pkg/util/proxy/streamtunnel.go and
 * apimachinery util/httpstream/wsstream (IsWebSocketRequestWithTunnelingProtocol).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WsByteStream } from './websocket-byte-stream.js';

/** client-go constants.WebsocketsSPDYTunnelingPrefix. */
export const TUNNELING_PREFIX = 'SPDY/3.1+';
const KUBERNETES_SUFFIX = '.k8s.io';

/** The upper bound on one message from a client (the tunnel carries SPDY frames of at most ~32 KiB from client-go). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

function subprotocols(req: IncomingMessage): string[] {
  return (req.headersDistinct['sec-websocket-protocol'] ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/**
 * wsstream.IsWebSocketRequestWithTunnelingProtocol: a WebSocket request one
 * of whose Sec-WebSocket-Protocol header lines starts with `SPDY/3.1+` (the
 * line as sent, not split at commas, as Go's header lookup does).
 */
export function isTunnelingRequest(req: IncomingMessage): boolean {
  return (req.headersDistinct['sec-websocket-protocol'] ?? []).some((line) => line.startsWith(TUNNELING_PREFIX));
}

/** streamtunnel.go spdyProtocolsFromWebsocketProtocols: `SPDY/3.1+X.k8s.io` → `X.k8s.io`. */
export function tunneledSpdyProtocols(req: IncomingMessage): string[] {
  return subprotocols(req)
    .filter((p) => p.startsWith(TUNNELING_PREFIX) && p.endsWith(KUBERNETES_SUFFIX))
    .map((p) => p.slice(TUNNELING_PREFIX.length));
}

/** The tunnelling handler's refusal: Go's http.Error, plain text, not a Status. */
export function refuseTunnel(socket: Duplex): void {
  const body = 'unable to upgrade: no tunneling spdy protocols provided\n';
  socket.end(
    'HTTP/1.1 400 Bad Request\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `Date: ${new Date().toUTCString()}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  setTimeout(() => socket.destroy(), 5000).unref();
}

/**
 * Completes the WebSocket handshake selecting `protocol` (none when empty)
 * and hands over the WebSocket. ws answers a malformed handshake (bad key or
 * version) with 400 itself.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: string, accepted: (ws: WebSocket) => void): void {
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    skipUTF8Validation: true,
  });
  // The subprotocol is negotiated here, not by ws: ws holds subprotocols to
  // RFC 6455's token syntax, which has no "/", and would answer 400 to
  // "SPDY/3.1+portforward.k8s.io"; the API server's gorilla/websocket does not check.
  delete req.headers['sec-websocket-protocol'];
  if (protocol) server.once('headers', (headers: string[]) => headers.push(`Sec-WebSocket-Protocol: ${protocol}`));
  server.handleUpgrade(req, socket, head, accepted);
}

/** The tunnel's byte stream, as the API server's TunnelingConnection("server") reads it. */
export function tunnelStream(ws: WebSocket): Duplex {
  return new WsByteStream(ws);
}
