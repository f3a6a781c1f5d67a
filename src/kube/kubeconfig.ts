/**
 * The kubeconfig: which files, which context, which namespace. Parsing and
 * auth are @kubernetes/client-node's (loaded piece by piece, see
 * lazy-kubeconfig.ts); file merging and context choice follow
 * kubectl, which differs from client-node's `loadFromDefault` in ways users
 * notice (see mergeConfigs). The client that talks to the chosen context's
 * API server is client.ts.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import yaml from 'js-yaml';
import { KubeConfig, type Cluster, type Context, type User } from './lazy-kubeconfig.js';
import { firstLine, KubesocksError } from '../errors.js';

export interface KubeClientOptions {
  /**
   * Kubeconfig path, or several joined by `path.delimiter` (merged like
   * `KUBECONFIG`). Default: `KUBECONFIG` (merged), else `~/.kube/config`,
   * else the in-cluster service account.
   */
  kubeconfig?: string;
  /** Context name. Default: the kubeconfig's current-context. */
  context?: string;
  /** Namespace for short names; overrides the context's. Default: the context's, else `default`. */
  namespace?: string;
}

/** Where to look instead of the real process environment (tests). */
export interface LoadEnvironment {
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  /** Prefix of `/var/run/secrets/kubernetes.io/serviceaccount` (client-node's `loadFromCluster(pathPrefix)`). */
  serviceAccountPrefix?: string;
  /** How long request material (tokens, exec credentials) is reused. Default 60 s. */
  credentialTtlMs?: number;
}

const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The KubeConfig with the chosen context set, and where it came from. */
export interface LoadedKubeConfig {
  kc: KubeConfig;
  contextName: string;
  cluster: Cluster;
  user: User | null;
  namespace: string;
  /** Files read, or `in-cluster`. */
  source: string;
  /**
   * Every file this configuration depends on, for watching: the kubeconfig
   * files looked at (a missing KUBECONFIG entry too: once written, it is
   * merged in), and the chosen context's CA, client certificate, key and
   * token files. Empty in-cluster.
   */
  files: string[];
}

/**
 * Reads the kubeconfig the way kubectl does and selects the context.
 * Throws KubesocksError CONFIG with one line saying what is missing.
 */
export async function loadKubeConfig(opts: KubeClientOptions = {}, where: LoadEnvironment = {}): Promise<LoadedKubeConfig> {
  const read = await readKubeConfig(opts, where);
  return selectContext(read.kc, opts, read);
}

/** The merged kubeconfig before a context is chosen. */
interface ReadKubeConfig {
  kc: KubeConfig;
  source: string;
  /** Entries that were dropped as invalid, for messages about missing contexts. */
  problems: string[];
  /** The kubeconfig files looked at, existing or not ([] in-cluster). */
  candidates: string[];
  /** Token files by user name (`token-file`, kubectl's `tokenFile`), absolute: client-node keeps only their content. */
  tokenFiles: Map<string, string>;
}

/** The kubeconfig files kubectl would look at, and whether they were named explicitly (`--kubeconfig`). */
function candidateFiles(opts: KubeClientOptions, where: LoadEnvironment): { files: string[]; explicit: boolean } {
  const env = where.env ?? process.env;
  if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') {
    return { files: opts.kubeconfig.split(path.delimiter).filter((f) => f !== ''), explicit: true };
  }
  if (env.KUBECONFIG) return { files: env.KUBECONFIG.split(path.delimiter).filter((f) => f !== ''), explicit: false };
  const home = where.homeDir ?? os.homedir();
  return { files: home ? [path.join(home, '.kube', 'config')] : [], explicit: false };
}

async function readKubeConfig(opts: KubeClientOptions, where: LoadEnvironment, options: { inCluster?: boolean } = {}): Promise<ReadKubeConfig> {
  const env = where.env ?? process.env;
  const { files, explicit } = candidateFiles(opts, where);

  const existing: string[] = [];
  for (const file of files) {
    if (fs.existsSync(file)) existing.push(file);
    // kubectl ignores missing KUBECONFIG entries but not a missing --kubeconfig.
    else if (explicit) throw new KubesocksError('CONFIG', `kubeconfig ${file} does not exist`);
  }

  let kc: KubeConfig;
  let source: string;
  if (existing.length > 0) {
    const loaded: KubeConfig[] = [];
    const problems: string[] = [];
    const tokenFiles = new Map<string, string>();
    for (const file of existing) {
      const one = new KubeConfig();
      const text = withTokenFiles(file, tokenFiles);
      try {
        one.loadFromString(text);
        one.makePathsAbsolute(path.dirname(file));
      } catch (err) {
        // A broken entry (e.g. a token-file that no longer exists) must not
        // hide the other contexts: load what is valid, remember the reason.
        try {
          one.loadFromString(text, { onInvalidEntry: 'filter' });
          one.makePathsAbsolute(path.dirname(file));
          problems.push(`${file}: ${firstLine(err)}`);
        } catch (err2) {
          throw new KubesocksError('CONFIG', `cannot read kubeconfig ${file}: ${firstLine(err2)}`);
        }
      }
      loaded.push(one);
    }
    kc = mergeConfigs(new KubeConfig(), loaded);
    source = existing.join(path.delimiter);
    return { kc, source, problems, candidates: files.map((f) => path.resolve(f)), tokenFiles };
  }

  const prefix = where.serviceAccountPrefix ?? '';
  // A re-read while the kubeconfig is briefly missing (being replaced) must not turn into the in-cluster account.
  if (options.inCluster !== false && env.KUBERNETES_SERVICE_HOST && fs.existsSync(`${prefix}${SERVICEACCOUNT_DIR}/token`)) {
    kc = new KubeConfig();
    kc.loadFromCluster(prefix);
    source = 'in-cluster';
    // loadFromCluster reads process.env itself; build the server from the
    // environment we were given (the same, outside tests).
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT ?? '443';
    kc.clusters = kc.clusters.map((c) => ({ ...c, server: `https://${net.isIPv6(host) ? `[${host}]` : host}:${port}` }));
    // client-node keeps the namespace file's trailing newline.
    const ctx = kc.getContextObject(kc.getCurrentContext());
    if (ctx?.namespace) kc.contexts = [{ ...ctx, namespace: ctx.namespace.trim() }];
    return { kc, source, problems: [], candidates: [], tokenFiles: new Map() };
  }

  const looked = files.length > 0 ? files.join(', ') : '~/.kube/config';
  throw new KubesocksError(
    'CONFIG',
    `no kubeconfig found (looked at ${looked}, and not running in a cluster): set KUBECONFIG or pass --kubeconfig`,
  );
}

/**
 * kubectl's merge rules (client-go `clientcmd.ClientConfigLoadingRules.Load`):
 * the first file to define a cluster, user or context name wins, and the
 * first non-empty current-context wins. client-node's `mergeConfig` instead
 * throws on duplicate names and lets the *last* file's current-context win.
 */
function mergeConfigs(into: KubeConfig, configs: KubeConfig[]): KubeConfig {
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, Context>();
  let current = '';
  for (const c of configs) {
    for (const x of c.getClusters()) if (!clusters.has(x.name)) clusters.set(x.name, x);
    for (const x of c.getUsers()) if (!users.has(x.name)) users.set(x.name, x);
    for (const x of c.getContexts()) if (!contexts.has(x.name)) contexts.set(x.name, x);
    if (!current && c.getCurrentContext()) current = c.getCurrentContext();
  }
  into.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()].map((u) => withExecInfo(u)),
    contexts: [...contexts.values()],
    currentContext: current,
  });
  return into;
}

/**
 * client-go always gives exec plugins `KUBERNETES_EXEC_INFO`
 * (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#input-and-output-formats);
 * client-node does not, and some plugins refuse to run without it. Cluster
 * details (`provideClusterInfo`) are added per context in selectContext.
 */
function withExecInfo(user: User, cluster?: Cluster): User {
  const exec = user.exec as
    | { apiVersion?: string; env?: Array<{ name: string; value: string }> | null; provideClusterInfo?: boolean }
    | undefined
    | null;
  if (!exec) return user;
  const env = (exec.env ?? []).filter((e) => e.name !== 'KUBERNETES_EXEC_INFO');
  const spec: Record<string, unknown> = { interactive: false };
  if (exec.provideClusterInfo && cluster) {
    const info: Record<string, unknown> = { server: cluster.server };
    if (cluster.tlsServerName) info['tls-server-name'] = cluster.tlsServerName;
    if (cluster.skipTLSVerify) info['insecure-skip-tls-verify'] = true;
    if (cluster.proxyUrl) info['proxy-url'] = cluster.proxyUrl;
    if (cluster.caData) info['certificate-authority-data'] = cluster.caData;
    else if (cluster.caFile) {
      try {
        info['certificate-authority-data'] = fs.readFileSync(cluster.caFile).toString('base64');
      } catch {
        // The TLS setup reports an unreadable CA file with its own error.
      }
    }
    spec.cluster = info;
  }
  const value = JSON.stringify({
    apiVersion: exec.apiVersion ?? 'client.authentication.k8s.io/v1beta1',
    kind: 'ExecCredential',
    spec,
  });
  return { ...user, exec: { ...exec, env: [...env, { name: 'KUBERNETES_EXEC_INFO', value }] } };
}

function selectContext(kc: KubeConfig, opts: KubeClientOptions, read: Omit<ReadKubeConfig, 'kc'>): LoadedKubeConfig {
  const { source, problems } = read;
  const names = kc.getContexts().map((c) => c.name);
  const available = names.length > 0 ? ` (contexts: ${names.join(', ')})` : ' (it has no contexts)';
  const why = problems.length > 0 ? `; ${problems.join('; ')}` : '';
  const contextName = opts.context ?? kc.getCurrentContext();
  if (!contextName) {
    throw new KubesocksError('CONFIG', `kubeconfig ${source} has no current-context: pass --context${available}`);
  }
  const ctx = kc.getContextObject(contextName);
  if (!ctx) throw new KubesocksError('CONFIG', `context "${contextName}" not found in kubeconfig ${source}${available}${why}`);
  kc.setCurrentContext(contextName);
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new KubesocksError(
      'CONFIG',
      `context "${contextName}" refers to cluster "${ctx.cluster}", which is missing or invalid in kubeconfig ${source}${why}`,
    );
  }
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new KubesocksError('CONFIG', `cluster "${cluster.name}" has an invalid server URL "${cluster.server}"`);
  }
  if (url.protocol !== 'https:') {
    throw new KubesocksError(
      'CONFIG',
      `cluster "${cluster.name}" server ${cluster.server} is not https://; kubesocks talks TLS to the API server`,
    );
  }
  let user: User | null = null;
  if (ctx.user) {
    user = kc.getCurrentUser();
    if (!user) {
      throw new KubesocksError(
        'CONFIG',
        `context "${contextName}" refers to user "${ctx.user}", which is missing or invalid in kubeconfig ${source}${why}`,
      );
    }
    if (user.exec) {
      const withInfo = withExecInfo(user, cluster);
      kc.users = kc.users.map((u) => (u.name === user?.name ? withInfo : u));
      user = withInfo;
    }
  }
  const namespace = opts.namespace || ctx.namespace || 'default';
  const files = [...read.candidates];
  // In-cluster (no kubeconfig file) nothing is watched: client-node re-reads the rotated service account token itself.
  const material = files.length > 0 ? [cluster.caFile, user?.certFile, user?.keyFile, user ? read.tokenFiles.get(user.name) : undefined, authProviderTokenFile(user)] : [];
  for (const file of material) {
    if (file && !files.includes(file)) files.push(file);
  }
  return { kc, contextName, cluster, user, namespace, source, files };
}

/** The token file of client-node's `tokenFile` auth-provider (re-read by it every 60 s), if the user has one. */
function authProviderTokenFile(user: User | null): string | undefined {
  const file = (user?.authProvider?.config as { tokenFile?: unknown } | undefined)?.tokenFile;
  return typeof file === 'string' && file !== '' ? file : undefined;
}

/**
 * The kubeconfig's text, with kubectl's `tokenFile` (client-go's name for a
 * user's token file) also given as `token-file`, the only spelling
 * client-node reads. Relative paths are relative to the kubeconfig's folder.
 * Each user's token file is noted in `tokenFiles` (the first file to define
 * a user wins, as in mergeConfigs): client-node reads it once, at load, and
 * keeps only the token, so a changed file is a changed kubeconfig.
 */
function withTokenFiles(file: string, tokenFiles: Map<string, string>): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new KubesocksError('CONFIG', `cannot read kubeconfig ${file}: ${firstLine(err)}`);
  }
  if (!text.includes('tokenFile') && !text.includes('token-file')) return text;
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch {
    return text; // client-node reports the syntax error in its own words
  }
  const users = (doc as { users?: Array<{ name?: unknown; user?: Record<string, unknown> }> } | null)?.users;
  let changed = false;
  for (const entry of Array.isArray(users) ? users : []) {
    const user = entry?.user;
    if (user && typeof user.tokenFile === 'string' && user['token-file'] === undefined && user.token === undefined) {
      user['token-file'] = path.resolve(path.dirname(file), user.tokenFile);
      changed = true;
    }
    const tokenFile = user?.['token-file'];
    if (typeof entry?.name === 'string' && typeof tokenFile === 'string' && user?.token === undefined && !tokenFiles.has(entry.name)) {
      tokenFiles.set(entry.name, path.resolve(path.dirname(file), tokenFile));
    }
  }
  return changed ? yaml.dump(doc) : text;
}

/** Several contexts of one kubeconfig (KubeClient.loadMany). */
export interface KubeContextsOptions extends Omit<KubeClientOptions, 'context'> {
  /** Contexts to serve, the first being the default. Default: the current-context. */
  contexts?: readonly string[];
  /** Serve every context of the kubeconfig (those in `contexts` first). */
  allContexts?: boolean;
}

/** One context of loadKubeContexts: its configuration, or why it cannot be used. */
export type LoadedContextConfig =
  | { name: string; loaded: LoadedKubeConfig; error: null; reload: () => Promise<LoadedKubeConfig> }
  | { name: string; loaded: null; error: KubesocksError; reload: null };

/**
 * Reads the kubeconfig once and selects several contexts, each on a
 * KubeConfig of its own (selectContext sets the current context and
 * rewrites users). Nothing contacts an API server or runs an exec plugin.
 * Contexts named explicitly must be usable (else CONFIG, as for
 * loadKubeConfig); the others of `allContexts` come back with their error.
 * Order: the named ones, else the current-context, first; then the
 * kubeconfig's order.
 */
export async function loadKubeContexts(
  opts: KubeContextsOptions,
  where: LoadEnvironment = {},
): Promise<{ source: string; contexts: LoadedContextConfig[] }> {
  const read = await readKubeConfig(opts, where);
  const all = read.kc.getContexts().map((c) => c.name);
  const named = [...new Set(opts.contexts ?? [])];
  const first = named[0] ?? read.kc.getCurrentContext();
  if (!first && !opts.allContexts) {
    // selectContext words the "no current-context" message.
    selectContext(read.kc, { ...opts, context: undefined }, read);
  }
  const order = opts.allContexts ? [...new Set([...(first ? [first] : []), ...named, ...all])] : named.length > 0 ? named : [first];
  const explicit = new Set(opts.allContexts ? named : order);
  const contexts: LoadedContextConfig[] = [];
  for (const name of order) {
    const one = { ...opts, context: name };
    try {
      const loaded = selectContext(cloneKubeConfig(read.kc), one, read);
      contexts.push({ name, loaded, error: null, reload: () => loadKubeConfig(one, where) });
    } catch (error) {
      if (explicit.has(name) || !(error instanceof KubesocksError)) throw error;
      contexts.push({ name, loaded: null, error, reload: null });
    }
  }
  return { source: read.source, contexts };
}

function cloneKubeConfig(kc: KubeConfig): KubeConfig {
  const Ctor = kc.constructor as new () => KubeConfig;
  const copy = new Ctor();
  copy.loadFromOptions({ clusters: kc.getClusters(), users: kc.getUsers(), contexts: kc.getContexts(), currentContext: kc.getCurrentContext() });
  return copy;
}

/** What a re-read of the kubeconfig (kubeconfig-reload.ts) found for each context served. */
export interface RereadContexts {
  /** Files read. */
  source: string;
  /** The kubeconfig files looked at, existing or not. */
  files: string[];
  /** Each context asked for: its configuration, or why it cannot be used now. */
  contexts: Map<string, LoadedKubeConfig | KubesocksError>;
}

/**
 * Reads the kubeconfig files again and selects each of `names`. Rejects with
 * CONFIG when the files cannot be read at all (missing, not YAML); a context
 * that is gone or broken comes back as its error. Never falls back to the
 * in-cluster account: a kubeconfig being replaced is briefly missing.
 */
export async function rereadContexts(opts: KubeClientOptions, where: LoadEnvironment, names: readonly string[]): Promise<RereadContexts> {
  const read = await readKubeConfig(opts, where, { inCluster: false });
  const contexts = new Map<string, LoadedKubeConfig | KubesocksError>();
  for (const name of names) {
    try {
      contexts.set(name, selectContext(cloneKubeConfig(read.kc), { ...opts, context: name }, read));
    } catch (error) {
      contexts.set(name, error instanceof KubesocksError ? error : new KubesocksError('CONFIG', `context "${name}": ${firstLine(error)}`));
    }
  }
  return { source: read.source, files: read.candidates, contexts };
}
