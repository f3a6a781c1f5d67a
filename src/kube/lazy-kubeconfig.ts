/**
 * A KubeConfig with @kubernetes/client-node's semantics that loads only what
 * the chosen user entry needs.
 *
 * Why not `import { KubeConfig } from '@kubernetes/client-node'`: its index
 * (and its config.js) imports every generated API class, node-fetch,
 * openid-client, jsonpath-plus and both proxy agents — about 70 MiB of RSS
 * and 0.4–0.65 s before kubesocks can listen, for a proxy that needs a few
 * hundred lines of it. This class keeps client-node's own pieces where the
 * meaning lives: the kubeconfig parsing and validation (`config_types.js`:
 * newClusters/newUsers/newContexts, the same code `KubeConfig.loadFromString`
 * runs), and the authenticators themselves (exec plugins, token files, OIDC,
 * the Azure and GCP auth-providers), each imported only when a user entry
 * needs it. What is re-stated here is the small glue of client-node 1.4.0's
 * config.js (`applyHTTPSOptions`, `applyAuthorizationHeader`,
 * `applyToHTTPSOptions`, `createAgent`, `makePathsAbsolute`,
 * `loadFromCluster`), line for line, so every auth method kubectl supports and
 * client-node implements keeps working: token, token file, client
 * certificates, exec plugins, auth-provider (oidc, azure, gcp, exec), basic
 * auth, impersonation and proxy-url (http(s) and socks).
 * Source: node_modules/@kubernetes/client-node/dist/config.js (pinned 1.4.0 in
 * package.json; test/kube/kubeconfig-lazy.test.ts checks what gets loaded).
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import yaml from 'js-yaml';
import {
  newClusters,
  newContexts,
  newUsers,
  type Cluster,
  type ConfigOptions,
  type Context,
  type User,
} from '@kubernetes/client-node/dist/config_types.js';

export type { Cluster, Context, User };

/** The shape every client-node authenticator has (dist/auth.d.ts). */
interface Authenticator {
  isAuthProvider(user: User): unknown;
  applyAuthentication(user: User, opts: https.RequestOptions): Promise<void>;
}

/**
 * client-node's authenticators in its order (config.js constructor: Azure,
 * GCP, Exec, File, OIDC; the first whose isAuthProvider matches is used),
 * each with the predicate copied from its isAuthProvider so the module is
 * imported only for a user that needs it.
 */
const AUTHENTICATORS: ReadonlyArray<{ matches(user: User): boolean; load(): Promise<Authenticator> }> = [
  {
    matches: (u) => u.authProvider?.name === 'azure',
    load: async () => new (await import('@kubernetes/client-node/dist/azure_auth.js')).AzureAuth(),
  },
  {
    matches: (u) => u.authProvider?.name === 'gcp',
    load: async () => new (await import('@kubernetes/client-node/dist/gcp_auth.js')).GoogleCloudPlatformAuth(),
  },
  {
    matches: (u) => Boolean(u.exec) || u.authProvider?.name === 'exec' || Boolean(u.authProvider?.config?.exec),
    load: async () => new (await import('@kubernetes/client-node/dist/exec_auth.js')).ExecAuth(),
  },
  {
    matches: (u) => Boolean(u.authProvider?.config?.tokenFile),
    load: async () => new (await import('@kubernetes/client-node/dist/file_auth.js')).FileAuth(),
  },
  {
    matches: (u) => u.authProvider?.name === 'oidc',
    load: async () =>
      new (await import('@kubernetes/client-node/dist/oidc_auth.js')).OpenIDConnectAuth() as unknown as Authenticator,
  },
];

const SERVICEACCOUNT_ROOT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigOptions {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string | undefined;
}

export class KubeConfig {
  clusters: Cluster[] = [];
  users: User[] = [];
  contexts: Context[] = [];
  #currentContext: string | undefined;
  /**
   * One instance per authenticator kind, created on first use. They hold
   * caches (ExecAuth's credentials, FileAuth's token, OIDC's refreshed
   * token), so a new KubeConfig starts with empty ones, as in client-node.
   */
  readonly #authenticators = new Map<number, Promise<Authenticator>>();

  getContexts(): Context[] {
    return this.contexts;
  }

  getClusters(): Cluster[] {
    return this.clusters;
  }

  getUsers(): User[] {
    return this.users;
  }

  getCurrentContext(): string {
    return this.#currentContext as string;
  }

  setCurrentContext(context: string): void {
    this.#currentContext = context;
  }

  getContextObject(name: string): Context | null {
    return findObject(this.contexts, name, 'context');
  }

  getCurrentCluster(): Cluster | null {
    const context = this.getContextObject(this.#currentContext as string);
    return context ? findObject(this.clusters, context.cluster, 'cluster') : null;
  }

  getCurrentUser(): User | null {
    const context = this.getContextObject(this.#currentContext as string);
    return context ? findObject(this.users, context.user, 'user') : null;
  }

  loadFromString(config: string, opts?: Partial<ConfigOptions>): void {
    const obj = yaml.load(config) as Record<string, unknown>;
    this.clusters = newClusters(obj.clusters, opts);
    this.contexts = newContexts(obj.contexts, opts);
    this.users = newUsers(obj.users, opts);
    this.#currentContext = obj['current-context'] as string | undefined;
  }

  loadFromOptions(options: KubeConfigOptions): void {
    this.clusters = options.clusters;
    this.contexts = options.contexts;
    this.users = options.users;
    this.#currentContext = options.currentContext;
  }

  /** client-node's loadFromCluster: the pod's service account. */
  loadFromCluster(pathPrefix = ''): void {
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const port = process.env.KUBERNETES_SERVICE_PORT;
    const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
    const serverHost = host && net.isIPv6(host) ? `[${host}]` : host;
    this.clusters = [
      { name: 'inCluster', caFile: `${pathPrefix}${SERVICEACCOUNT_ROOT}/ca.crt`, server: `${scheme}://${serverHost}:${port}`, skipTLSVerify: false },
    ];
    this.users = [
      { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${pathPrefix}${SERVICEACCOUNT_ROOT}/token` } } },
    ];
    const namespaceFile = `${pathPrefix}${SERVICEACCOUNT_ROOT}/namespace`;
    let namespace: string | undefined;
    try {
      namespace = fs.readFileSync(namespaceFile).toString('utf-8');
    } catch {
      // no namespace file: the default namespace
    }
    this.contexts = [{ cluster: 'inCluster', name: 'inClusterContext', user: 'inClusterUser', ...(namespace !== undefined ? { namespace } : {}) }];
    this.#currentContext = 'inClusterContext';
  }

  makePathsAbsolute(rootDirectory: string): void {
    for (const cluster of this.clusters) if (cluster.caFile) cluster.caFile = makeAbsolutePath(rootDirectory, cluster.caFile);
    for (const user of this.users) {
      if (user.certFile) user.certFile = makeAbsolutePath(rootDirectory, user.certFile);
      if (user.keyFile) user.keyFile = makeAbsolutePath(rootDirectory, user.keyFile);
    }
  }

  /**
   * TLS material, Authorization / Impersonate-User headers and basic auth of
   * the current context into `opts`; `opts.agent` is set only when the
   * cluster has a proxy-url (client-node always builds an agent; kubesocks
   * keeps its own keep-alive agent and uses this one only for the proxy).
   */
  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const user = this.getCurrentUser();
    const cluster = this.getCurrentCluster();
    this.#applyHTTPSOptions(opts, cluster, user);
    await this.#applyAuthorizationHeader(opts, user);
    if (user?.username) opts.auth = `${user.username}:${user.password}`;
    if (cluster?.proxyUrl) opts.agent = await proxyAgent(cluster, opts);
  }

  #applyHTTPSOptions(opts: https.RequestOptions, cluster: Cluster | null, user: User | null): void {
    if (!user) return;
    if (cluster?.skipTLSVerify) opts.rejectUnauthorized = false;
    if (cluster?.tlsServerName) opts.servername = cluster.tlsServerName;
    const ca = cluster ? bufferFromFileOrString(cluster.caFile, cluster.caData) : null;
    if (ca) opts.ca = ca;
    const cert = bufferFromFileOrString(user.certFile, user.certData);
    if (cert) opts.cert = cert;
    const key = bufferFromFileOrString(user.keyFile, user.keyData);
    if (key) opts.key = key;
    if (user.impersonateUser != null) {
      headersOf(opts)['Impersonate-User'] = user.impersonateUser;
    }
  }

  async #applyAuthorizationHeader(opts: https.RequestOptions, user: User | null): Promise<void> {
    if (!user) return;
    const headers = headersOf(opts);
    const index = AUTHENTICATORS.findIndex((a) => a.matches(user));
    if (index >= 0) {
      let authenticator = this.#authenticators.get(index);
      if (!authenticator) {
        authenticator = AUTHENTICATORS[index]!.load();
        this.#authenticators.set(index, authenticator);
      }
      await (await authenticator).applyAuthentication(user, opts);
    }
    if (user.token) headers.Authorization = `Bearer ${user.token}`;
  }
}

/** client-node's createAgent for a cluster with a proxy-url; the agent libraries load only here. */
async function proxyAgent(cluster: Cluster, opts: https.RequestOptions): Promise<http.Agent> {
  const agentOptions: Record<string, unknown> = {
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    pfx: opts.pfx,
    passphrase: opts.passphrase,
    timeout: opts.timeout,
    servername: opts.servername,
  };
  if (opts.rejectUnauthorized !== undefined) agentOptions.rejectUnauthorized = opts.rejectUnauthorized;
  const proxyUrl = cluster.proxyUrl as string;
  if (proxyUrl.startsWith('socks')) {
    const { SocksProxyAgent } = await import('socks-proxy-agent');
    return new SocksProxyAgent(proxyUrl, agentOptions) as unknown as http.Agent;
  }
  const { HttpsProxyAgent, HttpProxyAgent } = await import('hpagent');
  if (cluster.server.startsWith('https')) return new HttpsProxyAgent({ ...agentOptions, proxy: proxyUrl }) as unknown as http.Agent;
  if (cluster.server.startsWith('http')) return new HttpProxyAgent({ ...agentOptions, proxy: proxyUrl }) as unknown as http.Agent;
  throw new Error('Unsupported proxy type');
}

/** client-node's findObject: also accepts entries still in kubeconfig form (`{name, cluster: {…}}`). */
/** `opts.headers` as the object form client-node writes into (created when absent). */
function headersOf(opts: https.RequestOptions): http.OutgoingHttpHeaders {
  opts.headers ??= {};
  return opts.headers as http.OutgoingHttpHeaders;
}

function findObject<T extends { name: string }>(list: T[] | undefined, name: string, key: 'cluster' | 'user' | 'context'): T | null {
  if (!list) return null;
  for (const obj of list) {
    if (obj.name !== name) continue;
    const nested = (obj as Record<string, unknown>)[key];
    if (nested && typeof nested === 'object') {
      (nested as { name: string }).name = name;
      return nested as T;
    }
    return obj;
  }
  return null;
}

function makeAbsolutePath(root: string, file: string): string {
  return !root || path.isAbsolute(file) ? file : path.join(root, file);
}

function bufferFromFileOrString(file: string | undefined, data: string | undefined): Buffer | null {
  if (file) return fs.readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return null;
}

