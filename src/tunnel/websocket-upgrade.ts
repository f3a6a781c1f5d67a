/**
 * Port-forward tunnelled over a WebSocket (KEP-4006), the transport kubectl
 * 1.31+ tries first:
 *
 *   GET /api/v1/namespaces/NS/pods/NAME/portforward      (no query)
 *   Connection: Upgrade
 *   Upgrade: websocket
 *   Sec-WebSocket-Version: 13
 *   Sec-WebSocket-Key: (16 random bytes, base64)
 *   Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io
 *
 * The API server strips the `SPDY/3.1+` prefix, upgrades to the kubelet over
 * SPDY, and on success answers 101 selecting `SPDY/3.1+portforward.k8s.io`.
 * From then on the same SPDY session runs inside binary messages
 * (see WebSocketByteStream). Sources: client-go
 * tools/portforward/tunneling_dialer.go, apiserver util/proxy/streamtunnel.go.
 *
 * The handshake is made here, with the same https request as the SPDY
 * upgrade (kubeconfig auth, proxy-url agent, keep-alive reuse), and the
 * upgraded socket goes to WebSocketByteStream: ws is not used on this side
 * (why: src/net/websocket-stream.ts). ws would also have refused our
 * subprotocol, as it holds subprotocols to RFC 6455's token syntax, which
 * has no "/"; Go's gorilla/websocket, on both ends of a real cluster, does not check.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import { KubesocksError } from '../errors.js';
import { MAX_ERROR_BODY, readBody, withCredentialRefresh } from '../kube/responses.js';
import { UPGRADE_TIMEOUT_MS } from '../net/timeouts.js';
import { PORT_FORWARD_PROTOCOL, errorFromResponse, type UpgradeCredentials, type UpgradeOptions } from './upgrade.js';
import { WebSocketByteStream } from '../net/websocket-stream.js';

/** client-go constants.WebsocketsSPDYTunnelingPrefix + the port-forward protocol. */
export const TUNNELING_PREFIX = 'SPDY/3.1+';
export const WEBSOCKET_PORT_FORWARD_PROTOCOL = `${TUNNELING_PREFIX}${PORT_FORWARD_PROTOCOL}`;

/** RFC 6455 1.3: appended to the key before hashing it into Sec-WebSocket-Accept. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

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
  // RFC 6455 4.1: a fresh random 16-byte key, whose digest the 101 must return.
  const key = randomBytes(16).toString('base64');
  const requestOptions = await credentials.requestOptions('GET', path, {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': key,
    // client-go's gorilla dialer offers no extension (no compression); SPDY compresses its own headers.
    'Sec-WebSocket-Protocol': WEBSOCKET_PORT_FORWARD_PROTOCOL,
  });
  const proxied = requestOptions.agent !== undefined;

  return new Promise<Duplex>((resolve, reject) => {
    let settled = false;
    // Whether the API server answered, as for every request (kube/health.ts): an
    // unreachable or frozen server then fails cluster names at once and shows in /readyz.
    const report = credentials.health?.begin();
    const settle = (error: WebSocketUpgradeError | null, stream?: Duplex): void => {
      if (settled) {
        stream?.destroy();
        return;
      }
      settled = true;
      if (!error) report?.answered();
      else if (error.code === 'CLOSED') report?.abandoned();
      else if (error.code === 'TIMEOUT' || error.code === 'API_UNREACHABLE') report?.failed(error);
      else report?.answered();
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) {
        request.destroy();
        reject(error);
      } else {
        resolve(stream!);
      }
    };
    // The proxy-url agent, else the client's keep-alive agent: like the SPDY
    // upgrade, the handshake reuses an idle API connection (one TLS handshake
    // less on a remote cluster), which then leaves the agent.
    const request = https.request({ ...requestOptions, agent: requestOptions.agent ?? credentials.agent, timeout: undefined, signal: undefined });
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

    request.once('upgrade', (response: IncomingMessage, socket: Duplex, head: Buffer) => {
      report?.answered();
      const problem = checkHandshake(response, key);
      if (problem) {
        socket.destroy();
        // Something answered with other than our tunnel: SPDY may still work.
        settle(new WebSocketUpgradeError(new KubesocksError('UPGRADE_FAILED', `port-forward to pod ${target}: ${problem}`), true));
        return;
      }
      if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
      settle(null, new WebSocketByteStream(socket, head));
    });
    // Any answer but 101: the Status body (or a proxy's page) says why.
    request.once('response', (response: IncomingMessage) => {
      report?.answered();
      const status = response.statusCode ?? 0;
      const refusal = (body: string): WebSocketUpgradeError =>
        new WebSocketUpgradeError(errorFromResponse(status, body, target, credentials.contextName, FORBIDDEN_HINT), true);
      readBody(response, MAX_ERROR_BODY).then(
        (body) => settle(refusal(body)),
        () => settle(refusal('')),
      );
    });
    request.once('error', (error: NodeJS.ErrnoException) => {
      if (settled) return;
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
    });
    request.end();
  });
}

/** RFC 6455 4.1's checks of the server's 101, and client-go's: the subprotocol must be exactly ours. */
function checkHandshake(response: IncomingMessage, key: string): string | null {
  const header = (name: string): string => String(response.headers[name] ?? '');
  if (response.statusCode !== 101) return `WebSocket handshake failed: unexpected status ${response.statusCode}`;
  if (header('upgrade').toLowerCase() !== 'websocket') return `WebSocket handshake failed: the 101 answer upgrades to "${header('upgrade')}", not websocket`;
  if (!header('connection').toLowerCase().split(/\s*,\s*/).includes('upgrade')) return 'WebSocket handshake failed: the 101 answer lacks "Connection: Upgrade"';
  if (header('sec-websocket-accept') !== createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64')) return 'WebSocket handshake failed: Invalid Sec-WebSocket-Accept header';
  if (header('sec-websocket-extensions') !== '') return `WebSocket handshake failed: the server chose extensions "${header('sec-websocket-extensions')}" though none was offered`;
  const selected = header('sec-websocket-protocol');
  if (selected !== WEBSOCKET_PORT_FORWARD_PROTOCOL) {
    const what = selected === '' ? 'selected no WebSocket subprotocol' : `selected WebSocket subprotocol "${selected}"`;
    return `the API server ${what}, not ${WEBSOCKET_PORT_FORWARD_PROTOCOL}`;
  }
  return null;
}
