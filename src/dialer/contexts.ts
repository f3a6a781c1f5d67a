/**
 * The contexts a dialer serves, each with its alias and its own bundle of
 * client, resolver and tunnel pool. A bundle is built on the first name that
 * needs it, so serving thirty contexts costs nothing until one is used: no
 * API request, no exec plugin, no watch.
 */
import { KubesocksError } from '../errors.js';
import type { Reconfiguration } from '../kube/api.js';
import type { KubeClient } from '../kube/client.js';
import { Resolver } from '../resolve/resolver.js';
import type { Observer } from '../observe/observer.js';
import { TunnelPool, type PoolStats, type TunnelPoolOptions } from '../tunnel/pool.js';
import { assignAliases, type AliasOverride } from './aliases.js';
import { routeByAlias, type RoutedName } from './context-routing.js';
import { DialerView } from './view.js';

/** What one context needs to reach its cluster. */
export interface ContextBundle {
  client: KubeClient;
  resolver: Resolver;
  pool: TunnelPool;
}

export interface BundleOptions {
  clusterDomain: string;
  /** Records what each context does; a started context also shows as a cluster on the status page. */
  observer?: Observer | undefined;
  maxNamespaces?: number | undefined;
  pool?: TunnelPoolOptions | undefined;
}

/** A served context as the start-up lines and the status page describe it. */
export interface ContextInfo {
  alias: string;
  /** The kubeconfig context name. */
  context: string;
  /** The API server URL ('' when the context is unusable). */
  cluster: string;
  namespace: string;
  isDefault: boolean;
  /** Whether its client, resolver and pool exist yet (a name in it was used). */
  started: boolean;
  /** Why the context cannot be used (a kubeconfig problem), if so. */
  problem: string | null;
  /** Its tunnel pool's counters, once started. */
  pool: PoolStats | null;
}

export class ClusterContext {
  readonly alias: string;
  readonly isDefault: boolean;
  readonly #client: KubeClient | null;
  readonly #problem: KubesocksError | null;
  readonly #contextName: string;
  readonly #options: BundleOptions;
  #bundle: ContextBundle | undefined;
  #stopView: (() => void) | undefined;
  readonly #stopFollowing: (() => void) | undefined;
  #closed = false;

  constructor(alias: string, contextName: string, client: KubeClient | null, problem: KubesocksError | null, isDefault: boolean, options: BundleOptions) {
    this.alias = alias;
    this.#contextName = contextName;
    this.#client = client;
    this.#problem = problem;
    this.isDefault = isDefault;
    this.#options = options;
    this.#stopFollowing = client?.onReconfigured(() => this.#reconfigured());
  }

  /**
   * The kubeconfig gave the context another server, CA or credentials (the
   * client already uses them; its watches relist by themselves): no new
   * socket rides on a connection made with the old ones. Their sockets
   * finish; each connection closes after its last.
   */
  #reconfigured(): void {
    this.#bundle?.pool.retire(new KubesocksError('CLOSED', 'connection retired: the kubeconfig changed'));
  }

  /** From parts built elsewhere (a dialer made of one client, resolver and pool). */
  static of(alias: string, bundle: ContextBundle, options: BundleOptions): ClusterContext {
    const context = new ClusterContext(alias, bundle.client.contextName, bundle.client, null, true, options);
    context.#started(bundle);
    return context;
  }

  get contextName(): string {
    return this.#contextName;
  }

  /** Calls `listener` when the kubeconfig gave this context another configuration; returns the function that stops that. */
  onReconfigured(listener: (change: Reconfiguration) => void): () => void {
    return this.#client?.onReconfigured(listener) ?? (() => {});
  }

  /** The client, resolver and pool, built on first use. Throws the context's kubeconfig problem, if any. */
  bundle(): ContextBundle {
    if (this.#bundle) return this.#bundle;
    if (this.#closed) throw new KubesocksError('CLOSED', 'the dialer is closed');
    if (!this.#client) throw this.#problem ?? new KubesocksError('CONFIG', `context "${this.#contextName}" cannot be used`);
    const client = this.#client;
    const { observer } = this.#options;
    const context = client.contextName;
    const resolver = new Resolver(client, {
      clusterDomain: this.#options.clusterDomain,
      namespace: client.namespace,
      ...(this.#options.maxNamespaces !== undefined ? { maxNamespaces: this.#options.maxNamespaces } : {}),
      observer,
      context,
    });
    const pool = new TunnelPool(client, { ...this.#options.pool, ...(observer ? { observer } : {}), context });
    return this.#started({ client, resolver, pool });
  }

  #started(bundle: ContextBundle): ContextBundle {
    this.#bundle = bundle;
    const { observer } = this.#options;
    // Only a started context is probed for the status page: a lazy one stays untouched.
    if (observer) this.#stopView = observer.addCluster(new DialerView({ ...bundle, observer }));
    return bundle;
  }

  /** The bundle if it exists, without building it. */
  peek(): ContextBundle | undefined {
    return this.#bundle;
  }

  info(): ContextInfo {
    return {
      alias: this.alias,
      context: this.#contextName,
      cluster: this.#client?.clusterServer ?? '',
      namespace: this.#client?.namespace ?? '',
      isDefault: this.isDefault,
      started: this.#bundle !== undefined,
      problem: this.#problem?.message ?? null,
      pool: this.#bundle?.pool.stats() ?? null,
    };
  }

  close(): void {
    this.#closed = true;
    this.#stopFollowing?.();
    this.#stopView?.();
    const bundle = this.#bundle;
    if (!bundle) {
      this.#client?.close();
      return;
    }
    bundle.pool.close();
    bundle.resolver.close();
    bundle.client.close();
  }
}

/** Where a target goes: the context, and the host name to resolve there. */
export interface ContextRoute {
  context: ClusterContext;
  host: string;
  /** Whether the name ended in the context's alias (then the alias is put back on outside hosts). */
  byAlias: boolean;
}

export class ContextSet {
  readonly #byAlias: Map<string, ClusterContext>;
  readonly #byName: Map<string, ClusterContext>;
  readonly #aliases: ReadonlySet<string>;
  readonly #default: ClusterContext;
  readonly #clusterDomain: string;
  /** Released with the contexts (the kubeconfig watcher). */
  readonly #owned: Array<{ close(): void }> = [];

  constructor(contexts: readonly ClusterContext[], clusterDomain: string) {
    const first = contexts[0];
    if (!first) throw new KubesocksError('CONFIG', 'no context to serve: the kubeconfig has no contexts');
    this.#default = first;
    this.#byAlias = new Map(contexts.map((c) => [c.alias, c]));
    this.#byName = new Map(contexts.map((c) => [c.contextName, c]));
    // A lone context whose name folds to no usable alias has none ('').
    this.#aliases = new Set([...this.#byAlias.keys()].filter((a) => a !== ''));
    this.#clusterDomain = clusterDomain;
  }

  /** Builds the set from loaded kubeconfig contexts (the first is the default), with aliases. */
  static fromLoaded(
    loaded: ReadonlyArray<{ name: string; client: KubeClient | null; error: KubesocksError | null }>,
    overrides: readonly AliasOverride[],
    options: BundleOptions,
  ): ContextSet {
    const aliases = assignAliases(
      loaded.map((c) => c.name),
      overrides,
    );
    const contexts = loaded.map(
      (c, i) => new ClusterContext(aliases.get(c.name) as string, c.name, c.client, c.error, i === 0, options),
    );
    return new ContextSet(contexts, options.clusterDomain);
  }

  /** One context made of parts built elsewhere; its alias is its context name folded. */
  static fromBundle(bundle: ContextBundle, options: BundleOptions): ContextSet {
    const alias = assignAliases([bundle.client.contextName]).get(bundle.client.contextName) ?? '';
    return new ContextSet([ClusterContext.of(alias, bundle, options)], options.clusterDomain);
  }

  get default(): ClusterContext {
    return this.#default;
  }

  get size(): number {
    return this.#byAlias.size;
  }

  all(): ClusterContext[] {
    return [...this.#byAlias.values()];
  }

  aliases(): string[] {
    return [...this.#byAlias.keys()];
  }

  /** A context by alias or by kubeconfig context name (for `connect({ context })` and proxy usernames). */
  find(aliasOrName: string): ClusterContext | undefined {
    if (aliasOrName === '') return undefined;
    return this.#byAlias.get(aliasOrName) ?? this.#byAlias.get(aliasOrName.toLowerCase()) ?? this.#byName.get(aliasOrName);
  }

  /** The context a host name belongs to, given the context selected for the connection. */
  route(host: string, selected: ClusterContext = this.#default): ContextRoute {
    const routed: RoutedName | null = routeByAlias(host, { aliases: this.#aliases, clusterDomain: this.#clusterDomain });
    if (!routed) return { context: selected, host, byAlias: false };
    return { context: this.#byAlias.get(routed.alias) as ClusterContext, host: routed.name, byAlias: true };
  }

  /** Closes `resource` with the contexts. */
  own(resource: { close(): void }): void {
    this.#owned.push(resource);
  }

  close(): void {
    for (const resource of this.#owned.splice(0)) resource.close();
    for (const c of this.#byAlias.values()) c.close();
  }
}
