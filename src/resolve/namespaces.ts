/**
 * Which namespaces exist — to tell `web.demo` (service web in namespace demo)
 * from `example.com` (the internet), and for the PAC file.
 *
 * The namespace list is cached for `ttlMs`. A name missing from a list older
 * than `missRefreshMs` triggers one fresh list; missing from a newer list, a
 * GET of that one name, so a namespace created a moment ago is found at
 * once (a "no" is kept for `missRefreshMs`, so internet domains cost one
 * small GET per domain every few seconds at most). A user who may not list
 * namespaces gets the per-name GETs only: 200 or 403 (it exists, we just
 * may not read it) → cluster; 404 → not a namespace.
 */
import { LRUCache } from 'lru-cache';
import { KubesocksError } from '../errors.js';
import { getJSON, listAll, type RequestSource } from '../kube/api.js';
import { abortError } from '../kube/responses.js';
import { untilAborted } from '../net/abort.js';
import { API_LOOKUP_TIMEOUT_MS } from '../net/timeouts.js';

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
  #names: Set<string> | null = null;
  #fetchedAt = 0;
  #inflight: Promise<Set<string> | 'forbidden'> | null = null;
  #forbiddenAt = 0;
  readonly #perName: LRUCache<string, Promise<boolean>>;
  /** Namespaces known to exist without a list (for namespaces() when listing is forbidden). */
  readonly #seen = new LRUCache<string, true>({ max: 1_000 });
  readonly #ttlMs: number;
  readonly #missRefreshMs: number;

  readonly #client: RequestSource;

  constructor(client: RequestSource, opts: NamespaceDirectoryOptions = {}) {
    this.#client = client;
    this.#ttlMs = opts.ttlMs ?? 30_000;
    this.#missRefreshMs = opts.missRefreshMs ?? 5_000;
    this.#perName = new LRUCache<string, Promise<boolean>>({ max: 1_000, ttl: Math.max(1, this.#ttlMs) });
  }

  #refresh(): Promise<Set<string> | 'forbidden'> {
    this.#inflight ??= listAll(this.#client, '/api/v1/namespaces', nameOf)
      .then(
        ({ items }) => {
          this.#names = new Set(items);
          this.#fetchedAt = Date.now();
          return this.#names;
        },
        (err: unknown) => {
          if (err instanceof KubesocksError && err.code === 'FORBIDDEN') {
            this.#forbiddenAt = Date.now();
            return 'forbidden' as const;
          }
          throw err;
        },
      )
      .finally(() => {
        this.#inflight = null;
      });
    return this.#inflight;
  }

  /** The cached list if fresh, else a new one; 'forbidden' when listing is not allowed. */
  async #current(maxAgeMs: number): Promise<Set<string> | 'forbidden'> {
    const now = Date.now();
    // Permissions rarely change: after a 403, try listing again only after the TTL.
    if (this.#forbiddenAt && now - this.#forbiddenAt < this.#ttlMs) return 'forbidden';
    if (this.#names && now - this.#fetchedAt < maxAgeMs) return this.#names;
    return this.#refresh();
  }

  /** Does namespace `ns` exist? Rejects on API failures (other than 403). */
  async exists(ns: string, signal?: AbortSignal): Promise<boolean> {
    let list = await untilAborted(this.#current(this.#ttlMs), signal, abortError);
    if (list !== 'forbidden' && !list.has(ns) && Date.now() - this.#fetchedAt >= this.#missRefreshMs) {
      // An old list is refreshed once for every miss; the new one is the answer.
      list = await untilAborted(this.#current(this.#missRefreshMs), signal, abortError);
      if (list !== 'forbidden') return this.#fromList(list, ns);
    }
    if (list !== 'forbidden' && list.has(ns)) return this.#fromList(list, ns);
    // A miss in a recent list may be a namespace created since, so that one
    // name is asked for (a GET, cheap; a "no" is kept missRefreshMs). Without
    // the right to list, these GETs are all there is.
    let p = this.#perName.get(ns);
    if (!p) {
      p = getJSON<unknown>(this.#client, `/api/v1/namespaces/${encodeURIComponent(ns)}`, { timeoutMs: API_LOOKUP_TIMEOUT_MS }).then(
        () => true,
        (err: unknown) => {
          if (err instanceof KubesocksError) {
            if (err.code === 'FORBIDDEN') return true;
            if (err.code === 'NOT_FOUND') return false;
          }
          throw err;
        },
      );
      const asked = p;
      this.#perName.set(ns, asked);
      asked.then(
        (exists) => {
          if (!exists && this.#perName.get(ns) === asked) this.#perName.set(ns, asked, { ttl: Math.max(1, this.#missRefreshMs) });
        },
        () => {
          if (this.#perName.get(ns) === asked) this.#perName.delete(ns);
        },
      );
    }
    const exists = await untilAborted(p, signal, abortError);
    if (exists) this.#seen.set(ns, true);
    return exists;
  }

  #fromList(list: Set<string>, ns: string): boolean {
    if (!list.has(ns)) return false;
    this.#seen.set(ns, true);
    return true;
  }

  /**
   * Without waiting: true/false from the last list (or a recent per-name
   * answer, or a namespace seen), undefined when nothing is known. Used while
   * the API server is unreachable, when waiting on it is not an option.
   */
  knownNow(ns: string): boolean | undefined {
    if (this.#seen.has(ns)) return true;
    if (this.#names) return this.#names.has(ns);
    return undefined;
  }

  /**
   * Namespaces known now (sorted), never waiting: the last list, or those
   * seen. A list older than the TTL is refreshed in the background.
   */
  listNow(): string[] {
    if (!this.#names || Date.now() - this.#fetchedAt >= this.#ttlMs) this.#current(this.#ttlMs).catch(() => {});
    return [...(this.#names ?? this.#seen.keys())].sort();
  }

  /**
   * A new list now (shared with one in flight), whatever the age of the last:
   * a probe of a server that was unreachable, or the first list once it answers.
   * Resolves when it is in; rejects as the list did (403: resolves).
   */
  async refresh(): Promise<void> {
    await this.#refresh();
  }

  /** Remember a namespace seen to exist some other way (e.g. its objects were listed). */
  noteSeen(ns: string): void {
    this.#seen.set(ns, true);
  }

  /**
   * Namespaces that exist (sorted): the list, or when that is forbidden,
   * those seen so far. Never rejects: when the API server cannot be reached,
   * the last list (or what was seen) is the best answer for a PAC file.
   */
  async list(): Promise<string[]> {
    let list: Set<string> | 'forbidden';
    try {
      list = await this.#current(this.#ttlMs);
    } catch {
      list = this.#names ?? 'forbidden';
    }
    if (list !== 'forbidden') return [...list].sort();
    return [...this.#seen.keys()].sort();
  }
}
