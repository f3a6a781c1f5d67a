/**
 * Port-forward tunnelled over a WebSocket (KEP-4006), the transport kubectl
 * 1.31+ tries first:
 *
 *   GET /api/v1/namespaces/NS/pods/NAME/portforward      (no query)
 *   Connection: Upgrade
 *   Upgrade: websocket
 *   Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io
 *
 * The API server strips the `SPDY/3.1+` prefix, upgrades to the kubelet over
 * SPDY, and on success answers 101 selecting `SPDY/3.1+portforward.k8s.io`.
 * From then on the same SPDY session runs inside binary messages
 * (see WebSocketByteStream). Sources: client-go
 * tools/portforward/tunneling_dialer.go, apiserver util/proxy/streamtunnel.go.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { KubesocksError } from '../errors.js';
import { MAX_ERROR_BODY, readBody, withCredentialRefresh } from '../kube/responses.js';
import { UPGRADE_TIMEOUT_MS } from '../net/timeouts.js';
import { PORT_FORWARD_PROTOCOL, errorFromResponse, type UpgradeCredentials, type UpgradeOptions } from './upgrade.js';
import { WebSocketByteStream } from '../net/websocket-stream.js';

/** client-go constants.WebsocketsSPDYTunnelingPrefix + the port-forward protocol. */
export const TUNNELING_PREFIX = 'SPDY/3.1+';
export const WEBSOCKET_PORT_FORWARD_PROTOCOL = `${TUNNELING_PREFIX}${PORT_FORWARD_PROTOCOL}`;

/**
 * Largest message accepted from the API server. It relays what it reads from
 * the kubelet (client-go reads 32 KiB at a time); a bound keeps a broken peer
 * from making us buffer without end.
 */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** RBAC for the WebSocket GET: `get`, and since 1.35 `create` as well (AuthorizePodWebsocketUpgradeCreatePermission). */
const FORBIDDEN_HINT = 'port-forward over WebSockets needs RBAC "get" and "create" on pods/portforward';

/** A failed WebSocket attempt, and whether the transport itself may be what failed. */
export class WebSocketUpgradeError extends KubesocksError {
  constructor(
    error: KubesocksError,
    /**
     * True when something answered the upgrade with other than our tunnel (a
     * Status, a proxy's page, a 101 for another protocol), or a proxy stood in
     * the way: SPDY may still work. False when the API server was not reached
     * at all or the caller gave up, where SPDY would fare no better.
     */
    readonly transportSuspect: boolean,
  ) {
    super(error.code, error.message, { cause: error.cause ?? error });
  }
}

export async function upgradeToWebSocketTunnel(credentials: UpgradeCredentials, options: UpgradeOptions): Promise<Duplex> {
  try {
    // One credential refresh on 401, as for the SPDY upgrade.
    return await withCredentialRefresh(credentials, `port-forward (WebSocket) ${options.namespace}/${options.pod}`, () => attempt(credentials, options));
  } catch (error) {
    // A 401 after the refresh: the credentials are refused (health.ts), for /readyz and every lookup.
    if (error instanceof KubesocksError && error.code === 'UNAUTHORIZED') credentials.health?.refused(error);
    throw error;
  }
}

async function attempt(credentials: UpgradeCredentials, options: UpgradeOptions): Promise<Duplex> {
  const { namespace, pod } = options;
  const target = `${namespace}/${pod}`;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward`;
  const requestOptions = await credentials.requestOptions('GET', path);
  const host = String(requestOptions.hostname ?? 'localhost');
  const url = `wss://${host.includes(':') ? `[${host}]` : host}:${requestOptions.port ?? 443}${requestOptions.path ?? path}`;

  return new Promise<Duplex>((resolve, reject) => {
    let settled = false;
    // Whether the API server answered, as for every request (kube/health.ts): an
    // unreachable or frozen server then fails cluster names at once and shows in /readyz.
    const report = credentials.health?.begin();
    const settle = (error: WebSocketUpgradeError | null, stream?: Duplex): void => {
      if (settled) return;
      settled = true;
      if (!error) report?.answered();
      else if (error.code === 'CLOSED') report?.abandoned();
      else if (error.code === 'TIMEOUT' || error.code === 'API_UNREACHABLE') report?.failed(error);
      else report?.answered();
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(error);
      } else {
        resolve(stream!);
      }
    };
    // The subprotocol goes in as a plain header and is checked here, not by
    // ws: ws holds subprotocols to RFC 6455's token syntax, which has no "/"
    // (https://www.rfc-editor.org/rfc/rfc6455#section-4.1, "token" as in RFC
    // 2616), so it refuses "SPDY/3.1+portforward.k8s.io"; Go's gorilla/websocket,
    // on both ends of a real cluster, does not check.
    const ws = new WebSocket(url, [], {
      // TLS material, Authorization, impersonation, and the proxy-url agent.
      ...(requestOptions.ca !== undefined ? { ca: requestOptions.ca } : {}),
      ...(requestOptions.cert !== undefined ? { cert: requestOptions.cert } : {}),
      ...(requestOptions.key !== undefined ? { key: requestOptions.key } : {}),
      ...(requestOptions.servername !== undefined ? { servername: requestOptions.servername } : {}),
      ...(requestOptions.rejectUnauthorized !== undefined ? { rejectUnauthorized: requestOptions.rejectUnauthorized } : {}),
      ...(requestOptions.auth ? { auth: requestOptions.auth } : {}),
      // The proxy-url agent, else the client's keep-alive agent: like the SPDY
      // upgrade, the handshake reuses an idle API connection (one TLS
      // handshake less on a remote cluster), which then leaves the agent.
      ...(requestOptions.agent || credentials.agent ? { agent: requestOptions.agent ?? credentials.agent } : {}),
      headers: { ...(requestOptions.headers as Record<string, string>), 'Sec-WebSocket-Protocol': WEBSOCKET_PORT_FORWARD_PROTOCOL },
      // client-go's gorilla dialer offers no compression; SPDY compresses its own headers.
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: MAX_MESSAGE_BYTES,
      // Text messages are refused unread, so never validated.
      skipUTF8Validation: true,
    });
    const proxied = requestOptions.agent !== undefined;
    const onAbort = (): void =>
      settle(new WebSocketUpgradeError(new KubesocksError('CLOSED', `port-forward to ${target} abandoned: the client went away`), false));
    // A server that completes TLS and never answers the upgrade must not hold the connect.
    const timeoutMs = options.timeoutMs ?? UPGRADE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      settle(
        new WebSocketUpgradeError(
          new KubesocksError('TIMEOUT', `port-forward WebSocket upgrade for pod ${target} got no answer from the API server in ${timeoutMs / 1000} s`),
          proxied,
        ),
      );
    }, timeoutMs);
    timer.unref();
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    // Any answer but 101: the Status body (or a proxy's page) says why.
    ws.once('unexpected-response', (_request: ClientRequest, response: IncomingMessage) => {
      report?.answered();
      const status = response.statusCode ?? 0;
      const refusal = (body: string): WebSocketUpgradeError =>
        new WebSocketUpgradeError(errorFromResponse(status, body, target, credentials.contextName, FORBIDDEN_HINT), true);
      readBody(response, MAX_ERROR_BODY).then(
        (body) => settle(refusal(body)),
        () => settle(refusal('')),
      );
    });
    ws.once('upgrade', (response: IncomingMessage) => {
      report?.answered();
      // client-go: the 101 must select the subprotocol we offered. ws goes on
      // to check Sec-WebSocket-Accept and Upgrade; it must not see the
      // subprotocol it was not told about ("Server sent a subprotocol but none was requested").
      const selected = String(response.headers['sec-websocket-protocol'] ?? '');
      delete response.headers['sec-websocket-protocol'];
      if (selected !== WEBSOCKET_PORT_FORWARD_PROTOCOL) {
        const what = selected === '' ? 'selected no WebSocket subprotocol' : `selected WebSocket subprotocol "${selected}"`;
        settle(
          new WebSocketUpgradeError(
            new KubesocksError('UPGRADE_FAILED', `port-forward to pod ${target}: the API server ${what}, not ${WEBSOCKET_PORT_FORWARD_PROTOCOL}`),
            true,
          ),
        );
      }
    });
    ws.once('open', () => {
      if (settled) return;
      const stream = new WebSocketByteStream(ws);
      ws.off('error', onError);
      settle(null, stream);
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      if (settled) return;
      // ws's own handshake checks ("Server sent no subprotocol", "Invalid
      // Sec-WebSocket-Accept header", a 101 without Upgrade: websocket) mean
      // the server answered with something that is not our tunnel.
      const handshake = /subprotocol|Sec-WebSocket|Upgrade header|Unexpected server response|extension/i.test(error.message);
      if (handshake) {
        settle(new WebSocketUpgradeError(new KubesocksError('UPGRADE_FAILED', `port-forward to pod ${target}: WebSocket handshake failed: ${error.message}`), true));
        return;
      }
      const failure = new KubesocksError(
        'API_UNREACHABLE',
        `cannot reach the API server of context "${credentials.contextName}" (${error.code ?? error.message}); check the cluster is up and your network/VPN`,
        { cause: error },
      );
      report?.failed(failure);
      // The same one line every cluster name gets while the server is unreachable.
      const line = credentials.health?.unreachable ? credentials.health.unreachableError() : failure;
      // Through a proxy, a failure before any answer may be the proxy refusing (kubectl falls back then).
      settle(new WebSocketUpgradeError(line, proxied));
    };
    ws.on('error', onError);
  });
}
