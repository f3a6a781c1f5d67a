/**
 * The dialer: a cluster name (or pod) in, a connected Duplex out. It composes
 * the kubeconfig client, the resolver (names → ready pods) and the tunnel pool
 * (pods → SPDY connections), and decides what a failure means: try the next
 * ready pod, or tell the caller.
 */
import * as http from 'node:http';
import { debuglog } from 'node:util';
import { LRUCache } from 'lru-cache';
import { untilAborted } from '../net/abort.js';
import { KubesocksError, asKubesocksError, type ErrorCode } from '../errors.js';
import { KubeClient } from '../kube/client.js';
import type { KubeClientOptions } from '../kube/kubeconfig.js';
import type { Connector, ContextReadiness } from '../net/connector.js';
import { Observer } from '../observe/observer.js';
import { WorkloadPods, type PodPorts, type ServicePort, type WorkloadKind } from '../resolve/workloads.js';
import { Resolver, type Endpoint } from '../resolve/resolver.js';
import { TunnelPool, type PoolStats, type TunnelPoolOptions } from '../tunnel/pool.js';
import type { TransportChoice } from '../tunnel/transport.js';
import { dialDirect } from './direct.js';
import { DialerView } from './view.js';
import { KubeSocket, type Attempt, type AttemptOpener } from './kube-socket.js';
import { parseTarget, type DialTarget, type ParsedTarget } from './dial-target.js';
import { nonNegativeInteger, oneOf, optionalString, positiveInteger } from '../net/options.js';
import { CONNECT_TIMEOUT_MS } from '../net/timeouts.js';
export type { PodPorts, ServicePort, WorkloadKind } from '../resolve/workloads.js';

const debug = debuglog('kubesocks:dialer');

export interface DialerOptions extends KubeClientOptions {
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
}

export interface ConnectOptions {
  signal?: AbortSignal;
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

export class Dialer {
  readonly #client: KubeClient;
  readonly #resolver: Resolver;
  readonly #pool: TunnelPool;
  readonly #workloads: WorkloadPods;
  readonly clusterDomain: string;
  /** What this dialer (and a proxy in front of it) does, for the status page and /metrics. */
  readonly observer: Observer;
  readonly #direct: 'allow' | 'deny';
  readonly #connectTimeoutMs: number;
  readonly #maxFailovers: number;
  /** Pod ports that accepted a connection lately: new sockets to them skip the wait for confirmation. */
  readonly #accepting = new LRUCache<string, true>({ max: 10_000, ttl: 5 * 60_000 });
  readonly #stopObserving: () => void;

  constructor(client: KubeClient, resolver: Resolver, pool: TunnelPool, options: DialerOptions = {}) {
    this.#client = client;
    this.#resolver = resolver;
    this.#pool = pool;
    this.#workloads = new WorkloadPods(client);
    validateDialerOptions(options);
    this.clusterDomain = options.clusterDomain ?? 'cluster.local';
    this.#direct = oneOf('direct', options.direct, DIRECT_CHOICES, 'allow');
    this.#connectTimeoutMs = positiveInteger('connectTimeoutMs', options.connectTimeoutMs, CONNECT_TIMEOUT_MS);
    this.#maxFailovers = nonNegativeInteger('maxFailovers', options.maxFailovers, 2);
    this.observer = options.observer ?? new Observer();
    this.#stopObserving = this.observer.addCluster(new DialerView({ client, resolver, pool, observer: this.observer }));
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
    let parsed: ParsedTarget;
    try {
      parsed = parseTarget(target);
    } catch (error) {
      return new KubeSocket(() => Promise.reject(error));
    }
    return new KubeSocket(this.#opener(parsed, options.signal), { maxFailovers: this.#maxFailovers, onFailover: () => this.observer.failover() });
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
        const socket = await this.connect(target, { signal });
        const ep = socket.endpoint;
        return { stream: socket, via: socket.via, pod: ep && { context: this.#client.contextName, namespace: ep.namespace, pod: ep.pod } };
      },
      // At once from what is known, never waiting on the API server (the lists refresh in the background).
      pacInfo: async () => ({ clusterDomain: this.clusterDomain, ...(await this.#resolver.pacNames()) }),
      readiness: async () => [await this.checkApiServer()],
    };
  }

  /** The context in use. */
  context(): DialerContext {
    return { name: this.#client.contextName, clusterServer: this.#client.clusterServer, namespace: this.#client.namespace };
  }

  /**
   * The pods a forward target stands for right now: a pod by name if it is
   * running; a workload's running, ready, not terminating pods.
   */
  podsOf(target: PodsOf, signal?: AbortSignal): Promise<PodPorts[]> {
    if (target.kind === 'pod') return this.#workloads.runningPod(target.namespace, target.name, signal);
    return this.#workloads.readyPods(target.namespace, target.kind, target.name, signal);
  }

  /** A service's ports; rejects NOT_FOUND when there is no such service. */
  servicePorts(namespace: string, service: string, signal?: AbortSignal): Promise<ServicePort[]> {
    return this.#workloads.servicePorts(namespace, service, signal);
  }

  /** The ready pods behind a service's selector (for turning a named targetPort into a number). */
  servicePods(namespace: string, service: string, signal?: AbortSignal): Promise<PodPorts[]> {
    return this.#workloads.servicePods(namespace, service, signal);
  }

  /** Whether a namespace exists; undefined when the credentials may not tell. */
  namespaceExists(namespace: string, signal?: AbortSignal): Promise<boolean | undefined> {
    return this.#workloads.namespaceExists(namespace, signal);
  }

  /**
   * Asks the API server once (bounded by READINESS_PROBE_MS): does it
   * answer, and does it accept the credentials? A 403 still means they were
   * accepted (authenticated, just not allowed that path). For `serve`'s start
   * line and /readyz.
   */
  async checkApiServer(): Promise<ContextReadiness> {
    const context = this.#client.contextName;
    try {
      await this.#client.getJSON('/api', { timeoutMs: READINESS_PROBE_MS });
      return { context, ready: true, reason: 'ok' };
    } catch (err) {
      const error = asKubesocksError(err);
      if (error.code === 'FORBIDDEN' || error.code === 'NOT_FOUND') return { context, ready: true, reason: 'ok' };
      if (error.code === 'UNAUTHORIZED') return { context, ready: false, reason: error.message };
      const health = this.#client.health;
      return { context, ready: false, reason: health.unreachable ? health.unreachableError().message : error.message };
    }
  }

  stats(): PoolStats {
    return this.#pool.stats();
  }

  async close(): Promise<void> {
    this.#stopObserving();
    this.#pool.close();
    this.#resolver.close();
    this.#client.close();
  }

  #opener(parsed: ParsedTarget, callerSignal: AbortSignal | undefined): AttemptOpener {
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
        if (previous?.attempt.endpoint) this.#noteFailure(previous.attempt.endpoint, previous.error);
        for (;;) {
          const choice = await this.#choose(parsed, tried, signal);
          if (choice.kind === 'direct') return choice.attempt;
          const ep = choice.endpoint;
          tried.add(endpointKey(ep));
          try {
            return await this.#openPair(ep, previous !== undefined, signal);
          } catch (error) {
            const failure = this.#explain(parsed, asKubesocksError(error));
            if (!TRY_NEXT_POD.has(failure.code) || signal.aborted) throw failure;
            this.#noteFailure(ep, failure);
            lastError = failure;
            // Another pod is tried: a failover, as much as the KubeSocket's after a late refusal.
            this.observer.failover();
          }
        }
      } catch (error) {
        if (timedOut && !callerSignal?.aborted) {
          throw new KubesocksError('TIMEOUT', `connecting to ${describe(parsed)} took longer than ${this.#connectTimeoutMs / 1000} s`, { cause: error });
        }
        // Out of pods to try: the last pod's failure says more than "none left".
        if (lastError && error instanceof KubesocksError && error.code === 'NO_READY_ENDPOINTS' && tried.size > 0) throw lastError;
        throw error;
      } finally {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onCallerAbort);
      }
    };
  }

  async #choose(
    parsed: ParsedTarget,
    tried: Set<string>,
    signal: AbortSignal,
  ): Promise<{ kind: 'direct'; attempt: Attempt } | { kind: 'pod'; endpoint: Endpoint }> {
    if (parsed.kind === 'pod') {
      const endpoint = { namespace: parsed.namespace ?? this.#client.namespace, pod: parsed.pod, port: parsed.port };
      if (tried.has(endpointKey(endpoint))) throw new KubesocksError('NO_READY_ENDPOINTS', `pod ${endpoint.namespace}/${endpoint.pod} failed`);
      return { kind: 'pod', endpoint };
    }
    const resolution = await this.#resolver.resolve(parsed.host, parsed.port, signal);
    if (resolution.kind === 'external') {
      if (this.#direct === 'deny') {
        throw new KubesocksError('DIRECT_DENIED', `${resolution.host}:${resolution.port} is outside the cluster and direct connections are denied (--direct=deny)`);
      }
      const socket = await dialDirect(resolution.host, resolution.port, this.#connectTimeoutMs, signal);
      return { kind: 'direct', attempt: { stream: socket, via: `direct ${resolution.host}:${resolution.port}`, retryable: false } };
    }
    const endpoint = resolution.candidates.find((ep) => !tried.has(endpointKey(ep)));
    if (!endpoint) {
      throw new KubesocksError('NO_READY_ENDPOINTS', `${resolution.description}: every ready pod failed`);
    }
    return { kind: 'pod', endpoint };
  }

  async #openPair(ep: Endpoint, isFailover: boolean, signal: AbortSignal): Promise<Attempt> {
    const key = endpointKey(ep);
    const pair = await this.#pool.open(ep.namespace, ep.pod, ep.port, signal);
    // Until the KubeSocket takes the pair over, its failure is read from confirmed().
    pair.on('error', () => {});
    const attempt: Attempt = { stream: pair, via: key, endpoint: ep, retryable: true, acknowledged: () => pair.acknowledged };
    pair.confirmed().then(
      () => {
        this.#accepting.set(key, true);
        this.#resolver.report(ep, 'ok');
      },
      () => {},
    );
    // The first socket to a pod port waits to learn whether the pod accepts,
    // so the caller hears the truth (SOCKS reply 05 for a refusal). Later
    // ones go at once; a refusal then is handled by failover and replay.
    if (isFailover || this.#accepting.has(key)) return attempt;
    try {
      await untilAborted(pair.confirmed(), signal, () => asKubesocksError(signal.reason, 'TIMEOUT'));
    } catch (error) {
      pair.destroy();
      throw error;
    }
    return attempt;
  }

  #explain(parsed: ParsedTarget, error: KubesocksError): KubesocksError {
    // A pod asked for by name that the API server does not know is "not found", not "gone".
    if (parsed.kind === 'pod' && error.code === 'POD_GONE' && /not found/i.test(error.message)) {
      return new KubesocksError('NOT_FOUND', `${error.message}; check the name with kubectl get pods -n ${parsed.namespace ?? this.#client.namespace}`, { cause: error });
    }
    return error;
  }

  #noteFailure(ep: Endpoint, error: KubesocksError): void {
    debug('%s failed: %s', endpointKey(ep), error.message);
    this.observer.podFailed({ context: this.#client.contextName, namespace: ep.namespace, pod: ep.pod }, error);
    this.#accepting.delete(endpointKey(ep));
    if (error.code === 'POD_GONE') {
      this.#pool.dropPod(ep.namespace, ep.pod, error);
      this.#resolver.report(ep, 'gone');
    } else if (error.code === 'POD_REFUSED' || error.code === 'POD_NOT_RUNNING') {
      this.#resolver.report(ep, 'refused');
    } else {
      this.#resolver.report(ep, 'gone');
    }
  }
}

function describe(parsed: ParsedTarget): string {
  return parsed.kind === 'pod' ? `pod ${parsed.namespace ?? ''}/${parsed.pod}:${parsed.port}` : `${parsed.host}:${parsed.port}`;
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

/** Checks the options, loads the kubeconfig and builds a dialer. */
export async function createDialer(options: DialerOptions = {}): Promise<Dialer> {
  validateDialerOptions(options);
  const client = await KubeClient.load(options);
  const observer = options.observer ?? new Observer({ transport: options.transport ?? 'auto' });
  const context = client.contextName;
  const resolver = new Resolver(client, {
    clusterDomain: options.clusterDomain,
    namespace: client.namespace,
    maxNamespaces: options.maxNamespaces,
    observer,
    context,
  });
  const pool = new TunnelPool(client, { ...options.pool, observer, context, ...(options.transport ? { transport: options.transport } : {}) });
  return new Dialer(client, resolver, pool, { ...options, observer });
}
