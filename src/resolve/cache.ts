/**
 * Watch-fed cache of Services, EndpointSlices and Pods, per namespace.
 *
 * A namespace's three ListWatches start with the first name that needs the
 * namespace and stop when it falls out of an LRU bounded by `maxNamespaces`
 * (a laptop proxy may touch many namespaces over a day; it should watch only
 * the ones in use). Each ListWatch keeps compact projections (projections.ts)
 * and small indexes (service → slices, ClusterIP → service, pod IP → pods).
 *
 * A user who may not list or watch a resource there (the ListWatch reports
 * 'forbidden') gets that resource through GETs instead, each answer cached
 * for `getFallbackTtlMs`.
 */
import { debuglog } from 'node:util';
import { LRUCache } from 'lru-cache';
import { KubesocksError } from '../errors.js';
import { getJSON, type RequestSource } from '../kube/api.js';
import { abortError } from '../kube/responses.js';
import type { Observer } from '../observe/observer.js';
import { ListWatch } from '../kube/watch.js';
import { untilAborted } from '../net/abort.js';
import {
  projectPod,
  projectService,
  projectSlice,
  sliceFromEndpoints,
  type PodInfo,
  type ServiceInfo,
  type SliceInfo,
} from './projections.js';
import { API_LOOKUP_TIMEOUT_MS, CACHE_SYNC_TIMEOUT_MS, WATCH_MAX_BACKOFF_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:resolve');

export interface CacheOptions {
  /** Namespaces watched at once. Default 64. */
  maxNamespaces?: number;
  /** How long GET answers are reused when list/watch is forbidden. Default 5 s. */
  getFallbackTtlMs?: number;
  /** How long a lookup waits for a namespace's first list. Default 15 s. */
  syncTimeoutMs?: number;
  /** ListWatch retry backoff. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Where relists and the API server's answers are recorded (the status page, /metrics). */
  observer?: Observer | undefined;
  /** The kubeconfig context, for the observer. Default ''. */
  context?: string | undefined;
}

type Mode = 'watch' | 'get';

// Multi-maps as arrays: almost every key has one value (one slice per
// service, one pod per IP), and a one-element array is a fraction of a Set.
function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (!list) map.set(key, [value]);
  else if (!list.includes(value)) list.push(value);
}

function removeFrom<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (!list) return;
  const i = list.indexOf(value);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) map.delete(key);
}

export class NamespaceCache {
  readonly services: ListWatch<ServiceInfo>;
  readonly slices: ListWatch<SliceInfo>;
  readonly pods: ListWatch<PodInfo>;

  readonly #slicesByService = new Map<string, string[]>();
  readonly #serviceByIP = new Map<string, string>();
  readonly #podsByIP = new Map<string, string[]>();
  readonly #gets: LRUCache<string, Promise<unknown>>;
  #slicesListForbidden: KubesocksError | undefined;
  readonly #syncTimeoutMs: number;
  #closed = false;

  readonly #client: RequestSource;

  constructor(readonly namespace: string, client: RequestSource, opts: CacheOptions = {}) {
    this.#client = client;
    this.#syncTimeoutMs = opts.syncTimeoutMs ?? CACHE_SYNC_TIMEOUT_MS;
    this.#gets = new LRUCache<string, Promise<unknown>>({ max: 2_000, ttl: Math.max(1, opts.getFallbackTtlMs ?? 5_000) });
    const ns = encodeURIComponent(namespace);
    const lw = { backoffMs: opts.backoffMs ?? 500, maxBackoffMs: opts.maxBackoffMs ?? WATCH_MAX_BACKOFF_MS };
    this.services = new ListWatch<ServiceInfo>(client, `/api/v1/namespaces/${ns}/services`, { ...lw, project: projectService });
    this.slices = new ListWatch<SliceInfo>(client, `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
      ...lw,
      project: projectSlice,
    });
    this.pods = new ListWatch<PodInfo>(client, `/api/v1/namespaces/${ns}/pods`, { ...lw, project: projectPod });

    this.services.on('add', (s: ServiceInfo) => {
      this.#indexService(s);
    });
    this.services.on('update', (s: ServiceInfo, old: ServiceInfo) => {
      this.#unindexService(old);
      this.#indexService(s);
    });
    this.services.on('delete', (s: ServiceInfo) => {
      this.#unindexService(s);
    });
    this.slices.on('add', (s: SliceInfo) => {
      addTo(this.#slicesByService, s.service, s.metadata.name);
    });
    this.slices.on('update', (s: SliceInfo, old: SliceInfo) => {
      removeFrom(this.#slicesByService, old.service, old.metadata.name);
      addTo(this.#slicesByService, s.service, s.metadata.name);
    });
    this.slices.on('delete', (s: SliceInfo) => {
      removeFrom(this.#slicesByService, s.service, s.metadata.name);
    });
    this.pods.on('add', (p: PodInfo) => {
      for (const ip of p.ips) addTo(this.#podsByIP, ip, p.metadata.name);
    });
    this.pods.on('update', (p: PodInfo, old: PodInfo) => {
      for (const ip of old.ips) removeFrom(this.#podsByIP, ip, old.metadata.name);
      for (const ip of p.ips) addTo(this.#podsByIP, ip, p.metadata.name);
    });
    this.pods.on('delete', (p: PodInfo) => {
      for (const ip of p.ips) removeFrom(this.#podsByIP, ip, p.metadata.name);
    });
    for (const w of [this.services, this.slices, this.pods] as Array<ListWatch<{ metadata: { name: string } }>>) {
      // Errors are retried by the ListWatch; lookups see them through lastError.
      w.on('error', (e: KubesocksError) => {
        debug('namespace %s: %s', namespace, e.message);
      });
      w.on('forbidden', (e: KubesocksError) => {
        debug('namespace %s: %s — falling back to GETs', namespace, e.message);
      });
      const { observer, context = '' } = opts;
      if (observer) {
        let lists = 0;
        w.on('synced', () => {
          if (++lists > 1) observer.watchRelisted();
          observer.apiResult(context);
        });
        w.on('error', (e: KubesocksError) => observer.apiResult(context, e));
        w.on('forbidden', (e: KubesocksError) => observer.apiResult(context, e));
      }
    }
  }

  start(): void {
    this.services.start();
    this.slices.start();
    this.pods.start();
  }

  /** Stops the three watches (eviction or resolver close). */
  stop(): void {
    this.#closed = true;
    this.services.stop();
    this.slices.stop();
    this.pods.stop();
    this.#gets.clear();
  }

  #indexService(s: ServiceInfo): void {
    for (const ip of s.clusterIPs ?? []) this.#serviceByIP.set(ip, s.metadata.name);
  }

  #unindexService(s: ServiceInfo): void {
    for (const ip of s.clusterIPs ?? []) {
      if (this.#serviceByIP.get(ip) === s.metadata.name) this.#serviceByIP.delete(ip);
    }
  }

  /** Waits for the first list of `lw`; 'get' when list/watch is forbidden. */
  async #mode(lw: ListWatch<{ metadata: { name: string } }>, what: string, signal?: AbortSignal): Promise<Mode> {
    if (lw.forbidden) return 'get';
    if (lw.synced) return 'watch';
    if (this.#closed) throw new KubesocksError('CLOSED', `the cache of namespace "${this.namespace}" was closed`);
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        lw.off('synced', onDone);
        lw.off('forbidden', onDone);
        lw.off('error', onError);
        lw.off('stop', onStop);
        signal?.removeEventListener('abort', onAbort);
      };
      const onDone = (): void => {
        cleanup();
        resolve();
      };
      // Errors that waiting will not cure end the wait at once.
      const onError = (e: KubesocksError): void => {
        if (e.code === 'UNAUTHORIZED' || e.code === 'CONFIG') {
          cleanup();
          reject(e);
        }
      };
      const onStop = (): void => {
        cleanup();
        reject(new KubesocksError('CLOSED', `the cache of namespace "${this.namespace}" was closed`));
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortError(signal));
      };
      const timer = setTimeout(() => {
        cleanup();
        const last = lw.lastError;
        reject(
          last
            ? new KubesocksError(last.code, `listing ${what} in namespace "${this.namespace}" failed: ${last.message}`, { cause: last })
            : new KubesocksError('TIMEOUT', `listing ${what} in namespace "${this.namespace}" took longer than ${this.#syncTimeoutMs} ms`),
        );
      }, this.#syncTimeoutMs);
      lw.on('synced', onDone);
      lw.on('forbidden', onDone);
      lw.on('error', onError);
      lw.on('stop', onStop);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return lw.forbidden ? 'get' : 'watch';
  }

  /** One GET shared by concurrent callers and reused for the TTL; failures are not kept. */
  #cachedGet<T>(key: string, fetch: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let p = this.#gets.get(key) as Promise<T> | undefined;
    if (!p) {
      p = fetch();
      this.#gets.set(key, p);
      p.catch(() => {
        if (this.#gets.get(key) === p) this.#gets.delete(key);
      });
    }
    return untilAborted(p, signal, abortError);
  }

  /** GET a single object; null on 404. */
  async #getOrNull<T>(path: string, project: (raw: unknown) => T | null): Promise<T | null> {
    try {
      return project(await getJSON<unknown>(this.#client, path, { timeoutMs: API_LOOKUP_TIMEOUT_MS }));
    } catch (err) {
      if (err instanceof KubesocksError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  async service(name: string, signal?: AbortSignal): Promise<ServiceInfo | null> {
    if ((await this.#mode(this.services, 'services', signal)) === 'watch') return this.services.get(name) ?? null;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/services/${encodeURIComponent(name)}`;
    return this.#cachedGet(`svc/${name}`, () => this.#getOrNull(path, projectService), signal);
  }

  async pod(name: string, signal?: AbortSignal): Promise<PodInfo | null> {
    if ((await this.#mode(this.pods, 'pods', signal)) === 'watch') return this.pods.get(name) ?? null;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods/${encodeURIComponent(name)}`;
    return this.#cachedGet(`pod/${name}`, () => this.#getOrNull(path, projectPod), signal);
  }

  /** The EndpointSlices of a service (through GETs when list/watch is forbidden). */
  async slicesFor(service: string, signal?: AbortSignal): Promise<SliceInfo[]> {
    if ((await this.#mode(this.slices, 'endpointslices', signal)) === 'watch') {
      const out: SliceInfo[] = [];
      for (const name of this.#slicesByService.get(service) ?? []) {
        const s = this.slices.get(name);
        if (s) out.push(s);
      }
      return out;
    }
    return this.#cachedGet(`slices/${service}`, () => this.#fetchSlices(service), signal);
  }

  async #fetchSlices(service: string): Promise<SliceInfo[]> {
    const ns = encodeURIComponent(this.namespace);
    if (!this.#slicesListForbidden) {
      // A user who may list but not watch still gets slices in one request.
      const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
      try {
        const list = await getJSON<{ items?: unknown[] }>(
          this.#client,
          `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${selector}`,
          { timeoutMs: API_LOOKUP_TIMEOUT_MS },
        );
        return (list.items ?? []).map(projectSlice).filter((s): s is SliceInfo => s !== null && s.service === service);
      } catch (err) {
        if (!(err instanceof KubesocksError) || err.code !== 'FORBIDDEN') throw err;
        this.#slicesListForbidden = err;
      }
    }
    // Last resort: the v1 Endpoints object, which has the service's name and so needs only `get`.
    try {
      const ep = await getJSON<unknown>(this.#client, `/api/v1/namespaces/${ns}/endpoints/${encodeURIComponent(service)}`, { timeoutMs: API_LOOKUP_TIMEOUT_MS });
      return sliceFromEndpoints(ep, service);
    } catch (err) {
      if (err instanceof KubesocksError && (err.code === 'NOT_FOUND' || err.code === 'FORBIDDEN')) {
        const denied = this.#slicesListForbidden;
        throw new KubesocksError(
          'FORBIDDEN',
          `${denied?.message ?? err.message} (kubesocks must list endpointslices or get endpoints in namespace "${this.namespace}" to find the pods of service "${service}")`,
          { cause: denied ?? err },
        );
      }
      throw err;
    }
  }

  /** Pods with this IP, or null when pods cannot be listed here (so nobody can tell). */
  async podsWithIP(ip: string, signal?: AbortSignal): Promise<PodInfo[] | null> {
    if ((await this.#mode(this.pods, 'pods', signal)) === 'get') return null;
    return this.podsWithIPNow(ip) ?? [];
  }

  /** Without waiting: pods with this IP if the pod list is in, else null. */
  podsWithIPNow(ip: string): PodInfo[] | null {
    if (!this.pods.synced || this.pods.forbidden) return null;
    const out: PodInfo[] = [];
    for (const name of this.#podsByIP.get(ip) ?? []) {
      const p = this.pods.get(name);
      if (p) out.push(p);
    }
    return out;
  }

  /** Without waiting: the names of the services and pods here (empty until the lists are in). */
  namesNow(): string[] {
    const names = new Set<string>();
    for (const lw of [this.services, this.pods] as Array<ListWatch<{ metadata: { name: string } }>>) {
      if (!lw.synced || lw.forbidden) continue;
      for (const item of lw.items()) names.add(item.metadata.name);
    }
    return [...names].sort();
  }

  /**
   * Without waiting: whether a service (first) or pod of this name is known
   * here; undefined when the lists are not in (nobody can tell yet).
   */
  hasNameNow(name: string): boolean | undefined {
    const lists = [this.services, this.pods];
    if (lists.some((lw) => !lw.synced || lw.forbidden)) return undefined;
    return this.services.get(name) !== undefined || this.pods.get(name) !== undefined;
  }

  /** Without waiting: the service with this ClusterIP if the service list is in. */
  serviceWithIPNow(ip: string): ServiceInfo | undefined {
    if (!this.services.synced || this.services.forbidden) return undefined;
    const name = this.#serviceByIP.get(ip);
    return name === undefined ? undefined : this.services.get(name);
  }
}

/** The LRU of namespace caches: an evicted namespace stops its watches. */
export class NamespaceCaches {
  readonly #lru: LRUCache<string, NamespaceCache>;

  readonly #client: RequestSource;
  readonly #opts: CacheOptions;

  constructor(client: RequestSource, opts: CacheOptions = {}) {
    this.#client = client;
    this.#opts = opts;
    this.#lru = new LRUCache<string, NamespaceCache>({
      max: Math.max(1, opts.maxNamespaces ?? 64),
      dispose: (cache, ns) => {
        debug('namespace %s leaves the cache: stopping its watches', ns);
        cache.stop();
      },
    });
  }

  /** The cache of `namespace`, started on first use; marks it most recently used. */
  get(namespace: string): NamespaceCache {
    let cache = this.#lru.get(namespace);
    if (!cache) {
      cache = new NamespaceCache(namespace, this.#client, this.#opts);
      this.#lru.set(namespace, cache);
      cache.start();
    }
    return cache;
  }

  /** Drops `namespace`'s cache (stopping its watches) if it is still `cache`. */
  drop(namespace: string, cache: NamespaceCache): void {
    if (this.#lru.peek(namespace) === cache) this.#lru.delete(namespace);
  }

  /** Is the namespace cached (without touching its recency)? */
  has(namespace: string): boolean {
    return this.#lru.has(namespace);
  }

  /** The namespaces cached (watched) now, without touching recency. */
  names(): string[] {
    return [...this.#lru.keys()];
  }

  /** Every cache, without touching recency. */
  all(): NamespaceCache[] {
    return [...this.#lru.values()];
  }

  get size(): number {
    return this.#lru.size;
  }

  /** Stops every watch. */
  close(): void {
    this.#lru.clear();
  }
}
