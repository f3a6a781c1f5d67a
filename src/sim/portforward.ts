/**
 * The port-forward upgrade: `POST /api/v1/namespaces/NS/pods/NAME/portforward`
 * with `Upgrade: SPDY/3.1`. Checks run in the order a real request meets them
 * on its way through the API server (authn, RBAC, pod lookup, node) and the
 * kubelet (sandbox, httpstream.Handshake, spdy.Upgrade); every refusal is a
 * Status. On success the socket is handed to the kubelet after a 101.
 *
 * Sources: apiserver pkg/registry/core/pod/strategy.go PortForwardLocation
 * ("does not have a host assigned"); kubelet GetPortForward ("pod not found
 * (\"NAME_NS\")" when the pod has no running sandbox); apimachinery
 * util/httpstream Handshake (comma-separated X-Stream-Protocol-Version, 403 with
 * X-Accepted-Stream-Protocol-Versions) and spdy.Upgrade ("missing upgrade headers").
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PodObject } from './objects.js';
import type { SimUser, Users } from './rbac.js';
import type { ObjectStore } from './store.js';
import { StatusError, badRequest, internalError, methodNotAllowed, notFound, unauthorized } from './status.js';
import type { Status } from './status.js';
import type { PortForwardHandler, PortForwardRelay, PortForwardTarget, SimCounters, SimFeatureGates } from './types.js';
import { channelProtocols, parsePorts } from './kubelet-websocket.js';
import { acceptWebSocket, isTunnelingRequest, refuseTunnel, tunnelStream, tunneledSpdyProtocols } from './websocket-tunnel.js';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

export interface PortForwardDeps {
  users: Users;
  store: ObjectStore;
  kubelet: PortForwardHandler;
  counters: SimCounters;
  /** For pods with a real sandbox: relays the upgrade to the runtime (which negotiates and answers it). */
  relay?: PortForwardRelay | undefined;
  gates: SimFeatureGates;
}

/** The pod a portforward path addresses. */
export interface PortForwardPath {
  namespace: string;
  name: string;
}

function isWebSocket(req: IncomingMessage): boolean {
  return /\bwebsocket\b/i.test(req.headers.upgrade ?? '');
}

/** Header values, comma-separated or repeated, trimmed, empty ones dropped. */
function headerValues(req: IncomingMessage, name: string): string[] {
  return (req.headersDistinct[name] ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/** Authn, RBAC, pod, node, sandbox: what both the upgrade and a plain request go through. Returns the pod. */
function admit(req: IncomingMessage, path: PortForwardPath, deps: PortForwardDeps): { user: SimUser; pod: PodObject } {
  const user = deps.users.authenticate(req.headers.authorization);
  if (!user) throw unauthorized();
  if (req.method !== 'POST' && req.method !== 'GET') throw methodNotAllowed();
  // SPDY is a POST and needs `create`; the WebSocket form is a GET and needs
  // `get`, and since 1.35 (AuthorizePodWebsocketUpgradeCreatePermission, on
  // by default) a WebSocket upgrade needs `create` as well.
  const attrs = { group: '', resource: 'pods', subresource: 'portforward', namespace: path.namespace, name: path.name };
  deps.users.authorize(user, { ...attrs, verb: req.method === 'GET' ? 'get' : 'create' });
  if (req.method === 'GET' && isWebSocket(req)) deps.users.authorize(user, { ...attrs, verb: 'create' });
  const pod = deps.store.get('pods', path.namespace, path.name);
  if (!pod) throw notFound({ group: '', resource: 'pods' }, path.name);
  if (!pod.spec.nodeName) throw badRequest(`pod ${path.name} does not have a host assigned`);
  return { user, pod };
}

/** What the kubelet checks before any upgrade: a running sandbox for the pod. */
function kubeletAdmit(pod: PodObject, path: PortForwardPath): void {
  if (pod.status.phase !== 'Running') {
    // The kubelet finds no running sandbox for the pod (kubelet.GetPortForward → HTTP 500).
    throw internalError(`pod not found ("${path.name}_${path.namespace}")`);
  }
}

/** httpstream.Handshake: the client must offer portforward.k8s.io. */
function negotiate(req: IncomingMessage, tunneled?: string[]): void {
  const offered = tunneled ?? headerValues(req, 'x-stream-protocol-version');
  if (offered.length === 0) throw badRequest('unable to upgrade: X-Stream-Protocol-Version is required');
  if (!offered.includes(PORT_FORWARD_PROTOCOL)) {
    throw new NegotiationError(
      `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${PORT_FORWARD_PROTOCOL}]`,
    );
  }
}

/** 403 that also names the protocols the server accepts. */
class NegotiationError extends StatusError {
  constructor(message: string) {
    super(403, 'Forbidden', message);
  }
}

function missingUpgradeHeaders(): StatusError {
  return badRequest('unable to upgrade: missing upgrade headers in request');
}

/**
 * A portforward request without `Connection: Upgrade` (Node routes those to
 * 'request'): the same checks, then 400. Always throws the StatusError to
 * answer with (see portForwardErrorHeaders for its headers).
 */
export function refusePlainPortForward(req: IncomingMessage, path: PortForwardPath, deps: PortForwardDeps): never {
  const { pod } = admit(req, path, deps);
  kubeletAdmit(pod, path);
  negotiate(req);
  throw missingUpgradeHeaders();
}

/** Headers a StatusError from this module needs on the response (X-Accepted-Stream-Protocol-Versions). */
export function portForwardErrorHeaders(err: StatusError): Record<string, string> {
  return err instanceof NegotiationError ? { 'X-Accepted-Stream-Protocol-Versions': PORT_FORWARD_PROTOCOL } : {};
}

/** Writes a complete HTTP/1.1 error response with a Status body on a raw socket and ends it. */
export function writeRawStatus(socket: Duplex, status: Status, extraHeaders: Record<string, string> = {}): void {
  const body = JSON.stringify(status);
  const lines = [
    `HTTP/1.1 ${status.code} ${STATUS_CODES[status.code] ?? 'Error'}`,
    'Content-Type: application/json',
    'Cache-Control: no-cache, private',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Date: ${new Date().toUTCString()}`,
    'Connection: close',
    ...Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // The peer gets a moment to read the answer and close; a peer that never does is dropped.
  setTimeout(() => socket.destroy(), 5000).unref();
}

/**
 * Handles an upgrade request on a portforward path: refuses with a Status,
 * or writes the 101 and gives the connection to the kubelet. Three kinds:
 * the SPDY upgrade (POST); with PortForwardWebsockets, a WebSocket GET
 * offering `SPDY/3.1+…k8s.io`, tunnelled to the same kubelet SPDY handler
 * (apiserver util/proxy/streamtunnel.go); and any other WebSocket GET, which
 * the API server passes to the kubelet's own channel protocol (`?ports=`).
 */
export function upgradePortForward(req: IncomingMessage, socket: Duplex, head: Buffer, path: PortForwardPath, deps: PortForwardDeps): void {
  try {
    const { pod } = admit(req, path, deps);
    const target: PortForwardTarget = { namespace: path.namespace, name: path.name, uid: pod.metadata.uid };
    if (deps.relay?.owns(pod.metadata.uid)) {
      // A real runtime behind: the kubelet proxies the request as it is, and
      // the runtime's streaming server negotiates and answers it. The
      // simulator does not translate a WebSocket tunnel onto a real runtime's
      // SPDY: it answers as an API server without the tunnel would, and
      // clients that fall back (kubectl, kubesocks auto) use SPDY there.
      if (isWebSocket(req)) throw badRequest('query parameter "port" is required');
      deps.relay.relay(target, req, socket, head);
      return;
    }
    if (!isWebSocket(req)) return upgradeSpdy(req, socket, head, pod, path, target, deps);
    if (deps.gates.PortForwardWebsockets && isTunnelingRequest(req)) return upgradeTunnel(req, socket, head, pod, path, target, deps);
    return upgradeChannels(req, socket, head, pod, path, target, deps);
  } catch (err) {
    const statusError = err instanceof StatusError ? err : internalError(String(err));
    writeRawStatus(socket, statusError.status, portForwardErrorHeaders(statusError));
  }
}

function upgradeSpdy(req: IncomingMessage, socket: Duplex, head: Buffer, pod: PodObject, path: PortForwardPath, target: PortForwardTarget, deps: PortForwardDeps): void {
  kubeletAdmit(pod, path);
  negotiate(req);
  const upgrade = (req.headers.upgrade ?? '').trim().toLowerCase();
  const connection = (req.headers.connection ?? '').toLowerCase();
  if (upgrade !== 'spdy/3.1' || !connection.includes('upgrade')) throw missingUpgradeHeaders();
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      'Upgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${PORT_FORWARD_PROTOCOL}\r\n` +
      `Date: ${new Date().toUTCString()}\r\n\r\n`,
  );
  deps.counters.upgrades++;
  deps.counters.tunnels['SPDY/3.1']++;
  // SPDY frames are small and latency-bound (SYN_REPLY, PING): no Nagle.
  (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  deps.kubelet.accept(target, socket, head);
}

/**
 * KEP-4006: strip `SPDY/3.1+` from the offered subprotocols and upgrade to
 * the kubelet with them as X-Stream-Protocol-Version. The kubelet's answer
 * decides: a refusal is replayed to the client as it is (its WebSocket
 * handshake then fails and it falls back); a 101 completes the WebSocket
 * handshake selecting `SPDY/3.1+` + the kubelet's chosen protocol.
 */
function upgradeTunnel(req: IncomingMessage, socket: Duplex, head: Buffer, pod: PodObject, path: PortForwardPath, target: PortForwardTarget, deps: PortForwardDeps): void {
  const spdyProtocols = tunneledSpdyProtocols(req);
  if (spdyProtocols.length === 0) return refuseTunnel(socket);
  kubeletAdmit(pod, path);
  negotiate(req, spdyProtocols);
  acceptWebSocket(req, socket, head, `SPDY/3.1+${PORT_FORWARD_PROTOCOL}`, (ws) => {
    deps.counters.upgrades++;
    deps.counters.tunnels['SPDY/3.1+portforward.k8s.io']++;
    deps.kubelet.accept(target, tunnelStream(ws), Buffer.alloc(0));
  });
}

/** The kubelet's own WebSocket port-forward (cri/streaming/portforward/websocket.go). */
function upgradeChannels(req: IncomingMessage, socket: Duplex, head: Buffer, pod: PodObject, path: PortForwardPath, target: PortForwardTarget, deps: PortForwardDeps): void {
  // The API server passes `ports` on as the kubelet's `port`; the kubelet checks them.
  const ports = parsePorts(new URL(req.url ?? '/', 'https://localhost').searchParams.getAll('ports'));
  kubeletAdmit(pod, path);
  const protocol = channelProtocols(req);
  acceptWebSocket(req, socket, head, protocol.selected, (ws) => {
    deps.counters.upgrades++;
    deps.counters.tunnels[protocol.counter]++;
    deps.kubelet.acceptChannels(target, ws, ports, protocol.base64);
  });
}
