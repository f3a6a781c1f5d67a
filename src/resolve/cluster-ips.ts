/**
 * Who owns an IP across the whole cluster: for IP literals that no watched
 * namespace knows. Services (by ClusterIP) and pods (by pod IP) are listed
 * across all namespaces once, kept for `ttlMs` as a bare IP → owner map, and
 * listed again on a miss when the map is older than `missRefreshMs`. The map
 * is dropped when unused for a few TTLs, so a big cluster's pod list does not
 * stay in memory for one IP literal typed an hour ago.
 */
import { KubesocksError } from '../errors.js';
import { listAll, type RequestSource } from '../kube/api.js';
import { canonicalIP } from './names.js';
import { raceSignal } from './cache.js';

export interface IPOwner {
  kind: 'service' | 'pod';
  namespace: string;
  name: string;
}

interface Index {
  owners: Map<string, IPOwner>;
  /** Which of the two lists were forbidden. */
  servicesForbidden: boolean;
  podsForbidden: boolean;
  fetchedAt: number;
}

interface Named {
  namespace: string;
  name: string;
  ips: string[];
  running: boolean;
}

function projectOwner(kind: 'service' | 'pod') {
  return (raw: unknown): Named | null => {
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
    return canon.length > 0 ? { namespace, name, ips: canon, running: o.status?.phase === 'Running' } : null;
  };
}

export class ClusterIPIndex {
  private index: Index | null = null;
  private inflight: Promise<Index> | null = null;
  private dropTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: RequestSource,
    private readonly ttlMs = 30_000,
    private readonly missRefreshMs = 5_000,
  ) {}

  private async build(): Promise<Index> {
    const owners = new Map<string, IPOwner>();
    const list = async (kind: 'service' | 'pod', path: string): Promise<boolean> => {
      try {
        const { items } = await listAll(this.client, path, projectOwner(kind));
        for (const it of items) {
          for (const ip of it.ips) {
            // Pod IPs are reused: a Running pod beats a finished one holding the same IP.
            const prev = owners.get(ip);
            if (prev && prev.kind === 'service') continue;
            if (prev && kind === 'pod' && !it.running) continue;
            owners.set(ip, { kind, namespace: it.namespace, name: it.name });
          }
        }
        return false;
      } catch (err) {
        if (err instanceof KubesocksError && err.code === 'FORBIDDEN') return true;
        throw err;
      }
    };
    const servicesForbidden = await list('service', '/api/v1/services');
    const podsForbidden = await list('pod', '/api/v1/pods');
    return { owners, servicesForbidden, podsForbidden, fetchedAt: Date.now() };
  }

  private refresh(): Promise<Index> {
    this.inflight ??= this.build()
      .then((idx) => {
        this.index = idx;
        if (this.dropTimer) clearTimeout(this.dropTimer);
        this.dropTimer = setTimeout(() => {
          this.index = null;
        }, this.ttlMs * 4);
        this.dropTimer.unref();
        return idx;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  /**
   * The owner of `ip`; null if nobody in the cluster has it; 'unknown' when
   * a list was forbidden and the IP was not in what could be listed.
   */
  async lookup(ip: string, signal?: AbortSignal): Promise<IPOwner | null | 'unknown'> {
    const now = Date.now();
    let idx = this.index && now - this.index.fetchedAt < this.ttlMs ? this.index : await raceSignal(this.refresh(), signal);
    if (!idx.owners.has(ip) && Date.now() - idx.fetchedAt >= this.missRefreshMs) idx = await raceSignal(this.refresh(), signal);
    const owner = idx.owners.get(ip);
    if (owner) return owner;
    return idx.servicesForbidden || idx.podsForbidden ? 'unknown' : null;
  }

  close(): void {
    if (this.dropTimer) clearTimeout(this.dropTimer);
    this.index = null;
  }
}
