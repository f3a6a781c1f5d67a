/**
 * Who owns an IP anywhere in the cluster: for IP literals that no watched
 * namespace knows. One field-selected query per kind
 * (`/api/v1/services?fieldSelector=spec.clusterIP=IP`,
 * `/api/v1/pods?fieldSelector=status.podIP=IP`; both are selectable fields in
 * pkg/registry/core/{service,pod}/strategy.go), so a browser visiting many
 * outside IPs through the proxy costs the API server two tiny answers per IP,
 * never a cluster-wide pod list. Answers (including "nobody") are kept for
 * `ttlMs`, for at most `maxEntries` IPs.
 *
 * A server that does not support the service field selector (400 "field
 * label not supported") gets one full service list instead, reused for the
 * TTL (services are few and small next to pods).
 */
import { LRUCache } from 'lru-cache';
import { KubesocksError } from '../errors.js';
import { listAll, type RequestSource } from '../kube/api.js';
import { abortError } from '../kube/responses.js';
import { canonicalIP } from './names.js';
import { untilAborted } from '../net/abort.js';
import { API_LOOKUP_TIMEOUT_MS } from '../net/timeouts.js';

export interface IPOwner {
  kind: 'service' | 'pod';
  namespace: string;
  name: string;
}

/** The owner, null when nobody in the cluster has the IP, 'unknown' when a list was forbidden and nothing was found. */
export type IPAnswer = IPOwner | null | 'unknown';

interface Found {
  namespace: string;
  name: string;
  ips: string[];
  running: boolean;
}

function projectOwner(kind: 'service' | 'pod') {
  return (raw: unknown): Found | null => {
    const o = raw as {
      metadata?: { name?: string; namespace?: string };
      spec?: { clusterIP?: string; clusterIPs?: string[] };
      status?: { podIP?: string; podIPs?: Array<{ ip?: string }>; phase?: string };
    } | null;
    const name = o?.metadata?.name;
    const namespace = o?.metadata?.namespace;
    if (!name || !namespace) return null;
    let ips: string[];
    if (kind === 'service') ips = o.spec?.clusterIPs ?? (o.spec?.clusterIP ? [o.spec.clusterIP] : []);
    else ips = (o.status?.podIPs ?? []).map((p) => p.ip ?? '').filter((ip) => ip !== '');
    if (kind === 'pod' && ips.length === 0 && o.status?.podIP) ips = [o.status.podIP];
    const canon = ips.map((ip) => canonicalIP(ip)).filter((ip): ip is string => ip !== null);
    return { namespace, name, ips: canon, running: o.status?.phase === 'Running' };
  };
}

const FORBIDDEN = Symbol('forbidden');

export class ClusterIPLookup {
  readonly #answers: LRUCache<string, Promise<IPAnswer>>;
  /** Fallback when the service field selector is not supported: ClusterIP → service, reused for the TTL. */
  #serviceMap: { map: Map<string, IPOwner>; at: number } | null = null;
  #noServiceSelector = false;

  readonly #client: RequestSource;
  readonly #ttlMs: number;

  constructor(client: RequestSource, ttlMs = 10_000, maxEntries = 1_000) {
    this.#client = client;
    this.#ttlMs = ttlMs;
    this.#answers = new LRUCache<string, Promise<IPAnswer>>({ max: maxEntries, ttl: Math.max(1, ttlMs) });
  }

  lookup(ip: string, signal?: AbortSignal): Promise<IPAnswer> {
    let p = this.#answers.get(ip);
    if (!p) {
      p = this.#find(ip);
      this.#answers.set(ip, p);
      p.catch(() => {
        if (this.#answers.get(ip) === p) this.#answers.delete(ip);
      });
    }
    return untilAborted(p, signal, abortError);
  }

  async #find(ip: string): Promise<IPAnswer> {
    const svc = await this.#findService(ip);
    if (svc !== null && svc !== FORBIDDEN) return svc;
    const pod = await this.#findPod(ip);
    if (pod !== null && pod !== FORBIDDEN) return pod;
    return svc === FORBIDDEN || pod === FORBIDDEN ? 'unknown' : null;
  }

  async #query(kind: 'service' | 'pod', path: string): Promise<Found[] | typeof FORBIDDEN> {
    try {
      return (await listAll(this.#client, path, projectOwner(kind), { timeoutMs: API_LOOKUP_TIMEOUT_MS })).items;
    } catch (err) {
      if (err instanceof KubesocksError && err.code === 'FORBIDDEN') return FORBIDDEN;
      throw err;
    }
  }

  async #findService(ip: string): Promise<IPOwner | null | typeof FORBIDDEN> {
    if (!this.#noServiceSelector) {
      try {
        const found = await this.#query('service', `/api/v1/services?fieldSelector=${encodeURIComponent(`spec.clusterIP=${ip}`)}`);
        if (found === FORBIDDEN) return FORBIDDEN;
        const hit = found.find((s) => s.ips.includes(ip)) ?? found[0];
        return hit ? { kind: 'service', namespace: hit.namespace, name: hit.name } : null;
      } catch (err) {
        // Older API servers: "field label not supported: spec.clusterIP".
        if (!(err instanceof KubesocksError && /field label not supported/.test(err.message))) throw err;
        this.#noServiceSelector = true;
      }
    }
    if (!this.#serviceMap || Date.now() - this.#serviceMap.at >= this.#ttlMs) {
      const all = await this.#query('service', '/api/v1/services');
      if (all === FORBIDDEN) return FORBIDDEN;
      const map = new Map<string, IPOwner>();
      for (const s of all) for (const a of s.ips) map.set(a, { kind: 'service', namespace: s.namespace, name: s.name });
      this.#serviceMap = { map, at: Date.now() };
    }
    return this.#serviceMap.map.get(ip) ?? null;
  }

  async #findPod(ip: string): Promise<IPOwner | null | typeof FORBIDDEN> {
    const found = await this.#query('pod', `/api/v1/pods?fieldSelector=${encodeURIComponent(`status.podIP=${ip}`)}`);
    if (found === FORBIDDEN) return FORBIDDEN;
    // Pod IPs are reused: a Running pod beats a finished one that held the same IP.
    const hit = found.find((p) => p.running) ?? found[0];
    return hit ? { kind: 'pod', namespace: hit.namespace, name: hit.name } : null;
  }

  /** Forgets every answer (also when the cluster behind the client changed); lookups after it ask again. */
  close(): void {
    this.#answers.clear();
    this.#serviceMap = null;
  }
}
