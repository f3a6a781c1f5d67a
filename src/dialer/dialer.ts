/**
 * The dialer: a cluster name (or pod) in, a connected Duplex out. It picks
 * the context a name belongs to (context-routing.ts), then composes that
 * context's kubeconfig client, resolver (names → ready pods) and tunnel pool
 * (pods → SPDY connections), and decides what a failure means: try the next
 * ready pod, or tell the caller.
 */
import * as http from 'node:http';
import { debuglog } from 'node:util';
import { LRUCache } from 'lru-cache';
import { untilAborted } from '../net/abort.js';
import { formatHostPort } from '../net/address.js';
import { KubesocksError, asKubesocksError, type ErrorCode } from '../errors.js';
import { KubeClient } from '../kube/client.js';
import type { KubeClientOptions } from '../kube/kubeconfig.js';
import { KubeconfigReloader, type KubeconfigEvent } from '../kube/kubeconfig-reload.js';
import type { Connector, ContextReadiness } from '../net/connector.js';
import { Observer } from '../observe/observer.js';
import { WorkloadPods, type PodPorts, type ServicePort, type WorkloadKind } from '../resolve/workloads.js';
import type { Endpoint } from '../resolve/resolver.js';
import type { PoolStats, TunnelPoolOptions } from '../tunnel/pool.js';
import { parseAliasOverride, type AliasOverride } from './aliases.js';
import { ContextSet, type ClusterContext, type ContextBundle, type ContextInfo } from './contexts.js';
import type { TransportChoice } from '../tunnel/transport.js';
import { dialDirect } from './direct.js';
import { KubeSocket, type Attempt, type AttemptOpener } from './kube-socket.js';
import { parseTarget, type DialTarget, type ParsedTarget } from './dial-target.js';
import { nonNegativeInteger, oneOf, optionalString, positiveInteger } from '../net/options.js';
import { CONNECT_TIMEOUT_MS } from '../net/timeouts.js';
export type { PodPorts, ServicePort, WorkloadKind } from '../resolve/workloads.js';

const debug = debuglog('kubesocks:dialer');

/** A context to serve, by kubeconfig context name, optionally with the alias its names end in. */
export type ContextChoice = string | { context: string; alias?: string };

export interface DialerOptions extends KubeClientOptions {
  /**
   * Several contexts to serve side by side; the first is the default (it
   * keeps every short name form). Each is also reached by names ending in its
   * alias: `web.demo.ALIAS`. Takes the place of `context`.
   */
  contexts?: readonly ContextChoice[];
  /** Serve every context of the kubeconfig (those in `contexts` first). */
  allContexts?: boolean;
  /** Aliases as `--alias` takes them: `NAME=CONTEXT`. */
  aliases?: readonly string[];
  /** The cluster's DNS domain. Default `cluster.local`. */
  clusterDomain?: string;
  /** Hosts outside the cluster: dial them directly (`allow`, default) or refuse (`deny`). */
  direct?: 'allow' | 'deny';
  /** Deadline for one connect: resolving, upgrading and the pod accepting (ms). Default 30 s. */
  connectTimeoutMs?: number;
  /** How many other pods a socket may fail over to. Default 2. */
  maxFailovers?: number;
  /** Tunnel pool tuning. */
  pool?: TunnelPoolOptions;
  /** Bound on namespaces watched at once. Default 64. */
  maxNamespaces?: number;
  /**
   * Where connections, failures, upgrades and relists are recorded; the
   * proxy's status page and /metrics read it (`dialer.observer`). Default: a new one.
   */
  observer?: Observer;
  /** How port-forward connections are carried: `auto` (default: WebSocket first, SPDY fallback), `spdy` or `websocket`. */
  transport?: TransportChoice;
  /**
   * Follow the kubeconfig files while running (createDialer only): when a
   * served context's server, CA, client certificate or key, token, exec or
   * auth-provider, proxy-url, tls-server-name or insecure flag changes on
   * disk, new connections use it without a restart; pooled connections made
   * before take no new sockets. The contexts served stay those chosen at
   * start. Files are watched with `fs.watch` (nothing keeps the process
   * alive); close() stops it. Default true.
   */
  watchKubeconfig?: boolean;
  /** Told what each re-read of the kubeconfig did (a change, or why the old configuration stays), as one line in `message`. Default: the `kubesocks:kube` debug log. */
  onKubeconfigEvent?: (event: KubeconfigEvent) => void;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /**
   * The context names without an alias belong to (alias or context name),
   * instead of the default: what a proxy username selects.
   */
  context?: string;
  /**
   * Resolve only once the pod side accepted, even for a pod port that
   * accepted lately (which otherwise goes at once and relies on failover).
   * For callers that try other pods themselves, such as `kubesocks forward`
   * over a workload's pods: a pod deleted moments ago then fails the
   * connect, not the connected socket.
   */
  confirm?: boolean;
}

/** Failures at connect time after which another pod is worth a try. */
const TRY_NEXT_POD: ReadonlySet<ErrorCode> = new Set([
  'POD_REFUSED',
  'POD_GONE',
  'POD_NOT_RUNNING',
  'TIMEOUT',
  'CONNECTION_LOST',
  'STREAM_RESET',
  'PORTFORWARD_FAILED',
]);

const endpointKey = (ep: Endpoint): string => `${ep.namespace}/${ep.pod}:${ep.port}`;

/** The kubeconfig context a dialer uses, for what the CLI prints. */
export interface DialerContext {
  name: string;
  /** The API server URL as written in the kubeconfig. */
  clusterServer: string;
  /** Namespace for short names. */
  namespace: string;
}

/** What `kubesocks forward` forwards to: a pod by name, or the pods of a workload. */
export interface PodsOf {
  namespace: string;
  kind: 'pod' | WorkloadKind;
  name: string;
}

/** How long the API server gets to answer a readiness check. */
const READINESS_PROBE_MS = 3000;

/** A target with the context it goes to. */
interface Routed {
  parsed: ParsedTarget;
  context: ClusterContext;
  bundle: ContextBundle;
  /** The host name to resolve in that context (host targets). */
  host: string;
  /** The name ended in the context's alias: an outside reading is the whole original name. */
  byAlias: boolean;
}

export class Dialer {
  /** Workload and service lookups for `kubesocks forward`, in the default context (built on first use). */
  #workloads: WorkloadPods | undefined;
  readonly clusterDomain: string;
  /** What this dialer (and a proxy in front of it) does, for the status page and /metrics. */
  readonly observer: Observer;
  readonly #contexts: ContextSet;
  readonly #direct: 'allow' | 'deny';
  readonly #connectTimeoutMs: number;
  readonly #maxFailovers: number;
  /** Pod ports that accepted a connection lately: new sockets to them skip the wait for confirmation. */
  readonly #accepting = new LRUCache<string, true>({ max: 10_000, ttl: 5 * 60_000 });

  /** Serves `contexts` (see createDialer), or one context made of a client, resolver and pool. */
  constructor(contexts: ContextSet | ContextBundle, options: DialerOptions = {}) {
    validateDialerOptions(options);
    this.clusterDomain = options.clusterDomain ?? 'cluster.local';
    this.#direct = oneOf('direct', options.direct, DIRECT_CHOICES, 'allow');
    this.#connectTimeoutMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs, CONNECT_TIMEOUT_MS);
    this.#maxFailovers = nonNegativeInteger('maxFailovers', options.maxFailovers, 2);
    this.observer = options.observer ?? new Observer();
    this.#contexts =
      contexts instanceof ContextSet
        ? contexts
        : ContextSet.fromBundle(contexts, { clusterDomain: this.clusterDomain, maxNamespaces: options.maxNamespaces, pool: options.pool, observer: this.observer });
    for (const context of this.#contexts.all()) {
      // Pod ports that accepted in the old cluster say nothing about the new one.
      const stop = context.onReconfigured((change) => {
        if (change.sameCluster) return;
        const prefix = `${context.alias}/`;
        for (const key of [...this.#accepting.keys()]) if (key.startsWith(prefix)) this.#accepting.delete(key);
      });
      this.#contexts.own({ close: stop });
    }
  }

  /** The served contexts, default first: alias, context, cluster, namespace, whether used yet. */
  contexts(): ContextInfo[] {
    return this.#contexts.all().map((c) => c.info());
  }

  /** Connects to a target; resolves once the pod side accepted. */
  connect(target: DialTarget, options: ConnectOptions = {}): Promise<KubeSocket> {
    const socket = this.socket(target, options);
    // A failure before 'connect' is delivered by the rejection instead.
    const untilConnected = (): void => {};
    socket.on('error', untilConnected);
    return socket.ready().finally(() => socket.off('error', untilConnected));
  }

  /**
   * A socket that is already connecting, returned at once (for APIs that
   * want a socket synchronously: http.Agent, node-postgres' `stream`).
   * Writes are held until it is connected; failure surfaces as 'error'.
   */
  socket(target: DialTarget, options: ConnectOptions = {}): KubeSocket {
    let routed: Routed;
    try {
      routed = this.#route(parseTarget(target), options.context);
    } catch (error) {
      return new KubeSocket(() => Promise.reject(error));
    }
    return new KubeSocket(this.#opener(routed, options.signal, options.confirm ?? false), { maxFailovers: this.#maxFailovers, onFailover: () => this.observer.failover() });
  }

  /** An http.Agent whose connections go through the dialer: `http.get('http://web.demo/', { agent })`. */
  agent(options: http.AgentOptions = {}): http.Agent {
    const dialer = this;
    class KubesocksAgent extends http.Agent {
      override createConnection(connectOptions: { host?: string | null; port?: number | null }): KubeSocket {
        return dialer.socket({ host: connectOptions.host ?? 'localhost', port: connectOptions.port ?? 80 });
      }
    }
    return new KubesocksAgent({ keepAlive: true, ...options });
  }

  /** The proxy front's view of the dialer. */
  connector(): Connector {
    return {
      connect: async (target, signal) => {
        const context = target.selector === undefined ? undefined : this.#selected(target.selector);
        const socket = await this.connect({ host: target.host, port: target.port }, { signal, ...(context ? { context } : {}) });
        const ep = socket.endpoint;
        return { stream: socket, via: socket.via, pod: ep && { context: socket.context ?? '', namespace: ep.namespace, pod: ep.pod } };
      },
      // At once from what is known, never waiting on the API server (the lists refresh in the background).
      pacInfo: async () => ({
        clusterDomain: this.clusterDomain,
        ...(await this.#contexts.default.bundle().resolver.pacNames()),
        aliases: this.#contexts.aliases().filter((a) => a !== ''),
      }),
      readiness: () => this.readiness(),
    };
  }

  /** The default context. */
  context(): DialerContext {
    const { client } = this.#contexts.default.bundle();
    return { name: client.contextName, clusterServer: client.clusterServer, namespace: client.namespace };
  }

  /**
   * The pods a forward target stands for right now: a pod by name if it is
   * running; a workload's running, ready, not terminating pods.
   */
  podsOf(target: PodsOf, signal?: AbortSignal): Promise<PodPorts[]> {
    if (target.kind === 'pod') return this.#workloadPods().runningPod(target.namespace, target.name, signal);
    return this.#workloadPods().readyPods(target.namespace, target.kind, target.name, signal);
  }

  /** A service's ports; rejects NOT_FOUND when there is no such service. */
  servicePorts(namespace: string, service: string, signal?: AbortSignal): Promise<ServicePort[]> {
    return this.#workloadPods().servicePorts(namespace, service, signal);
  }

  /** The ready pods behind a service's selector (for turning a named targetPort into a number). */
  servicePods(namespace: string, service: string, signal?: AbortSignal): Promise<PodPorts[]> {
    return this.#workloadPods().servicePods(namespace, service, signal);
  }

  /** Whether a namespace exists; undefined when the credentials may not tell. */
  namespaceExists(namespace: string, signal?: AbortSignal): Promise<boolean | undefined> {
    return this.#workloadPods().namespaceExists(namespace, signal);
  }

  /**
   * Asks the API server once (bounded by READINESS_PROBE_MS): does it
   * answer, and does it accept the credentials? A 403 still means they were
   * accepted (authenticated, just not allowed that path). For `serve`'s start
   * line and /readyz.
   */
  checkApiServer(): Promise<ContextReadiness> {
    return checkContext(this.#contexts.default.bundle().client);
  }

  /**
   * One readiness line per context: the default's always asked, the others'
   * once they were used (a context no name has used yet is not contacted
   * for it either: asking would run its exec plugin).
   */
  readiness(): Promise<ContextReadiness[]> {
    return Promise.all(
      this.#contexts.all().map((c) => {
        const bundle = c.isDefault ? c.bundle() : c.peek();
        if (bundle) return checkContext(bundle.client);
        const problem = c.info().problem;
        return Promise.resolve({ context: c.contextName, ready: problem === null, reason: problem ?? 'not used yet (not contacted)' });
      }),
    );
  }
  #workloadPods(): WorkloadPods {
    this.#workloads ??= new WorkloadPods(this.#contexts.default.bundle().client);
    return this.#workloads;
  }

  /** Pool counters summed over the contexts in use. */
  stats(): PoolStats {
    const sum: PoolStats = { connections: 0, pairs: 0, upgrades: 0, stalled: 0, transports: { spdy: 0, websocket: 0 } };
    for (const c of this.#contexts.all()) {
      const s = c.peek()?.pool.stats();
      if (!s) continue;
      sum.connections += s.connections;
      sum.pairs += s.pairs;
      sum.upgrades += s.upgrades;
      sum.stalled += s.stalled;
      for (const [transport, n] of Object.entries(s.transports) as Array<[keyof PoolStats['transports'], number]>) sum.transports[transport] += n;
    }
    return sum;
  }

  async close(): Promise<void> {
    this.#contexts.close();
  }

  /** The context a proxy username names; an unknown one is refused rather than served by the default (the wrong cluster). */
  #selected(selector: string): string {
    const context = this.#contexts.find(selector);
    if (context) return context.alias === '' ? context.contextName : context.alias;
    // Quoted with escapes (a username may hold control characters), and at most 80 characters of it.
    const quoted = JSON.stringify(selector);
    const shown = quoted.length > 80 ? `${quoted.slice(0, 78)}…"` : quoted;
    throw new KubesocksError(
      'PROXY_AUTH',
      `proxy username ${shown} is not a context served here (aliases: ${this.#contexts.aliases().join(', ')}); use one of them, or no username for the default context`,
    );
  }

  /** The context and name a parsed target goes to. */
  #route(parsed: ParsedTarget, selectedName: string | undefined): Routed {
    const wanted = parsed.context ?? selectedName;
    let selected = this.#contexts.default;
    if (wanted !== undefined) {
      const found = this.#contexts.find(wanted);
      if (!found) {
        throw new KubesocksError('NOT_FOUND', `no context "${wanted}" is served (aliases: ${this.#contexts.aliases().join(', ')})`);
      }
      selected = found;
    }
    const route = parsed.kind === 'host' ? this.#contexts.route(parsed.host, selected) : { context: selected, host: '', byAlias: false };
    let bundle: ContextBundle;
    try {
      bundle = route.context.bundle();
    } catch (error) {
      throw this.#inContext(route.context, asKubesocksError(error, 'CONFIG'));
    }
    return { parsed, context: route.context, bundle, host: route.host, byAlias: route.byAlias };
  }

  /** With several contexts, a failure names its context: one stopped cluster fails only its names, and says so. */
  #inContext(context: ClusterContext, error: KubesocksError): KubesocksError {
    if (this.#contexts.size < 2 || error.message.startsWith(`context ${context.alias}: `)) return error;
    // The resolver's "see kubectl get …" hints must look in the same context.
    const message = error.message.replace(/\bkubectl (get|describe) /g, `kubectl --context ${context.contextName} $1 `);
    return new KubesocksError(error.code, `context ${context.alias}: ${message}`, { cause: error });
  }

  #opener(routed: Routed, callerSignal: AbortSignal | undefined, confirm: boolean): AttemptOpener {
    const { parsed, context } = routed;
    const tried = new Set<string>();
    let lastError: KubesocksError | undefined;
    return async (previous) => {
      // One controller and one timer, both gone when the attempt settles
      // (AbortSignal.timeout's timer would outlive every connect by the
      // whole timeout, thousands of them under load).
      const attempt = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attempt.abort(new KubesocksError('TIMEOUT', `connecting to ${describe(parsed)} took longer than ${this.#connectTimeoutMs / 1000} s`));
      }, this.#connectTimeoutMs);
      const onCallerAbort = (): void => attempt.abort(callerSignal?.reason);
      if (callerSignal?.aborted) onCallerAbort();
      else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
      const signal = attempt.signal;
      try {
        if (previous?.attempt.endpoint) this.#noteFailure(routed.bundle, previous.attempt.endpoint, previous.error);
        for (;;) {
          const choice = await this.#choose(routed, tried, signal);
          if (choice.kind === 'direct') return choice.attempt;
          const ep = choice.endpoint;
          tried.add(endpointKey(ep));
          try {
            return await this.#openPair(routed, ep, previous !== undefined && !confirm, signal, confirm);
          } catch (error) {
            const failure = this.#explain(routed, asKubesocksError(error));
            if (!TRY_NEXT_POD.has(failure.code) || signal.aborted) throw failure;
            this.#noteFailure(routed.bundle, ep, failure);
            lastError = failure;
            // Another pod is tried: a failover, as much as the KubeSocket's after a late refusal.
            this.observer.failover();
          }
        }
      } catch (error) {
        if (timedOut && !callerSignal?.aborted) {
          throw this.#inContext(
            context,
            new KubesocksError('TIMEOUT', `connecting to ${describe(parsed)} took longer than ${this.#connectTimeoutMs / 1000} s`, { cause: error }),
          );
        }
        // Out of pods to try: the last pod's failure says more than "none left".
        if (lastError && error instanceof KubesocksError && error.code === 'NO_READY_ENDPOINTS' && tried.size > 0) throw this.#inContext(context, lastError);
        throw error instanceof KubesocksError ? this.#inContext(context, error) : error;
      } finally {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onCallerAbort);
      }
    };
  }

  async #choose(
    routed: Routed,
    tried: Set<string>,
    signal: AbortSignal,
  ): Promise<{ kind: 'direct'; attempt: Attempt } | { kind: 'pod'; endpoint: Endpoint }> {
    const { parsed, bundle } = routed;
    if (parsed.kind === 'pod') {
      const endpoint = { namespace: parsed.namespace ?? bundle.client.namespace, pod: parsed.pod, port: parsed.port };
      if (tried.has(endpointKey(endpoint))) throw new KubesocksError('NO_READY_ENDPOINTS', `pod ${endpoint.namespace}/${endpoint.pod} failed`);
      return { kind: 'pod', endpoint };
    }
    let resolution = await bundle.resolver.resolve(routed.host, parsed.port, signal);
    if (resolution.kind === 'external' && routed.byAlias && resolution.host === routed.host) {
      // The name chose this context: while its API server cannot be reached, it fails naming the
      // context instead of going outside (the resolver's offline answer for `x.y`).
      if (bundle.client.health.unreachable) throw bundle.client.health.unreachableError();
      // `x.y.ALIAS` that is no service or pod of that context is the outside host of the whole name.
      resolution = { ...resolution, host: parsed.host };
    }
    if (resolution.kind === 'external') {
      if (this.#direct === 'deny') {
        throw new KubesocksError('DIRECT_DENIED', `${formatHostPort(resolution.host, resolution.port)} is outside the cluster and direct connections are denied (--direct=deny)`);
      }
      const socket = await dialDirect(resolution.host, resolution.port, this.#connectTimeoutMs, signal);
      return { kind: 'direct', attempt: { stream: socket, via: `direct ${formatHostPort(resolution.host, resolution.port)}`, retryable: false } };
    }
    const endpoint = resolution.candidates.find((ep) => !tried.has(endpointKey(ep)));
    if (!endpoint) {
      throw new KubesocksError('NO_READY_ENDPOINTS', `${resolution.description}: every ready pod failed`);
    }
    return { kind: 'pod', endpoint };
  }

  async #openPair(routed: Routed, ep: Endpoint, isFailover: boolean, signal: AbortSignal, confirm = false): Promise<Attempt> {
    const { bundle, context } = routed;
    const via = this.#contexts.size > 1 ? `${endpointKey(ep)}@${context.alias}` : endpointKey(ep);
    // Pod names repeat across clusters: what accepted lately is kept per context.
    const key = `${context.alias}/${endpointKey(ep)}`;
    const pair = await bundle.pool.open(ep.namespace, ep.pod, ep.port, signal);
    // Until the KubeSocket takes the pair over, its failure is read from confirmed().
    pair.on('error', () => {});
    const attempt: Attempt = { stream: pair, via, endpoint: ep, context: bundle.client.contextName, retryable: true, acknowledged: () => pair.acknowledged };
    pair.confirmed().then(
      () => {
        this.#accepting.set(key, true);
        bundle.resolver.report(ep, 'ok');
      },
      () => {},
    );
    // The first socket to a pod port waits to learn whether the pod accepts,
    // so the caller hears the truth (SOCKS reply 05 for a refusal). Later
    // ones go at once; a refusal then is handled by failover and replay.
    if (!confirm && (isFailover || this.#accepting.has(key))) return attempt;
    try {
      await untilAborted(pair.confirmed(), signal, () => asKubesocksError(signal.reason, 'TIMEOUT'));
    } catch (error) {
      pair.destroy();
      throw error;
    }
    return attempt;
  }

  #explain(routed: Routed, error: KubesocksError): KubesocksError {
    const { parsed } = routed;
    // A pod asked for by name that the API server does not know is "not found", not "gone".
    if (parsed.kind === 'pod' && error.code === 'POD_GONE' && /not found/i.test(error.message)) {
      const kubectl = this.#contexts.size > 1 ? `kubectl --context ${routed.context.contextName}` : 'kubectl';
      return new KubesocksError(
        'NOT_FOUND',
        `${error.message}; check the name with ${kubectl} get pods -n ${parsed.namespace ?? routed.bundle.client.namespace}`,
        { cause: error },
      );
    }
    return error;
  }

  #noteFailure(bundle: ContextBundle, ep: Endpoint, error: KubesocksError): void {
    debug('%s failed: %s', endpointKey(ep), error.message);
    this.observer.podFailed({ context: bundle.client.contextName, namespace: ep.namespace, pod: ep.pod }, error);
    for (const c of this.#contexts.all()) if (c.peek() === bundle) this.#accepting.delete(`${c.alias}/${endpointKey(ep)}`);
    if (error.code === 'POD_GONE') {
      bundle.pool.dropPod(ep.namespace, ep.pod, error);
      bundle.resolver.report(ep, 'gone');
    } else if (error.code === 'POD_REFUSED' || error.code === 'POD_NOT_RUNNING') {
      bundle.resolver.report(ep, 'refused');
    } else {
      bundle.resolver.report(ep, 'gone');
    }
  }
}

/** Does the context's API server answer, and accept the credentials? */
async function checkContext(client: KubeClient): Promise<ContextReadiness> {
  const context = client.contextName;
  try {
    await client.getJSON('/api', { timeoutMs: READINESS_PROBE_MS });
    return { context, ready: true, reason: 'ok' };
  } catch (err) {
    const error = asKubesocksError(err);
    if (error.code === 'FORBIDDEN' || error.code === 'NOT_FOUND') return { context, ready: true, reason: 'ok' };
    if (error.code === 'UNAUTHORIZED') return { context, ready: false, reason: error.message };
    const health = client.health;
    return { context, ready: false, reason: health.unreachable ? health.unreachableError().message : error.message };
  }
}

function describe(parsed: ParsedTarget): string {
  return parsed.kind === 'pod' ? `pod ${parsed.namespace ?? ''}/${parsed.pod}:${parsed.port}` : formatHostPort(parsed.host, parsed.port);
}

const DIRECT_CHOICES = ['allow', 'deny'] as const;

/**
 * Throws a TypeError naming the first option that cannot be used (as
 * createProxyServer does): a typo such as `direct: 'maybe'` must not quietly
 * mean the default.
 */
function validateDialerOptions(options: DialerOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError(`Expected the options to be an object, got ${options === null ? 'null' : typeof options}`);
  for (const name of ['kubeconfig', 'context', 'namespace', 'clusterDomain'] as const) optionalString(name, options[name]);
  if (options.watchKubeconfig !== undefined && typeof options.watchKubeconfig !== 'boolean') {
    throw new TypeError(`Expected the \`watchKubeconfig\` option to be a boolean, got ${typeof options.watchKubeconfig}`);
  }
  if (options.onKubeconfigEvent !== undefined && typeof options.onKubeconfigEvent !== 'function') {
    throw new TypeError(`Expected the \`onKubeconfigEvent\` option to be a function, got ${typeof options.onKubeconfigEvent}`);
  }
  oneOf('direct', options.direct, DIRECT_CHOICES, 'allow');
  positiveInteger('connectTimeoutMs', options.connectTimeoutMs, CONNECT_TIMEOUT_MS);
  nonNegativeInteger('maxFailovers', options.maxFailovers, 0);
  positiveInteger('maxNamespaces', options.maxNamespaces, 1);
  const pool = options.pool ?? {};
  if (typeof pool !== 'object' || pool === null) throw new TypeError(`Expected the \`pool\` option to be an object, got ${pool === null ? 'null' : typeof pool}`);
  for (const name of ['maxPairsPerConnection', 'maxConnectionsPerPod', 'idleTimeoutMs', 'surplusIdleTimeoutMs', 'pingTimeoutMs', 'upgradeTimeoutMs'] as const) {
    positiveInteger(`pool.${name}`, pool[name], 1);
  }
  // 0 turns pings off, or the wait for the kubelet's verdict.
  nonNegativeInteger('pool.pingIntervalMs', pool.pingIntervalMs, 0);
  nonNegativeInteger('pool.confirmMs', pool.confirmMs, 0);
}

/**
 * Loads the kubeconfig and builds a dialer for one context (`context`, else
 * the current one) or several (`contexts`, `allContexts`). Contexts are
 * lazy: nothing talks to an API server until a name in that context is used.
 */
export async function createDialer(options: DialerOptions = {}): Promise<Dialer> {
  validateDialerOptions(options);
  const overrides: AliasOverride[] = (options.aliases ?? []).map(parseAliasOverride);
  const names: string[] = [];
  for (const choice of options.contexts ?? (options.context !== undefined ? [options.context] : [])) {
    const name = typeof choice === 'string' ? choice : choice.context;
    names.push(name);
    if (typeof choice !== 'string' && choice.alias !== undefined) overrides.push(parseAliasOverride(`${choice.alias}=${name}`));
  }
  const loadOptions = {
    ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
  };
  const { contexts: loaded } = await KubeClient.loadMany({ ...loadOptions, contexts: names, allContexts: options.allContexts ?? false });
  const clusterDomain = options.clusterDomain ?? 'cluster.local';
  const observer = options.observer ?? new Observer({ transport: options.transport ?? 'auto' });
  const contexts = ContextSet.fromLoaded(loaded, overrides, {
    clusterDomain,
    maxNamespaces: options.maxNamespaces,
    pool: { ...options.pool, ...(options.transport ? { transport: options.transport } : {}) },
    observer,
  });
  if (options.watchKubeconfig ?? true) {
    const clients = loaded.flatMap((c) => (c.client ? [c.client] : []));
    contexts.own(new KubeconfigReloader(loadOptions, {}, clients, options.onKubeconfigEvent ? { onEvent: options.onKubeconfigEvent } : {}));
  }
  return new Dialer(contexts, { ...options, observer });
}
