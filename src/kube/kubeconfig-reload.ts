/**
 * Follows the kubeconfig while kubesocks runs: `aws sso login`, `gcloud`,
 * `kubectl config set-credentials`, `aws eks update-kubeconfig` or an edit
 * writes a new token, CA or server address, and the next connection uses it
 * without a restart.
 *
 * When any file the served contexts depend on changes (kubeconfig-watch.ts:
 * the kubeconfig files, and each context's CA, client certificate, key and
 * token files), the kubeconfig is read again and each served context is
 * selected again — the contexts chosen at start, never the new
 * current-context. A context whose effective configuration differs
 * (effectiveConfig below) has its client reconfigured: requests go to the
 * new server with the new material, the watches relist there, and the
 * tunnel pool retires the connections made before (dialer/contexts.ts).
 * Nothing else changes a running client: a file rewritten with the same
 * content, another context edited, a new current-context.
 *
 * Files that cannot be read (briefly missing while replaced, half-written,
 * not YAML) and contexts that are gone or broken keep their previous
 * configuration, and say so once. Every message is one line without tokens
 * or key material: they name fields and files, never values.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { debuglog } from 'node:util';
import { firstLine, type KubesocksError } from '../errors.js';
import type { KubeClient } from './client.js';
import { rereadContexts, type KubeClientOptions, type LoadedKubeConfig, type LoadEnvironment, type RereadContexts } from './kubeconfig.js';
import { FileWatcher } from './kubeconfig-watch.js';

const debug = debuglog('kubesocks:kube');

/** What a re-read of the kubeconfig did, with the one line to show for it. */
export type KubeconfigEvent =
  /** The context's client now uses the new configuration. `changed` names the fields, e.g. `server`, `token`. */
  | { kind: 'changed'; context: string; server: string; changed: string[]; files: string[]; message: string }
  /** The files could not be read or parsed: every context keeps its configuration. */
  | { kind: 'unreadable'; files: string[]; message: string }
  /** The context is gone from the files or cannot be used as written now: it keeps its configuration. */
  | { kind: 'context-unusable'; context: string; files: string[]; message: string };

export interface KubeconfigReloaderOptions {
  /** Told about every change and every problem (the CLI prints `message`). Default: debug log only. */
  onEvent?: (event: KubeconfigEvent) => void;
  /** Quiet time after the last file event before reading (ms). Default 200. */
  debounceMs?: number;
}

/** One served context: its client and the effective configuration it was built with. */
interface Followed {
  client: KubeClient;
  config: EffectiveConfig;
  /** The files its configuration depends on, as last read (a new CA path with the same content is no change, but is watched). */
  files: string[];
  /** The last problem told for it, so a burst of events says it once. */
  told: string | undefined;
}

export class KubeconfigReloader {
  readonly #opts: KubeClientOptions;
  readonly #where: LoadEnvironment;
  readonly #onEvent: (event: KubeconfigEvent) => void;
  readonly #followed: Followed[];
  readonly #watcher: FileWatcher;
  #toldUnreadable: string | undefined;
  /** A re-read running now, and whether files changed again meanwhile. */
  #reading: Promise<void> | undefined;
  #again: Set<string> | undefined;
  #closed = false;

  /**
   * Starts watching the files of `clients` (one per served context, all
   * loaded with `opts`, whose `context` is ignored: each client keeps its
   * own). In-cluster clients have no files and are not followed.
   */
  constructor(opts: KubeClientOptions, where: LoadEnvironment, clients: readonly KubeClient[], options: KubeconfigReloaderOptions = {}) {
    this.#opts = opts;
    this.#where = where;
    this.#onEvent = options.onEvent ?? ((event) => debug('%s', event.message));
    this.#followed = clients.filter((c) => c.configuration.files.length > 0).map((client) => ({ client, config: effectiveConfig(client.configuration), files: client.configuration.files, told: undefined }));
    this.#watcher = new FileWatcher(this.#files(), (files) => this.#changed(files), options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {});
  }

  /** The files watched now. */
  get files(): readonly string[] {
    return this.#watcher.files;
  }

  /**
   * Reads the kubeconfig now, as a file change would (also what the watcher
   * calls). Resolves when the clients that changed are reconfigured.
   */
  reload(files: readonly string[] = []): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#reading) {
      // Whatever changed during a read is read again after it.
      this.#again ??= new Set();
      for (const f of files) this.#again.add(f);
      return this.#reading;
    }
    this.#reading = this.#reread([...files])
      // Nothing of a re-read may end the process (an event listener that throws included).
      .catch((error: unknown) => debug('kubeconfig re-read failed: %s', firstLine(error)))
      .finally(() => {
        this.#reading = undefined;
        const again = this.#again;
        this.#again = undefined;
        if (again) void this.reload([...again]);
      });
    return this.#reading;
  }

  /** Stops watching. Clients keep the configuration they have. */
  close(): void {
    this.#closed = true;
    this.#watcher.close();
  }

  #changed(files: string[]): void {
    debug('kubeconfig files changed: %s', files.join(', '));
    void this.reload(files);
  }

  async #reread(changedFiles: string[]): Promise<void> {
    const names = this.#followed.map((f) => f.client.contextName);
    if (names.length === 0) return;
    const where = changedFiles.length > 0 ? changedFiles.join(', ') : this.#watcher.files.join(', ');
    let reread: RereadContexts;
    try {
      reread = await rereadContexts(this.#opts, this.#where, names);
    } catch (error) {
      if (this.#closed) return;
      // "cannot read kubeconfig FILE: why" names the file at fault, which may not be the one that changed.
      const line = firstLine(error);
      const named = /^cannot read kubeconfig (\S+): (.*)$/.exec(line);
      const message = `kubeconfig ${named?.[1] ?? where} cannot be read now (${named?.[2] ?? line}); the previous configuration stays in use`;
      if (message !== this.#toldUnreadable) {
        this.#toldUnreadable = message;
        this.#tell({ kind: 'unreadable', files: changedFiles, message });
      }
      return;
    }
    if (this.#closed) return;
    this.#toldUnreadable = undefined;
    const read = reread.source.split(path.delimiter).map((f) => path.resolve(f));
    const others = changedFiles.filter((f) => !read.includes(f));
    const from = `re-read from ${read.join(', ')}${others.length > 0 ? ` after a change to ${others.join(', ')}` : ''}`;
    for (const followed of this.#followed) {
      const result = reread.contexts.get(followed.client.contextName);
      if (result === undefined) continue;
      if (!isLoaded(result)) {
        const message = `kubeconfig ${where}: context "${followed.client.contextName}" cannot be used as written now (${result.message}); it keeps its previous configuration (server ${followed.client.clusterServer})`;
        if (message !== followed.told) {
          followed.told = message;
          this.#tell({ kind: 'context-unusable', context: followed.client.contextName, files: changedFiles, message });
        }
        continue;
      }
      followed.told = undefined;
      followed.files = result.files;
      const config = effectiveConfig(result);
      const changed = differences(followed.config, config);
      if (changed.length === 0) continue;
      followed.config = config;
      followed.client.reconfigure(result, { sameCluster: !changed.some((field) => CLUSTER_FIELDS.has(field)) });
      const server = result.cluster.server;
      const message = `kubeconfig changed: context ${followed.client.contextName} now uses server ${server} (${from}; changed: ${changed.join(', ')})`;
      this.#tell({ kind: 'changed', context: followed.client.contextName, server, changed, files: changedFiles, message });
    }
    // A re-read context may name other CA or token files.
    this.#watcher.watch(this.#files());
  }

  #tell(event: KubeconfigEvent): void {
    try {
      this.#onEvent(event);
    } catch (error) {
      debug('onKubeconfigEvent threw: %s', firstLine(error));
    }
  }

  #files(): string[] {
    return [...new Set(this.#followed.flatMap((f) => f.files))];
  }
}

/** Fields after whose change the context may be another cluster (see Reconfiguration). */
const CLUSTER_FIELDS: ReadonlySet<string> = new Set(['server', 'certificate-authority', 'tls-server-name', 'proxy-url']);

function isLoaded(result: LoadedKubeConfig | KubesocksError): result is LoadedKubeConfig {
  return 'kc' in result;
}

/**
 * What a context's connections depend on, field by field, each as a digest:
 * compared, never shown (tokens and keys stay out of memory copies and logs).
 * Files named in the kubeconfig count by their content, so a CA, key or
 * token file rewritten in place is a change.
 */
export type EffectiveConfig = Readonly<Record<string, string>>;

export function effectiveConfig(loaded: LoadedKubeConfig): EffectiveConfig {
  const { cluster, user } = loaded;
  const authProvider = user?.authProvider as { name?: string; config?: Record<string, unknown> } | undefined;
  const providerTokenFile = authProvider?.config?.tokenFile;
  return {
    server: digest(cluster.server),
    'certificate-authority': digest(cluster.caData ?? fileContent(cluster.caFile)),
    'tls-server-name': digest(cluster.tlsServerName),
    'insecure-skip-tls-verify': digest(cluster.skipTLSVerify ? 'true' : ''),
    'proxy-url': digest(cluster.proxyUrl),
    'client-certificate': digest(user?.certData ?? fileContent(user?.certFile)),
    'client-key': digest(user?.keyData ?? fileContent(user?.keyFile)),
    // client-node reads a token-file when the kubeconfig is loaded: `token` holds its content.
    token: digest(user?.token),
    'username/password': digest(user?.username === undefined && user?.password === undefined ? undefined : `${user?.username ?? ''}\0${user?.password ?? ''}`),
    exec: digest(user?.exec ? JSON.stringify(withoutExecInfo(user.exec)) : undefined),
    'auth-provider': digest(authProvider ? JSON.stringify(authProvider) + (typeof providerTokenFile === 'string' ? fileContent(providerTokenFile) : '') : undefined),
    impersonation: digest(user?.impersonateUser),
  };
}

/** The names of the fields that differ. */
export function differences(before: EffectiveConfig, after: EffectiveConfig): string[] {
  return Object.keys(after).filter((field) => before[field] !== after[field]);
}

/**
 * The exec spec as written: KUBERNETES_EXEC_INFO is derived (kubeconfig.ts
 * adds it, with the server and CA when provideClusterInfo), and counts under
 * those fields.
 */
function withoutExecInfo(exec: unknown): unknown {
  const spec = exec as { env?: Array<{ name: string }> | null };
  return { ...spec, env: (spec.env ?? []).filter((e) => e.name !== 'KUBERNETES_EXEC_INFO') };
}

function digest(value: string | undefined): string {
  return value === undefined || value === '' ? '' : createHash('sha256').update(value).digest('base64');
}

/** A file's content for comparison; a file that cannot be read compares as its path and error (the TLS setup reports it). */
function fileContent(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return fs.readFileSync(path.resolve(file), 'latin1');
  } catch (error) {
    return `unreadable ${file}: ${(error as NodeJS.ErrnoException).code ?? ''}`;
  }
}
