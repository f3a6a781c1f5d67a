/**
 * A client for one context's API server: the request options (TLS + auth)
 * for `https.request`, credentials refreshed on demand, a keep-alive agent.
 * Loading the kubeconfig and choosing the context is kubeconfig.ts.
 */
import { EventEmitter } from 'node:events';
import * as https from 'node:https';
import type { KubeConfig } from './lazy-kubeconfig.js';
import { getJSON, type GetOptions, type Reconfiguration, type RequestSource } from './api.js';
import { CredentialCache } from './credentials.js';
import { ApiHealth } from './health.js';
import type { KubesocksError } from '../errors.js';
import {
  loadKubeConfig,
  loadKubeContexts,
  type KubeClientOptions,
  type KubeContextsOptions,
  type LoadedKubeConfig,
  type LoadEnvironment,
} from './kubeconfig.js';

export interface LoadedContext {
  /** The kubeconfig context name. */
  name: string;
  /** Its client, or null when the context cannot be used (`error` says why). */
  client: KubeClient | null;
  error: KubesocksError | null;
}

export interface LoadedContexts {
  /** Files read, or `in-cluster`. */
  source: string;
  /** In serving order: the default first. */
  contexts: LoadedContext[];
}

export class KubeClient implements RequestSource {
  /** The context in use. */
  readonly contextName: string;
  /** Namespace for short names: `-n`, else the context's, else `default`. Kept across reconfigure(). */
  readonly namespace: string;
  /**
   * Keep-alive agent for getJSON, watches and the tunnel's upgrades (an
   * upgrade reuses an idle TLS connection when there is one; the upgraded
   * socket then leaves the agent).
   */
  readonly agent: https.Agent;
  /** Whether the API server answers, learnt from every request (health.ts). */
  readonly health: ApiHealth;

  #loaded: LoadedKubeConfig;
  #server: URL;
  #credentials: CredentialCache;
  readonly #reload: () => Promise<LoadedKubeConfig>;
  readonly #ttlMs: number | undefined;
  readonly #reconfigured = new EventEmitter<{ reconfigured: [change: Reconfiguration] }>();

  private constructor(loaded: LoadedKubeConfig, reload: () => Promise<LoadedKubeConfig>, ttlMs: number | undefined) {
    this.contextName = loaded.contextName;
    this.namespace = loaded.namespace;
    this.#loaded = loaded;
    this.#reload = reload;
    this.#ttlMs = ttlMs;
    this.#server = new URL(loaded.cluster.server);
    this.agent = new https.Agent({ keepAlive: true });
    this.health = new ApiHealth(loaded.cluster.server, this.contextName);
    // Every list+watch of the context listens (three per namespace watched).
    this.#reconfigured.setMaxListeners(0);
    this.#credentials = this.#credentialsFor(loaded);
  }

  /** The cluster's server URL as written in the kubeconfig (trailing slash removed). */
  get clusterServer(): string {
    return this.#loaded.cluster.server;
  }

  /** The kubeconfig user name of the context ('' when anonymous). */
  get userName(): string {
    return this.#loaded.kc.getContextObject(this.contextName)?.user ?? '';
  }

  /** Where the configuration came from (files joined by path.delimiter, or `in-cluster`). */
  get source(): string {
    return this.#loaded.source;
  }

  /** The configuration in use (for kubeconfig-reload.ts: what it is compared with, which files it depends on). */
  get configuration(): LoadedKubeConfig {
    return this.#loaded;
  }

  /**
   * Uses `loaded` from now on: its server, CA, client certificate and
   * credentials (the namespace for short names stays). Requests from now on
   * go there; idle keep-alive connections to the old server close (the ones
   * in use finish); `onReconfigured` listeners hear of it (the watches
   * relist, the tunnel pool retires its connections). `change.sameCluster`
   * says only credentials changed (default false: it may be another cluster).
   */
  reconfigure(loaded: LoadedKubeConfig, change: Reconfiguration = { sameCluster: false }): void {
    if (loaded.contextName !== this.contextName) throw new TypeError(`reconfigure: expected context "${this.contextName}", got "${loaded.contextName}"`);
    this.#loaded = loaded;
    this.#server = new URL(loaded.cluster.server);
    this.#credentials = this.#credentialsFor(loaded);
    // The agent keys its sockets by host, port, CA and client certificate,
    // so new requests never reuse a connection made with the old settings;
    // the idle ones would only linger until their keep-alive timeout.
    for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    this.health.reconfigured(loaded.cluster.server);
    this.#reconfigured.emit('reconfigured', change);
  }

  /** Calls `listener` after each reconfigure(); returns the function that stops that. */
  onReconfigured(listener: (change: Reconfiguration) => void): () => void {
    this.#reconfigured.on('reconfigured', listener);
    return () => this.#reconfigured.off('reconfigured', listener);
  }

  #credentialsFor(loaded: LoadedKubeConfig): CredentialCache {
    const reload = this.#reload;
    return new CredentialCache(
      {
        contextName: loaded.contextName,
        current: () => loaded.kc,
        reload: async () => {
          try {
            const again = await reload();
            // A refresh after a 401 renews credentials only: a kubeconfig
            // that now points the context at another server is
            // kubeconfig-reload.ts's to apply (reconfigure(), which also
            // retires the pool and relists the watches).
            return again.cluster.server === loaded.cluster.server ? again.kc : null;
          } catch {
            return null;
          }
        },
        fresh: (kc) => {
          // A new KubeConfig gets new authenticators, i.e. empty ExecAuth and
          // FileAuth caches.
          const Ctor = kc.constructor as new () => KubeConfig;
          const fresh = new Ctor();
          fresh.loadFromOptions({
            clusters: kc.getClusters(),
            users: kc.getUsers(),
            contexts: kc.getContexts(),
            currentContext: kc.getCurrentContext(),
          });
          return fresh;
        },
      },
      this.#ttlMs,
    );
  }

  /**
   * Loads the kubeconfig (see KubeClientOptions). Rejects with a
   * KubesocksError CONFIG whose message is one line saying what to fix.
   */
  static async load(opts: KubeClientOptions = {}, where: LoadEnvironment = {}): Promise<KubeClient> {
    const loaded = await loadKubeConfig(opts, where);
    return new KubeClient(loaded, () => loadKubeConfig(opts, where), where.credentialTtlMs);
  }

  /**
   * Loads the kubeconfig once and makes a client for each of several
   * contexts (see loadKubeContexts). Nothing contacts an API server or runs
   * an exec plugin here: that waits for the first request.
   */
  static async loadMany(opts: KubeContextsOptions, where: LoadEnvironment = {}): Promise<LoadedContexts> {
    const { source, contexts } = await loadKubeContexts(opts, where);
    return {
      source,
      contexts: contexts.map((c) =>
        c.loaded ? { name: c.name, client: new KubeClient(c.loaded, c.reload, where.credentialTtlMs), error: null } : { name: c.name, client: null, error: c.error },
      ),
    };
  }

  /** For the startup line: `context NAME, cluster https://…`. */
  describe(): string {
    return `context ${this.contextName}, cluster ${this.clusterServer}`;
  }

  toString(): string {
    return this.describe();
  }

  /**
   * Options for `https.request` to `path` (appended to any path prefix of
   * the cluster's server URL): hostname, port, path, method, ca/cert/key,
   * servername (tls-server-name), rejectUnauthorized
   * (insecure-skip-tls-verify), headers with Authorization and impersonation
   * merged with `headers`, and `agent` only when the cluster has a proxy-url.
   */
  async requestOptions(method: string, path: string, headers: Record<string, string> = {}): Promise<https.RequestOptions> {
    // Server and credentials of one configuration, even if reconfigure() runs during the await.
    const server = this.#server;
    const credentials = this.#credentials;
    const m = await credentials.get();
    const opts: https.RequestOptions = {
      protocol: 'https:',
      // URL keeps IPv6 brackets in hostname; the socket layer wants them off.
      hostname: server.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: server.port ? Number(server.port) : 443,
      path: joinPath(server.pathname, path),
      method,
      headers: { ...m.headers, ...headers },
    };
    if (m.ca !== undefined) opts.ca = m.ca;
    if (m.cert !== undefined) opts.cert = m.cert;
    if (m.key !== undefined) opts.key = m.key;
    if (m.servername !== undefined) opts.servername = m.servername;
    if (m.rejectUnauthorized !== undefined) opts.rejectUnauthorized = m.rejectUnauthorized;
    if (m.auth !== undefined) opts.auth = m.auth;
    if (m.agent !== undefined) opts.agent = m.agent;
    return opts;
  }

  /**
   * Forget cached credentials (after a 401): the next requestOptions()
   * re-reads the kubeconfig and token files and re-runs the exec plugin.
   */
  invalidateCredentials(): void {
    this.#credentials.invalidate();
  }

  /**
   * GET JSON, refreshing credentials once on a 401. Non-2xx answers reject
   * with a KubesocksError (404 NOT_FOUND, 403 FORBIDDEN, 401 UNAUTHORIZED,
   * others API_UNREACHABLE) carrying the API server's Status message; network
   * failures reject with API_UNREACHABLE (TLS verification failures CONFIG).
   */
  getJSON<T>(path: string, options: GetOptions = {}): Promise<T> {
    return getJSON<T>(this, path, options);
  }

  /** Closes idle keep-alive connections. Requests in flight are not touched. */
  close(): void {
    this.agent.destroy();
  }
}

/** `https://h/prefix` + `/api/v1/x` → `/prefix/api/v1/x`. */
function joinPath(prefix: string, p: string): string {
  const base = prefix.replace(/\/+$/, '');
  return base + (p.startsWith('/') ? p : `/${p}`);
}
