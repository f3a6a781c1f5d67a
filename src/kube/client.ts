/**
 * A client for one context's API server: the request options (TLS + auth)
 * for `https.request`, credentials refreshed on demand, a keep-alive agent.
 * Loading the kubeconfig and choosing the context is kubeconfig.ts.
 */
import * as https from 'node:https';
import type { KubeConfig } from './lazy-kubeconfig.js';
import { getJSON, type GetOptions, type RequestSource } from './api.js';
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
  /** The cluster's server URL as written in the kubeconfig (trailing slash removed). */
  readonly clusterServer: string;
  /** Namespace for short names: `-n`, else the context's, else `default`. */
  readonly namespace: string;
  /** The kubeconfig user name of the context ('' when anonymous). */
  readonly userName: string;
  /** Where the configuration came from (files joined by path.delimiter, or `in-cluster`). */
  readonly source: string;
  /**
   * Keep-alive agent for getJSON, watches and the tunnel's upgrades (an
   * upgrade reuses an idle TLS connection when there is one; the upgraded
   * socket then leaves the agent).
   */
  readonly agent: https.Agent;
  /** Whether the API server answers, learnt from every request (health.ts). */
  readonly health: ApiHealth;

  readonly #server: URL;
  readonly #credentials: CredentialCache;

  private constructor(loaded: LoadedKubeConfig, reload: () => Promise<LoadedKubeConfig>, ttlMs: number | undefined) {
    this.contextName = loaded.contextName;
    this.clusterServer = loaded.cluster.server;
    this.namespace = loaded.namespace;
    this.userName = loaded.kc.getContextObject(loaded.contextName)?.user ?? '';
    this.source = loaded.source;
    this.#server = new URL(loaded.cluster.server);
    this.agent = new https.Agent({ keepAlive: true });
    this.health = new ApiHealth(this.clusterServer, this.contextName);
    this.#credentials = new CredentialCache(
      {
        contextName: loaded.contextName,
        current: () => loaded.kc,
        reload: async () => {
          try {
            const again = await reload();
            // A kubeconfig edited to point the context at another server would
            // change what this client talks to: keep the old configuration
            // (with fresh authenticators) in that case.
            return again.cluster.server === this.clusterServer ? again.kc : null;
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
      ttlMs,
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
    const m = await this.#credentials.get();
    const opts: https.RequestOptions = {
      protocol: 'https:',
      // URL keeps IPv6 brackets in hostname; the socket layer wants them off.
      hostname: this.#server.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.#server.port ? Number(this.#server.port) : 443,
      path: joinPath(this.#server.pathname, path),
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
