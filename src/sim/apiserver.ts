/**
 * The simulated API server: HTTPS with bearer-token auth, discovery, GET /
 * list / watch of the store's resources (JSON or server-side Tables), and the
 * port-forward upgrade. It can be restarted on the same port with the same CA,
 * dropping every connection, as a real control-plane restart does.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { DEFAULT_CIPHERS } from 'node:tls';
import type { Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SimCerts } from './certs.js';
import { apiGroup, apiGroupList, apiResourceList, coreVersions, versionInfo } from './discovery.js';
import type { KubeObject } from './objects.js';
import { portForwardErrorHeaders, refusePlainPortForward, upgradePortForward, writeRawStatus } from './portforward.js';
import type { PortForwardDeps } from './portforward.js';
import type { RequestAttributes, SimUser, Users } from './rbac.js';
import { apiVersionOf } from './resources.js';
import type { ResourceInfo } from './resources.js';
import { parseRoute } from './routes.js';
import { fieldSelector, labelSelector, selectedName } from './selectors.js';
import type { Selector } from './selectors.js';
import { asStatusError, badRequest, methodNotAllowed, notFound, pathNotFound, unauthorized } from './status.js';
import type { ObjectStore } from './store.js';
import { toTable } from './tables.js';
import type { IncludeObject, TableOptions } from './tables.js';
import type { PortForwardHandler, PortForwardRelay, SimCounters, SimFeatureGates } from './types.js';
import { serveWatch } from './watch.js';

/**
 * A real API server is Go: with AES hardware its TLS 1.3 server picks
 * AES-128-GCM first, where Node's default would pick AES-256-GCM. Serving in
 * Go's order keeps every client's crypto cost what it is against a cluster.
 */
const GO_CIPHER_ORDER = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_256_GCM_SHA384',
  ...DEFAULT_CIPHERS.split(':').filter((cipher) => !cipher.startsWith('TLS_')),
].join(':');

export interface ApiServerOptions {
  host: string;
  port: number;
  certs: SimCerts;
  store: ObjectStore;
  users: Users;
  kubelet: PortForwardHandler;
  counters: SimCounters;
  /** The kubelet's relay to a real runtime, for pods with a real sandbox. */
  relay?: PortForwardRelay | undefined;
  /** Read on every request, so switching a gate takes effect at once. */
  gates: SimFeatureGates;
}

/** `meta.k8s.io/v1` when the Accept header's first usable type is a Table, else undefined (plain JSON). */
export function tableVersion(accept: string | undefined): string | undefined {
  for (const part of (accept ?? '').split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim());
    const p = new Map(params.map((kv) => kv.split('=').map((s) => s.trim()) as [string, string]));
    const json = type === 'application/json' || type === '*/*' || type === 'application/*';
    if (!json) continue;
    const as = p.get('as');
    if (as === undefined) return undefined;
    if (as === 'Table' && p.get('g') === 'meta.k8s.io' && (p.get('v') === 'v1' || p.get('v') === 'v1beta1')) return `meta.k8s.io/${p.get('v')}`;
  }
  return undefined;
}

function sendJson(res: ServerResponse, code: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-cache, private',
    'Audit-Id': randomUUID(),
    'Content-Length': Buffer.byteLength(text),
    ...extraHeaders,
  });
  res.end(text);
}

function parseBool(value: string | null): boolean {
  return value === 'true' || value === '1';
}

/** Lists serve items without kind/apiVersion, as the real server does. */
function listItem(object: KubeObject): Omit<KubeObject, 'kind' | 'apiVersion'> {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = object;
  return rest;
}

export class ApiServer {
  readonly #options: ApiServerOptions;
  #server: Server | undefined;
  #port: number;
  /** Open watch responses, for cutWatches(). */
  readonly #watches = new Set<ServerResponse>();
  /** Sockets taken out of the HTTP server by an upgrade (port-forward and refusals). */
  readonly #upgraded = new Set<Duplex>();
  /**
   * Every accepted TCP socket, from before its TLS handshake. closeAllConnections()
   * only knows connections that reached HTTP; one still (or forever) in its
   * handshake would keep server.close() waiting until the 120 s handshake timeout.
   */
  readonly #sockets = new Set<Socket>();

  constructor(options: ApiServerOptions) {
    this.#options = options;
    this.#port = options.port;
  }

  /** Where the server listens: `https://HOST:PORT`. */
  get url(): string {
    return `https://${this.#options.host}:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<void> {
    const { certs, host } = this.#options;
    const server = createServer(
      { key: certs.keyPem, cert: certs.certPem, noDelay: true, ciphers: GO_CIPHER_ORDER, honorCipherOrder: true },
      (req, res) => this.#onRequest(req, res),
    );
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // Longer than clients' idle pools (Go keeps idle connections 90 s) so a reused connection is rarely closed under a request.
    server.keepAliveTimeout = 95_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Ends every open watch response abruptly (the connection is destroyed mid-stream). */
  cutWatches(): void {
    for (const res of this.#watches) res.socket?.destroy();
    this.#watches.clear();
  }

  /** Stops listening and drops every connection, including upgraded ones. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#upgraded) socket.destroy();
    this.#upgraded.clear();
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** Drops everything and listens again on the same port with the same certificate. */
  async restart(): Promise<void> {
    await this.close();
    await this.listen();
  }

  #deps(): PortForwardDeps {
    const { users, store, kubelet, counters, relay, gates } = this.#options;
    return { users, store, kubelet, counters, relay, gates };
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    // A client that vanishes mid-handshake is not a server failure.
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'https://localhost');
    const route = parseRoute(url.pathname);
    if (route.kind === 'resource' && route.info.name === 'pods' && route.subresource === 'portforward' && route.namespace && route.name) {
      upgradePortForward(req, socket, head, { namespace: route.namespace, name: route.name }, this.#deps());
      return;
    }
    const user = this.#options.users.authenticate(req.headers.authorization);
    const err = user ? badRequest('Upgrade requests are only served on pods/portforward') : unauthorized();
    writeRawStatus(socket, err.status);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.#handle(req, res);
    } catch (err) {
      const statusError = asStatusError(err);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, statusError.code, statusError.status, portForwardErrorHeaders(statusError));
    }
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const route = parseRoute(url.pathname);
    // A portforward request carries its own, ordered checks (authn first).
    if (route.kind === 'resource' && route.subresource === 'portforward' && route.info.name === 'pods' && route.namespace && route.name) {
      refusePlainPortForward(req, { namespace: route.namespace, name: route.name }, this.#deps());
    }
    const user = this.#options.users.authenticate(req.headers.authorization);
    if (!user) throw unauthorized();
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed();

    switch (route.kind) {
      case 'version':
        return sendJson(res, 200, versionInfo());
      case 'health':
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('ok');
        return;
      case 'coreVersions':
        return sendJson(res, 200, coreVersions(`${this.#options.host}:${this.#port}`));
      case 'groupList':
        return sendJson(res, 200, apiGroupList());
      case 'group': {
        const doc = apiGroup(route.group);
        if (!doc) throw pathNotFound();
        return sendJson(res, 200, doc);
      }
      case 'resourceList': {
        const doc = apiResourceList(route.groupVersion);
        if (!doc) throw pathNotFound();
        return sendJson(res, 200, doc);
      }
      case 'resource':
        if (route.subresource !== undefined) throw pathNotFound();
        return this.#serveResource(req, res, url, user, route.info, route.namespace, route.name, route.legacyWatch);
      case 'unknown':
        throw pathNotFound();
    }
  }

  #serveResource(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    user: SimUser,
    info: ResourceInfo,
    namespace: string | undefined,
    name: string | undefined,
    legacyWatch: boolean,
  ): void {
    const { store, users } = this.#options;
    const q = url.searchParams;
    const watch = legacyWatch || parseBool(q.get('watch'));
    const table = tableVersion(req.headers.accept);
    const includeObject = (q.get('includeObject') ?? 'Metadata') as IncludeObject;
    if (!['None', 'Metadata', 'Object'].includes(includeObject)) throw badRequest(`includeObject: Unsupported value: "${includeObject}"`);
    const tableOptions = (noHeaders: boolean): TableOptions => ({ apiVersion: table ?? 'meta.k8s.io/v1', includeObject, noHeaders });
    const gr = { group: info.group, resource: info.name };

    // apiserver RequestInfo: a namespace's own name is its namespace attribute; a
    // list/watch pinned by metadata.name carries that name.
    const attrs: RequestAttributes = {
      verb: name !== undefined && !watch ? 'get' : watch ? 'watch' : 'list',
      group: info.group,
      resource: info.name,
    };
    const attrNamespace = info.name === 'namespaces' && name !== undefined ? name : namespace;
    if (attrNamespace !== undefined) attrs.namespace = attrNamespace;
    const attrName = name ?? selectedName(q.get('fieldSelector'));
    if (attrName !== undefined) attrs.name = attrName;
    users.authorize(user, attrs);

    const labels = labelSelector(q.get('labelSelector'));
    const fields = fieldSelector(info.name, q.get('fieldSelector'));
    const byName: Selector = name !== undefined ? (o) => o.metadata.name === name : () => true;
    const selector: Selector = (o) => byName(o) && labels(o) && fields(o);

    if (watch) {
      const rv = q.get('resourceVersion') ?? '';
      if (rv !== '' && !/^\d+$/.test(rv)) throw badRequest(`resourceVersion: Invalid value: "${rv}": must be a non-negative integer`);
      const timeout = q.get('timeoutSeconds');
      if (timeout !== null && !/^\d+$/.test(timeout)) throw badRequest(`timeoutSeconds: Invalid value: "${timeout}": must be a non-negative integer`);
      serveWatch(
        store,
        {
          resource: info.name,
          namespace,
          selector,
          resourceVersion: rv,
          sendInitialEvents: parseBool(q.get('sendInitialEvents')),
          timeoutSeconds: timeout === null || timeout === '0' ? undefined : Number(timeout),
          encode: (object, first) => (table ? toTable(info.name, [object], tableOptions(!first)) : object),
        },
        res,
        this.#watches,
      );
      return;
    }

    if (name !== undefined) {
      const object = store.get(info.name, namespace, name);
      if (!object) throw notFound(gr, name);
      return sendJson(res, 200, table ? toTable(info.name, [object], tableOptions(false), object.metadata.resourceVersion) : object);
    }

    // `limit` is accepted and ignored: a server may return everything at once (no `continue`).
    const items = store.list(info.name, namespace).filter(selector);
    const resourceVersion = String(store.resourceVersion);
    if (table) return sendJson(res, 200, toTable(info.name, items, tableOptions(false), resourceVersion));
    return sendJson(res, 200, { kind: info.listKind, apiVersion: apiVersionOf(info), metadata: { resourceVersion }, items: items.map(listItem) });
  }
}

