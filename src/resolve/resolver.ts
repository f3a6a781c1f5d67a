/**
 * host:port → where to connect: ready pods (for cluster names) or an outside
 * host (for everything else, and for ExternalName services).
 *
 * Ports: a service port maps to the EndpointSlice port with the same name
 * (the endpoint-slice controller has already turned a named targetPort into
 * each pod's number, so this is right even when pods differ). Pod targets
 * (`pod.ns`, pod IPs, `a-b-c-d.ns.pod`), endpoints picked by hostname and
 * headless services use the port as given: DNS gives the pod's own IP there,
 * so the client's port is the pod's port.
 */
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { debuglog } from 'node:util';
import { LRUCache } from 'lru-cache';
import { KubesocksError } from '../errors.js';
import type { ApiHealth } from '../kube/health.js';
import type { Observer } from '../observe/observer.js';
import type { RequestSource } from '../kube/api.js';
import { isValidPort } from '../net/address.js';
import { untilAborted } from '../net/abort.js';
import { abortError } from '../kube/responses.js';
import { NamespaceCaches, type NamespaceCache } from './cache.js';
import { EndpointChooser } from './choice.js';
import { ClusterIPLookup } from './cluster-ips.js';
import { DEFAULT_CLUSTER_DOMAIN, isClusterForm, normalizeHost, parseName, type ParsedName } from './names.js';
import { NamespaceDirectory } from './namespaces.js';
import { isPublicTld } from './public-domains.js';
import type { EndpointInfo, PodInfo, PortInfo, ServiceInfo, SliceInfo } from './projections.js';
import { CACHE_SYNC_TIMEOUT_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:resolve');

export interface Endpoint {
  namespace: string;
  pod: string;
  podUid?: string;
  port: number;
  /** For logs: the service the endpoint was found through. */
  service?: string;
}

export type Resolution =
  | {
      kind: 'cluster';
      /** Ready, non-terminating endpoints, in preferred order (try the first; fall over to the next). */
      candidates: Endpoint[];
      /** For logs: `service demo/web port 80 → 8080 (3 ready)`. */
      description: string;
    }
  | { kind: 'external'; host: string; port: number };

export interface ResolverOptions {
  /** The kubelet's clusterDomain. Default `cluster.local`. */
  clusterDomain?: string;
  /** Namespace for single-label names. Default: the client's. */
  namespace?: string;
  /** Namespaces whose services/endpointslices/pods are watched at once. Default 64. */
  maxNamespaces?: number;
  /** How long NOT_FOUND answers are remembered. Default 2 s (0 = not at all). */
  negativeTtlMs?: number;
  /** How long GET answers are reused when list/watch is forbidden. Default 5 s. */
  getFallbackTtlMs?: number;
  /** How long a lookup waits for a namespace's first list. Default 15 s. */
  syncTimeoutMs?: number;
  /** How long an endpoint reported refused/gone goes to the back of the line. Default 10 s. */
  avoidMs?: number;
  /** How long the namespace list is reused. Default 30 s. */
  listTtlMs?: number;
  /** How long the owner of an IP literal outside the watched namespaces is remembered. Default 10 s. */
  ipTtlMs?: number;
  /** ListWatch retry backoff (first, max). Defaults 500 ms, 30 s. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Where relists and the API server's answers are recorded (the status page, /metrics). */
  observer?: Observer | undefined;
  /** The kubeconfig context, for the observer. Default ''. */
  context?: string | undefined;
}

/** What the resolver needs of a KubeClient. */
export type ResolverClient = RequestSource & { readonly namespace: string };

// Pod and service networks are private ranges in practice; an unknown
// public IP is an outside destination even when we could not list the cluster.
const PRIVATE = new net.BlockList();
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('100.64.0.0', 10, 'ipv4');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');

function isPrivate(ip: string): boolean {
  try {
    return PRIVATE.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

function portList(ports: PortInfo[]): string {
  return ports.map((p) => `${p.port}/${p.protocol ?? 'TCP'}${p.name ? ` (${p.name})` : ''}`).join(', ');
}

function notFound(message: string): KubesocksError {
  return new KubesocksError('NOT_FOUND', message);
}

/** While the API server is unreachable, how often a name that needs it may make kubesocks ask it again. */
const PROBE_INTERVAL_MS = 1000;

/**
 * Null when DNS has the name; else what DNS said, as a phrase about the name
 * (`ENOTFOUND`: no such name; `EAI_AGAIN`: DNS did not answer, as when the
 * network is down). Other failures are left for the connection to report.
 */
async function notInDns(host: string): Promise<string | null> {
  try {
    await lookup(host);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return `is not in DNS (${code})`;
    if (code === 'EAI_AGAIN') return 'got no answer from DNS (EAI_AGAIN)';
    return null;
  }
}

export class Resolver {
  readonly #clusterDomain: string;
  readonly #defaultNamespace: string;
  readonly #caches: NamespaceCaches;
  readonly #directory: NamespaceDirectory;
  readonly #ipIndex: ClusterIPLookup;
  readonly #chooser: EndpointChooser;
  readonly #negative: LRUCache<string, KubesocksError> | null;
  readonly #health: ApiHealth | undefined;
  readonly #stopFollowing: (() => void) | undefined;
  #closed = false;
  #probing = false;
  #probedAt = 0;

  constructor(client: ResolverClient, opts: ResolverOptions = {}) {
    this.#clusterDomain = normalizeHost(opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
    this.#defaultNamespace = opts.namespace ?? client.namespace;
    this.#health = client.health;
    const cacheOpts = {
      maxNamespaces: opts.maxNamespaces ?? 64,
      getFallbackTtlMs: opts.getFallbackTtlMs ?? 5_000,
      syncTimeoutMs: opts.syncTimeoutMs ?? CACHE_SYNC_TIMEOUT_MS,
      ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
      ...(opts.maxBackoffMs !== undefined ? { maxBackoffMs: opts.maxBackoffMs } : {}),
      observer: opts.observer,
      context: opts.context,
    };
    this.#caches = new NamespaceCaches(client, cacheOpts);
    const listTtl = opts.listTtlMs ?? 30_000;
    this.#directory = new NamespaceDirectory(client, { ttlMs: listTtl });
    this.#ipIndex = new ClusterIPLookup(client, opts.ipTtlMs ?? 10_000);
    this.#chooser = new EndpointChooser({ avoidMs: opts.avoidMs ?? 10_000 });
    const negativeTtl = opts.negativeTtlMs ?? 2_000;
    this.#negative = negativeTtl > 0 ? new LRUCache<string, KubesocksError>({ max: 1_000, ttl: negativeTtl }) : null;
    this.#health?.on('change', this.#onHealth);
    // The kubeconfig may now point at another cluster: answers learnt from
    // the old one go (the watches relist by themselves, see kube/watch.ts).
    this.#stopFollowing = client.onReconfigured?.((change) => {
      if (change.sameCluster) return;
      this.#negative?.clear();
      this.#ipIndex.close();
    });
  }

  /**
   * The server answers (first, or again after an outage): the namespace
   * list is fetched now if it is missing or old, so the PAC — which never
   * waits — names the namespaces, and names are judged on fresh facts.
   */
  readonly #onHealth = (state: string): void => {
    if (state === 'ok' && !this.#closed) this.#directory.listNow();
  };

  /**
   * Resolves host:port. Rejects with a KubesocksError: NOT_FOUND,
   * NO_READY_ENDPOINTS, NOT_FORWARDABLE, NO_SUCH_PORT, POD_NOT_RUNNING,
   * FORBIDDEN, BAD_TARGET, TIMEOUT, API_UNREACHABLE, CLOSED.
   */
  async resolve(host: string, port: number, signal?: AbortSignal): Promise<Resolution> {
    if (this.#closed) throw new KubesocksError('CLOSED', 'the resolver is closed');
    if (!isValidPort(port)) {
      throw new KubesocksError('BAD_TARGET', `port must be an integer 1-65535, got ${String(port)}`);
    }
    const name = normalizeHost(host);
    if (name === '') throw new KubesocksError('BAD_TARGET', 'empty host name');
    const cached = this.#negative?.get(name);
    if (cached) throw new KubesocksError(cached.code, cached.message);
    const parsed = this.#parse(name);
    try {
      // Whether a name is in the cluster is never left waiting on an API
      // server that does not answer: decide from what is known instead.
      const r = this.#health?.unreachable
        ? await this.#resolveOffline(name, parsed, port, signal)
        : await this.#untilUnreachable(this.#resolveParsed(name, parsed, port, 0, signal), () => this.#resolveOffline(name, parsed, port, signal));
      debug('%s:%d → %s', name, port, r.kind === 'cluster' ? r.description : `external ${r.host}:${r.port}`);
      return r;
    } catch (err) {
      if (err instanceof KubesocksError && err.code === 'NOT_FOUND') this.#negative?.set(name, err);
      throw err;
    }
  }

  /**
   * Runs `lookup`, unless the API server turns out unreachable first: then
   * `offline()` answers from what is known (the lookup goes on in the
   * background and fills the caches for later).
   */
  #untilUnreachable<T>(lookup: Promise<T>, offline: () => Promise<T>): Promise<T> {
    const health = this.#health;
    if (!health) return lookup;
    return new Promise<T>((resolve, reject) => {
      const onChange = (): void => {
        if (!health.unreachable) return;
        health.off('change', onChange);
        lookup.catch(() => {});
        offline().then(resolve, reject);
      };
      health.on('change', onChange);
      lookup.then(
        (value) => {
          health.off('change', onChange);
          resolve(value);
        },
        (error: unknown) => {
          health.off('change', onChange);
          // A lookup that failed because the server cannot be reached is answered offline too.
          if (health.unreachable && error instanceof KubesocksError && ['API_UNREACHABLE', 'TIMEOUT'].includes(error.code)) onChange();
          else reject(error);
        },
      );
    });
  }

  /**
   * The answer while the API server is unreachable, without asking it:
   * cluster forms (and names known to be in the cluster) fail at once with
   * one line naming the server; names known to be outside go outside. A name
   * that could be either with nothing known to tell (`web.demo` before any
   * namespace list) is asked of DNS: a name DNS has goes outside, one it
   * does not have fails with both facts in one line.
   */
  async #resolveOffline(name: string, parsed: ParsedName[], port: number, signal: AbortSignal | undefined): Promise<Resolution> {
    const verdict = this.#offlineVerdict(parsed);
    if (verdict.kind === 'external') return { kind: 'external', host: verdict.host, port };
    if (verdict.kind === 'cluster') throw this.#unreachable(name);
    this.#probe();
    const missing = await untilAborted(notInDns(verdict.host), signal, abortError);
    if (missing === null) return { kind: 'external', host: verdict.host, port };
    throw this.#unreachable(name, `${name} ${missing} and could not be checked against the cluster: `);
  }

  #unreachable(name: string, leadIn = ''): KubesocksError {
    this.#probe();
    const health = this.#health;
    return health ? health.unreachableError(leadIn) : new KubesocksError('API_UNREACHABLE', `${leadIn}cannot reach the API server to resolve ${name}`);
  }

  /**
   * While the server is unreachable, a name that needs it asks the server
   * again in the background (one request at a time, at most every
   * PROBE_INTERVAL_MS): the first answer marks it reachable, and the next
   * name is resolved normally. Watches retry on their own backoff; this
   * makes recovery follow demand instead.
   */
  #probe(): void {
    const now = Date.now();
    if (this.#closed || this.#probing || now - this.#probedAt < PROBE_INTERVAL_MS) return;
    this.#probing = true;
    this.#probedAt = now;
    this.#directory
      .refresh()
      .catch(() => {})
      .finally(() => {
        this.#probing = false;
      });
  }

  /** Where a name goes with nothing but what is known now: surely outside, surely the cluster, or unsure. */
  #offlineVerdict(parsed: ParsedName[]): { kind: 'external' | 'unsure'; host: string } | { kind: 'cluster' } {
    const cluster = { kind: 'cluster' } as const;
    if (isClusterForm(parsed) === true) return cluster;
    const first = parsed[0];
    if (!first) return cluster;
    if (first.kind === 'external') return { kind: 'external', host: first.host };
    if (first.kind === 'ip') {
      for (const cache of this.#caches.all()) {
        if (cache.serviceWithIPNow(first.ip) || (cache.podsWithIPNow(first.ip)?.length ?? 0) > 0) return cluster;
      }
      return { kind: 'external', host: first.ip };
    }
    const outside = parsed.find((p): p is Extract<ParsedName, { kind: 'external' }> => p.kind === 'external');
    // Only `x.y` and `host.svc.ns` have an outside reading; a single label is the name as given.
    const host = outside?.host ?? (first.kind === 'pod' ? first.pod : first.kind === 'service' ? first.service : '');
    const namespaceKnown = (ns: string): boolean | undefined => this.#directory.knownNow(ns);
    if (first.kind === 'serviceHost') {
      const ns = namespaceKnown(first.namespace);
      if (ns === false) return { kind: 'external', host };
      if (ns === undefined) return { kind: 'unsure', host };
      const known = this.#caches.has(first.namespace) ? this.#caches.get(first.namespace).hasNameNow(first.service) : undefined;
      return known === false ? { kind: 'external', host } : cluster;
    }
    if (first.kind !== 'service' && first.kind !== 'pod') return cluster;
    const namespace = first.namespace;
    const label = first.kind === 'service' ? first.service : first.pod;
    if (outside) {
      const ns = namespaceKnown(namespace);
      if (ns === false) return { kind: 'external', host };
      if (ns === undefined) return { kind: 'unsure', host };
    }
    const known = this.#caches.has(namespace) ? this.#caches.get(namespace).hasNameNow(label) : undefined;
    if (known === true) return cluster;
    // `x.NS` with NS a namespace but x not in it: outside.
    if (known === false) return { kind: 'external', host };
    // A namespace known to exist whose names are not known: nobody can tell, and DNS would not know them.
    return outside ? cluster : { kind: 'unsure', host };
  }

  /** Report how a connection to an endpoint went, so the next choices adapt. */
  report(ep: Endpoint, outcome: 'ok' | 'refused' | 'gone'): void {
    this.#chooser.report(ep, outcome);
  }

  /**
   * Is this a cluster name (for the proxy's direct/deny decision and PAC)?
   * The DNS forms are by their shape; `x.y` when namespace y exists; a
   * single label when such a service or pod exists in the default
   * namespace; an IP when a service or pod has it. Lookup failures → false.
   */
  async isClusterName(host: string): Promise<boolean> {
    const parsed = this.#parse(normalizeHost(host));
    const byForm = isClusterForm(parsed);
    if (byForm !== null) return byForm;
    const first = parsed[0];
    try {
      if (!first) return true;
      if (first.kind === 'ip') {
        const owner = await this.#findIP(first.ip);
        return owner !== null && owner !== 'unknown';
      }
      if (parsed[parsed.length - 1]?.kind === 'external') {
        return await this.#directory.exists((first as { namespace: string }).namespace);
      }
      const cache = await this.#ns(this.#defaultNamespace, undefined);
      for (const c of parsed) {
        if (c.kind === 'service' && (await cache.service(c.service))) return true;
        if (c.kind === 'pod' && (await cache.pod(c.pod))) return true;
      }
      return false;
    } catch (err) {
      debug('isClusterName(%s): %s', host, err instanceof Error ? err.message : String(err));
      return false;
    }
  }

  /** The namespaces whose services, pods and slices are watched now. */
  cachedNamespaces(): string[] {
    return this.#caches.names();
  }

  /**
   * For the PAC file, at once from what is known, never waiting on the API
   * server (a stale list refreshes in the background; nothing known yet →
   * no namespaces, and the PAC still sends the cluster-domain forms):
   * namespaces whose `*.NS` can go to the cluster wholesale, and for
   * namespaces named like a public domain (dev, com, …) the exact `NAME.NS`
   * of their services and pods instead (their caches start filling for the
   * next fetch).
   */
  pacNames(): { namespaces: string[]; hosts: string[] } {
    const namespaces: string[] = [];
    const hosts: string[] = [];
    for (const ns of this.#directory.listNow()) {
      if (!isPublicTld(ns)) {
        namespaces.push(ns);
        continue;
      }
      if (this.#closed) continue;
      for (const name of this.#caches.get(ns).namesNow()) hosts.push(`${name}.${ns}`);
    }
    return { namespaces, hosts };
  }

  /** Namespaces that exist (for the PAC file): the list, or, when that is forbidden, those seen. */
  namespaces(): Promise<string[]> {
    return this.#directory.list();
  }

  /** Namespaces whose services, EndpointSlices and pods are watched now. */
  watchedNamespaces(): string[] {
    return this.#caches
      .all()
      .map((cache) => cache.namespace)
      .sort();
  }

  /** Stops every watch. Later resolve() calls reject with CLOSED. */
  close(): void {
    this.#closed = true;
    this.#health?.off('change', this.#onHealth);
    this.#stopFollowing?.();
    this.#caches.close();
    this.#ipIndex.close();
  }

  #parse(name: string): ParsedName[] {
    return parseName(name, { clusterDomain: this.#clusterDomain, namespace: this.#defaultNamespace });
  }

  /**
   * The namespace's cache. A namespace not cached yet must exist: its lists
   * start at once, side by side with that check (one round trip to the API
   * server instead of two in a row for the first name in a namespace), and
   * the cache is dropped again when it does not exist, so three watches on a
   * name that is not a namespace do not push a useful namespace out of the LRU.
   */
  async #ns(namespace: string, signal: AbortSignal | undefined): Promise<NamespaceCache> {
    if (this.#closed) throw new KubesocksError('CLOSED', 'the resolver is closed');
    if (this.#caches.has(namespace)) return this.#caches.get(namespace);
    const cache = this.#caches.get(namespace);
    try {
      await this.#assertNamespace(namespace, signal);
    } catch (error) {
      this.#caches.drop(namespace, cache);
      throw error;
    }
    if (this.#closed) throw new KubesocksError('CLOSED', 'the resolver is closed');
    return cache;
  }

  async #resolveParsed(
    name: string,
    parsed: ParsedName[],
    port: number,
    depth: number,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    const first = parsed[0];
    if (!first) {
      throw notFound(
        `${name} is inside the cluster domain ${this.#clusterDomain} but is not a name Kubernetes DNS serves ` +
          `(SERVICE.NAMESPACE.svc.${this.#clusterDomain}, HOSTNAME.SERVICE.NAMESPACE.svc.${this.#clusterDomain}, A-B-C-D.NAMESPACE.pod.${this.#clusterDomain})`,
      );
    }
    switch (first.kind) {
      case 'external':
        return { kind: 'external', host: first.host, port };
      case 'ip':
        return this.#resolveIP(first.ip, port, depth, signal);
      case 'podIP':
        return this.#resolvePodIP(first.namespace, first.ip, port, signal);
      case 'serviceHost': {
        const outside = parsed.find((p) => p.kind === 'external');
        if (outside) {
          // `host.svc.ns` is a cluster name only where ns is a namespace with a service svc.
          if (!(await this.#directory.exists(first.namespace, signal))) return { kind: 'external', host: outside.host, port };
          const cache = await this.#ns(first.namespace, signal);
          if (!(await cache.service(first.service, signal))) return { kind: 'external', host: outside.host, port };
        }
        return this.#resolveServiceHost(first.namespace, first.service, first.hostname, port, signal);
      }
      case 'service':
      case 'pod':
        break;
    }
    // `svc`, `svc.ns`, `pod.ns`: a service first, then a pod of that name; for
    // `x.y`, the internet host x.y when there is no namespace y.
    const namespace = first.namespace;
    const external = parsed.find((p) => p.kind === 'external');
    if (external && !(await this.#directory.exists(namespace, signal))) {
      return { kind: 'external', host: external.host, port };
    }
    const cache = await this.#ns(namespace, signal);
    const svcCandidate = parsed.find((p): p is Extract<ParsedName, { kind: 'service' }> => p.kind === 'service');
    const podCandidate = parsed.find((p): p is Extract<ParsedName, { kind: 'pod' }> => p.kind === 'pod');
    if (svcCandidate) {
      const svc = await cache.service(svcCandidate.service, signal);
      if (svc) return this.#resolveService(cache, svc, port, depth, signal);
    }
    if (podCandidate) {
      const pod = await cache.pod(podCandidate.pod, signal);
      if (pod) return this.#resolvePod(namespace, pod, port);
    }
    await this.#assertNamespace(namespace, signal);
    // `x.NS` reaches the cluster only where x is a service or pod in NS: a
    // namespace named like a public domain (dev, app, io, com) must not
    // capture go.dev or example.com.
    if (external) return { kind: 'external', host: external.host, port };
    if (svcCandidate && podCandidate) {
      throw notFound(`no service or pod named "${svcCandidate.service}" in namespace "${namespace}" (see kubectl get svc,pods -n ${namespace})`);
    }
    if (svcCandidate) {
      throw notFound(`service "${svcCandidate.service}" not found in namespace "${namespace}" (see kubectl get svc -n ${namespace})`);
    }
    const podName = podCandidate?.pod ?? name;
    throw notFound(`pod "${podName}" not found in namespace "${namespace}" (see kubectl get pods -n ${namespace})`);
  }

  /** NOT_FOUND naming the namespace when it does not exist (after a miss, to say which part is wrong). */
  async #assertNamespace(namespace: string, signal: AbortSignal | undefined): Promise<void> {
    let exists = true;
    try {
      exists = await this.#directory.exists(namespace, signal);
    } catch {
      // Could not tell: the caller's own NOT_FOUND is still true.
    }
    if (!exists) throw notFound(`namespace "${namespace}" does not exist (see kubectl get namespaces)`);
  }

  async #resolveService(
    cache: NamespaceCache,
    svc: ServiceInfo,
    port: number,
    depth: number,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    const namespace = cache.namespace;
    const id = `service "${svc.metadata.name}" in namespace "${namespace}"`;
    if (svc.type === 'ExternalName') {
      const target = normalizeHost(svc.externalName ?? '');
      if (target === '') throw new KubesocksError('NOT_FORWARDABLE', `${id} is an ExternalName service without an externalName`);
      const parsed = this.#parse(target);
      const first = parsed[0];
      if (first?.kind === 'external' && parsed.length === 1) return { kind: 'external', host: target, port };
      // A cluster name (or an IP, or an `x.y` that may be one): follow it once.
      if (depth >= 1) {
        throw new KubesocksError('NOT_FORWARDABLE', `${id} points to ${target}, another ExternalName hop; kubesocks follows only one`);
      }
      return this.#resolveParsed(target, parsed, port, depth + 1, signal);
    }

    if (svc.headless) {
      // DNS answers a headless name with the pods' own IPs: the port is the pod's.
      const slices = await cache.slicesFor(svc.metadata.name, signal);
      const eps = slices.flatMap((s) => s.endpoints.map((ep) => ({ ep, port })));
      return this.#choose(namespace, svc, eps, port, `headless service ${namespace}/${svc.metadata.name} port ${port}`);
    }

    const tcp = svc.ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP');
    const svcPort = tcp.find((p) => p.port === port);
    if (!svcPort) {
      const other = svc.ports.find((p) => p.port === port);
      if (other) {
        throw new KubesocksError('NO_SUCH_PORT', `${id} has port ${port} only as ${other.protocol ?? 'TCP'}; port-forward carries TCP only`);
      }
      throw new KubesocksError(
        'NO_SUCH_PORT',
        svc.ports.length > 0 ? `${id} has no port ${port} (its ports: ${portList(svc.ports)})` : `${id} has no ports`,
      );
    }
    const slices = await cache.slicesFor(svc.metadata.name, signal);
    const eps: Array<{ ep: EndpointInfo; port: number }> = [];
    for (const slice of slices) {
      const sp = matchSlicePort(slice, svcPort.name);
      if (!sp) continue;
      for (const ep of slice.endpoints) eps.push({ ep, port: sp.port });
    }
    const target = [...new Set(eps.map((e) => e.port))].join('/');
    return this.#choose(namespace, svc, eps, port, `service ${namespace}/${svc.metadata.name} port ${port}${target ? ` → ${target}` : ''}`);
  }

  #choose(
    namespace: string,
    svc: ServiceInfo,
    eps: Array<{ ep: EndpointInfo; port: number }>,
    port: number,
    what: string,
  ): Resolution {
    const id = `service "${svc.metadata.name}" in namespace "${namespace}"`;
    const pods = eps.filter((e) => e.ep.pod !== undefined);
    if (eps.length > 0 && pods.length === 0) {
      const sample = eps.find((e) => e.ep.address)?.ep.address;
      throw new KubesocksError(
        'NOT_FORWARDABLE',
        `${id} has endpoints that are not pods${sample ? ` (e.g. ${sample})` : ''}; port-forward can only reach pods`,
      );
    }
    // One entry per pod: dual-stack services list each pod in an IPv4 and an IPv6 slice.
    const byPod = new Map<string, { ep: EndpointInfo; port: number }>();
    for (const e of pods) if (!byPod.has(e.ep.pod as string)) byPod.set(e.ep.pod as string, e);
    const all = [...byPod.values()];
    const ready = all.filter((e) => e.ep.ready && !e.ep.terminating);
    if (ready.length === 0) {
      const notReady = all.filter((e) => !e.ep.ready && !e.ep.terminating).length;
      const terminating = all.filter((e) => e.ep.terminating).length;
      let why: string;
      if (all.length === 0) {
        why = svc.selector
          ? 'it has no endpoints: its selector matches no pod (see kubectl get pods -n ' + namespace + ' --show-labels)'
          : 'it has no endpoints and no selector';
      } else {
        const parts: string[] = [];
        if (notReady > 0) parts.push(`${notReady} not ready`);
        if (terminating > 0) parts.push(`${terminating} terminating`);
        why = `${parts.join(', ')} (see kubectl get pods -n ${namespace})`;
      }
      throw new KubesocksError('NO_READY_ENDPOINTS', `${id} has no ready endpoints for port ${port}: ${why}`);
    }
    const candidates = this.#chooser.order(
      ready.map((e) => {
        const ep: Endpoint = { namespace, pod: e.ep.pod as string, port: e.port, service: svc.metadata.name };
        if (e.ep.uid) ep.podUid = e.ep.uid;
        return ep;
      }),
    );
    return { kind: 'cluster', candidates, description: `${what} (${ready.length} ready)` };
  }

  async #resolveServiceHost(
    namespace: string,
    service: string,
    hostname: string,
    port: number,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    const cache = await this.#ns(namespace, signal);
    const svc = await cache.service(service, signal);
    if (!svc) {
      await this.#assertNamespace(namespace, signal);
      throw notFound(`service "${service}" not found in namespace "${namespace}" (see kubectl get svc -n ${namespace})`);
    }
    const slices = await cache.slicesFor(service, signal);
    const matches = slices.flatMap((s) => s.endpoints.filter((ep) => ep.hostname === hostname));
    if (matches.length === 0) {
      throw notFound(
        `service "${service}" in namespace "${namespace}" has no endpoint with hostname "${hostname}" ` +
          `(see kubectl get endpointslices -n ${namespace} -l kubernetes.io/service-name=${service})`,
      );
    }
    return this.#choose(
      namespace,
      svc,
      matches.map((ep) => ({ ep, port })),
      port,
      `${hostname}.${service} in ${namespace} port ${port}`,
    );
  }

  #resolvePod(namespace: string, pod: PodInfo, port: number): Resolution {
    if (pod.phase !== 'Running') {
      throw new KubesocksError(
        'POD_NOT_RUNNING',
        `pod "${pod.metadata.name}" in namespace "${namespace}" is ${pod.phase}, not Running`,
      );
    }
    const ep: Endpoint = { namespace, pod: pod.metadata.name, port };
    if (pod.uid) ep.podUid = pod.uid;
    return { kind: 'cluster', candidates: [ep], description: `pod ${namespace}/${pod.metadata.name} port ${port}` };
  }

  async #resolvePodIP(namespace: string, ip: string, port: number, signal: AbortSignal | undefined): Promise<Resolution> {
    const cache = await this.#ns(namespace, signal);
    const pods = await cache.podsWithIP(ip, signal);
    if (pods === null) {
      throw notFound(
        `cannot look up pod IP ${ip} in namespace "${namespace}": listing pods there is forbidden; use the pod's name (POD.${namespace})`,
      );
    }
    const pod = pods.find((p) => p.phase === 'Running') ?? pods[0];
    if (!pod) {
      await this.#assertNamespace(namespace, signal);
      throw notFound(`no pod with IP ${ip} in namespace "${namespace}" (see kubectl get pods -n ${namespace} -o wide)`);
    }
    return this.#resolvePod(namespace, pod, port);
  }

  /** The service or pod owning `ip`: watched namespaces first, then a cluster-wide list. */
  async #findIP(
    ip: string,
    signal?: AbortSignal,
  ): Promise<{ svc: ServiceInfo; cache: NamespaceCache } | { pod: PodInfo; namespace: string } | null | 'unknown'> {
    for (const cache of this.#caches.all()) {
      const svc = cache.serviceWithIPNow(ip);
      if (svc) return { svc, cache };
    }
    for (const cache of this.#caches.all()) {
      const pods = cache.podsWithIPNow(ip);
      const pod = pods?.find((p) => p.phase === 'Running') ?? pods?.[0];
      if (pod) return { pod, namespace: cache.namespace };
    }
    const owner = await this.#ipIndex.lookup(ip, signal);
    if (owner === null || owner === 'unknown') return owner;
    this.#directory.noteSeen(owner.namespace);
    const cache = await this.#ns(owner.namespace, signal);
    if (owner.kind === 'service') {
      const svc = await cache.service(owner.name, signal);
      return svc ? { svc, cache } : null;
    }
    const pod = await cache.pod(owner.name, signal);
    return pod ? { pod, namespace: owner.namespace } : null;
  }

  async #resolveIP(ip: string, port: number, depth: number, signal: AbortSignal | undefined): Promise<Resolution> {
    const owner = await this.#findIP(ip, signal);
    if (owner === null) return { kind: 'external', host: ip, port };
    if (owner === 'unknown') {
      if (!isPrivate(ip)) return { kind: 'external', host: ip, port };
      throw notFound(
        `${ip} is not a ClusterIP or pod IP kubesocks can see (listing services and pods across namespaces is forbidden); use a name such as SERVICE.NAMESPACE`,
      );
    }
    if ('svc' in owner) return this.#resolveService(owner.cache, owner.svc, port, depth, signal);
    return this.#resolvePod(owner.namespace, owner.pod, port);
  }
}

/** The slice port for a service port name; a single unnamed port matches ''. */
function matchSlicePort(slice: SliceInfo, name: string): PortInfo | undefined {
  return slice.ports.find((p) => p.name === name && (p.protocol ?? 'TCP') === 'TCP');
}
