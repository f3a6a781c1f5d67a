/**
 * Which namespaces exist — to tell `web.demo` (service web in namespace demo)
 * from `example.com` (the internet), and for the PAC file.
 *
 * The namespace list is cached for `ttlMs`; a name missing from a list older
 * than `missRefreshMs` triggers one fresh list, so a namespace created a
 * moment ago is not mistaken for an internet domain for long. A user who may
 * not list namespaces gets per-name GETs: 200 or 403 (it exists, we just may
 * not read it) → cluster; 404 → not a namespace.
 */
import { LRUCache } from 'lru-cache';
import { KubesocksError } from '../errors.js';
import { getJSON, listAll, type RequestSource } from '../kube/api.js';
import { raceSignal } from './cache.js';

export interface NamespaceDirectoryOptions {
  /** Default 30 s. */
  ttlMs?: number;
  /** Default 5 s. */
  missRefreshMs?: number;
}

function nameOf(raw: unknown): string | null {
  const name = (raw as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  return typeof name === 'string' ? name : null;
}

export class NamespaceDirectory {
  private names: Set<string> | null = null;
  private fetchedAt = 0;
  private inflight: Promise<Set<string> | 'forbidden'> | null = null;
  private forbiddenAt = 0;
  private readonly perName: LRUCache<string, Promise<boolean>>;
  /** Namespaces known to exist without a list (for namespaces() when listing is forbidden). */
  private readonly seen = new LRUCache<string, true>({ max: 1_000 });
  private readonly ttlMs: number;
  private readonly missRefreshMs: number;

  constructor(
    private readonly client: RequestSource,
    opts: NamespaceDirectoryOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.missRefreshMs = opts.missRefreshMs ?? 5_000;
    this.perName = new LRUCache<string, Promise<boolean>>({ max: 1_000, ttl: Math.max(1, this.ttlMs) });
  }

  private refresh(): Promise<Set<string> | 'forbidden'> {
    this.inflight ??= listAll(this.client, '/api/v1/namespaces', nameOf)
      .then(
        ({ items }) => {
          this.names = new Set(items);
          this.fetchedAt = Date.now();
          return this.names;
        },
        (err: unknown) => {
          if (err instanceof KubesocksError && err.code === 'FORBIDDEN') {
            this.forbiddenAt = Date.now();
            return 'forbidden' as const;
          }
          throw err;
        },
      )
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  /** The cached list if fresh, else a new one; 'forbidden' when listing is not allowed. */
  private async current(maxAgeMs: number): Promise<Set<string> | 'forbidden'> {
    const now = Date.now();
    // Permissions rarely change: after a 403, try listing again only after the TTL.
    if (this.forbiddenAt && now - this.forbiddenAt < this.ttlMs) return 'forbidden';
    if (this.names && now - this.fetchedAt < maxAgeMs) return this.names;
    return this.refresh();
  }

  /** Does namespace `ns` exist? Rejects on API failures (other than 403). */
  async exists(ns: string, signal?: AbortSignal): Promise<boolean> {
    let list = await raceSignal(this.current(this.ttlMs), signal);
    if (list !== 'forbidden' && !list.has(ns) && Date.now() - this.fetchedAt >= this.missRefreshMs) {
      list = await raceSignal(this.current(this.missRefreshMs), signal);
    }
    if (list !== 'forbidden') {
      if (list.has(ns)) this.seen.set(ns, true);
      return list.has(ns);
    }
    let p = this.perName.get(ns);
    if (!p) {
      p = getJSON<unknown>(this.client, `/api/v1/namespaces/${encodeURIComponent(ns)}`, undefined, 30_000).then(
        () => true,
        (err: unknown) => {
          if (err instanceof KubesocksError) {
            if (err.code === 'FORBIDDEN') return true;
            if (err.code === 'NOT_FOUND') return false;
          }
          throw err;
        },
      );
      this.perName.set(ns, p);
      p.catch(() => {
        if (this.perName.get(ns) === p) this.perName.delete(ns);
      });
    }
    const exists = await raceSignal(p, signal);
    if (exists) this.seen.set(ns, true);
    return exists;
  }

  /** Remember a namespace seen to exist some other way (e.g. its objects were listed). */
  noteSeen(ns: string): void {
    this.seen.set(ns, true);
  }

  /**
   * Namespaces that exist (sorted): the list, or when that is forbidden,
   * those seen so far. Never rejects: when the API server cannot be reached,
   * the last list (or what was seen) is the best answer for a PAC file.
   */
  async list(): Promise<string[]> {
    let list: Set<string> | 'forbidden';
    try {
      list = await this.current(this.ttlMs);
    } catch {
      list = this.names ?? 'forbidden';
    }
    if (list !== 'forbidden') return [...list].sort();
    return [...this.seen.keys()].sort();
  }
}
