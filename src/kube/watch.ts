/**
 * List + watch of one collection, kept in memory as compact projections.
 *
 * Why not client-node's informer (`makeInformer`, dist/cache.js + watch.js
 * in 1.4.0): after any error other than 410 its `doneHandler` calls the
 * error callbacks and returns without restarting, so every user must
 * re-`start()` it by hand; a non-200 watch answer becomes
 * `new Error(statusText)` with the Status body (the RBAC message a user
 * needs) dropped; watch `ERROR` events other than 410 are silently ignored;
 * it keeps every full object (a 10,000-service namespace would hold all of
 * them); and it builds a new https.Agent for every watch request. This one
 * restarts with backoff, stops only on 403 (reported as 'forbidden'), keeps
 * the server's messages, and stores what `project` keeps.
 *
 * Behaviour follows client-go's reflector: list (paginated), then watch from
 * the list's resourceVersion with bookmarks; a clean end of the watch
 * re-watches from the last resourceVersion; 410 Gone (as a response or as
 * an ERROR event) relists; other watch ERROR events relist; network errors
 * re-watch from the last resourceVersion. The first retry after a failure
 * is immediate (a cut stream is routine); repeated failures back off. When
 * the kubeconfig points the client elsewhere (a new server, CA or
 * credentials), the request in flight is dropped and it relists at once: a
 * resourceVersion means nothing to another server. The items listed before
 * stay readable until the new list replaces them.
 */
import { EventEmitter } from 'node:events';
import type * as http from 'node:http';
import { debuglog } from 'node:util';
import { KubesocksError } from '../errors.js';
import { listAll, request, statusError, type Reconfiguration, type RequestSource } from './api.js';
import { KubeApiError, type KubeStatus } from './responses.js';
import { API_GET_TIMEOUT_MS, WATCH_MAX_BACKOFF_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:kube');

export interface ObjectWithMeta {
  metadata?: { name?: string; resourceVersion?: string };
}

export interface ListWatchOptions<T> {
  /** First retry delay after an error. Default 500 ms; doubles up to maxBackoffMs, with jitter. */
  backoffMs?: number;
  /** Default 30 s. */
  maxBackoffMs?: number;
  /**
   * Keep only what is needed of each object (the default keeps the whole
   * object). Must keep `metadata.name`. Return null to ignore an object.
   */
  project?: (raw: unknown) => T | null;
  /** `labelSelector` for both list and watch. */
  labelSelector?: string;
  /** List page size (`limit`). Default 500, like client-go's pager. */
  pageSize?: number;
  /** Deadline for each list request. Default 60 s. */
  listTimeoutMs?: number;
}

interface WatchEvent {
  type?: string;
  object?: { metadata?: { name?: string; resourceVersion?: string } } & KubeStatus;
}

/**
 * Events: `synced` (after each list), `add`(obj), `update`(obj, old),
 * `delete`(obj), `error`(KubesocksError; it keeps retrying),
 * `forbidden`(KubesocksError; 403 — it has stopped), `stop` (stop() was called).
 */
export class ListWatch<T extends ObjectWithMeta> extends EventEmitter {
  readonly #store = new Map<string, T>();
  #rv = '';
  #running = false;
  #ended = false;
  #abort: AbortController | null = null;
  /** When the current watch request was answered (0: not yet). */
  #watchAnsweredAt = 0;
  #sleepTimer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;
  #synced = false;
  #forbidden: KubesocksError | undefined;
  /** Set when the client was reconfigured: the next round relists. */
  #relistRequested = false;
  #stopListening: (() => void) | undefined;
  /** The last error seen since the last successful list or watch event, if any. */
  lastError: KubesocksError | undefined;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #project: (raw: unknown) => T | null;

  readonly #client: RequestSource;
  readonly #opts: ListWatchOptions<T>;

  constructor(client: RequestSource, readonly path: string, opts: ListWatchOptions<T> = {}) {
    super();
    this.#client = client;
    this.#opts = opts;
    // Every lookup waiting for the first list listens here until it is in;
    // a burst of them (a browser opening 20 resources) is not a leak.
    this.setMaxListeners(0);
    this.#backoffMs = opts.backoffMs ?? 500;
    this.#maxBackoffMs = opts.maxBackoffMs ?? WATCH_MAX_BACKOFF_MS;
    this.#project = opts.project ?? ((raw) => raw as T);
  }

  /** True once the first list has completed (stays true across relists, not across a change of cluster). */
  get synced(): boolean {
    return this.#synced;
  }

  /** Set when the API server answered 403: the watch has stopped for good. */
  get forbidden(): KubesocksError | undefined {
    return this.#forbidden;
  }

  /** True between start() and stop() (or a 403). */
  get active(): boolean {
    return this.#running;
  }

  /** Starts listing and watching. A ListWatch runs once: start() after stop() or a 403 does nothing. */
  start(): void {
    if (this.#running || this.#ended) return;
    this.#running = true;
    this.#stopListening = this.#client.onReconfigured?.((change) => this.#reconfigured(change));
    void this.#run();
  }

  /** Stops for good: aborts the request in flight and any retry wait. Items stay readable. Emits `stop`. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#ended = true;
    this.#stopListening?.();
    this.#abort?.abort(new KubesocksError('CLOSED', 'watch stopped'));
    if (this.#sleepTimer) clearTimeout(this.#sleepTimer);
    this.#wake?.();
    this.emit('stop');
  }

  /**
   * The client now talks to another server or with other credentials:
   * relist there at once. When it may be another cluster, `synced` is false
   * until that list is in, so lookups wait for it instead of sending sockets
   * to pods of the old cluster; the items stay readable meanwhile.
   */
  #reconfigured(change: Reconfiguration): void {
    if (!this.#running) return;
    if (!change.sameCluster) this.#synced = false;
    this.#relistRequested = true;
    this.#abort?.abort(new KubesocksError('CLOSED', 'the kubeconfig changed'));
    if (this.#sleepTimer) clearTimeout(this.#sleepTimer);
    this.#wake?.();
  }

  items(): T[] {
    return [...this.#store.values()];
  }

  get(name: string): T | undefined {
    return this.#store.get(name);
  }

  get size(): number {
    return this.#store.size;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let gone = 0;
    let relist = true;
    while (this.#running) {
      if (this.#relistRequested) {
        this.#relistRequested = false;
        relist = true;
        failures = 0;
        gone = 0;
      }
      try {
        if (relist || !this.#rv) {
          await this.#list();
          relist = false;
          failures = 0;
          gone = 0;
        }
        const started = Date.now();
        this.#watchAnsweredAt = 0;
        const events = await this.#watchOnce();
        // A watch that ends at once without news, over and over, must not spin.
        if (events === 0 && Date.now() - started < 1000) {
          failures++;
          await this.#sleep(this.#delay(failures));
        } else {
          failures = 0;
        }
      } catch (err) {
        if (!this.#running) return;
        // Dropped for a reconfiguration: not a failure, the loop relists.
        if (this.#relistRequested) continue;
        // A watch that served for a while and then broke is a cut, not one
        // more failure in a row: the count starts again.
        const servedMs = this.#watchAnsweredAt ? Date.now() - this.#watchAnsweredAt : 0;
        this.#watchAnsweredAt = 0; // a failing relist after it must not count as served
        if (servedMs >= 1000) failures = 0;
        const e = err instanceof KubesocksError ? err : new KubesocksError('API_UNREACHABLE', String(err), { cause: err });
        if (e instanceof KubeApiError && e.status === 410) {
          debug('%s: resourceVersion %s expired, relisting', this.path, this.#rv);
          relist = true;
          gone++;
          // The first 410 relists at once; repeated ones back off.
          if (gone > 1) await this.#sleep(this.#delay(gone - 1));
          continue;
        }
        if (e.code === 'FORBIDDEN') {
          debug('%s: forbidden, stopping: %s', this.path, e.message);
          this.#running = false;
          this.#ended = true;
          this.#stopListening?.();
          this.lastError = e;
          this.#forbidden = e;
          this.emit('forbidden', e);
          return;
        }
        this.lastError = e;
        // A watch ERROR event (not 410) means the stream state is unknown: relist.
        if (e instanceof KubeApiError && e.fromWatchEvent) relist = true;
        failures++;
        // A watch that was working and got cut is retried at once (a stream
        // closing is routine); only failing again backs off.
        const wait = failures === 1 ? 0 : this.#delay(failures - 1);
        debug('%s: %s (retry in %d ms)', this.path, e.message, wait);
        if (this.listenerCount('error') > 0) this.emit('error', e);
        await this.#sleep(wait);
      }
    }
  }

  #delay(failures: number): number {
    const base = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** Math.max(0, failures - 1));
    // ±20 % jitter so a restarted API server is not hit by every watch at once.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = null;
        resolve();
      };
      this.#sleepTimer = setTimeout(() => {
        this.#sleepTimer = null;
        this.#wake?.();
      }, ms);
    });
  }

  #query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.#opts.labelSelector) q.set('labelSelector', this.#opts.labelSelector);
    const s = q.toString();
    return s ? `${this.path}?${s}` : this.path;
  }

  async #list(): Promise<void> {
    const ac = new AbortController();
    this.#abort = ac;
    const fresh = new Map<string, T>();
    const listed = await listAll(this.#client, this.#query({}), this.#project, {
      signal: ac.signal,
      pageSize: this.#opts.pageSize ?? 500,
      timeoutMs: this.#opts.listTimeoutMs ?? API_GET_TIMEOUT_MS,
    });
    for (const obj of listed.items) {
      const name = obj.metadata?.name;
      if (name !== undefined) fresh.set(name, obj);
    }
    const rv = listed.resourceVersion;
    if (!this.#running) return;

    // Replace the store, telling listeners what changed since the last list.
    for (const [name, old] of this.#store) {
      if (!fresh.has(name)) {
        this.#store.delete(name);
        this.emit('delete', old);
      }
    }
    for (const [name, obj] of fresh) {
      const old = this.#store.get(name);
      this.#store.set(name, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion || obj.metadata?.resourceVersion === undefined) {
        this.emit('update', obj, old);
      }
    }
    this.#rv = rv;
    this.#synced = true;
    this.lastError = undefined;
    debug('%s: listed %d objects at resourceVersion %s', this.path, fresh.size, rv);
    this.emit('synced');
  }

  /** One watch request; resolves with the number of events when the server ends it cleanly. */
  async #watchOnce(): Promise<number> {
    const ac = new AbortController();
    this.#abort = ac;
    // Like client-go: a random server-side timeout between 5 and 10 minutes,
    // so watches do not all reconnect together.
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    const path = this.#query({
      watch: '1',
      resourceVersion: this.#rv,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    const res = await request(this.#client, 'GET', path, { signal: ac.signal });
    this.#watchAnsweredAt = Date.now();
    return this.#consume(res, ac, (timeoutSeconds + 30) * 1000);
  }

  #consume(res: http.IncomingMessage, ac: AbortController, idleMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let buffered = '';
      let count = 0;
      let failed: KubesocksError | null = null;
      // A peer that vanished without a FIN sends nothing, not even bookmarks:
      // give up after the server-side timeout plus a margin.
      let idle = setTimeout(onIdle, idleMs);
      function onIdle(): void {
        res.destroy(new KubesocksError('TIMEOUT', 'the watch went silent'));
      }
      const fail = (e: KubesocksError): void => {
        if (!failed) failed = e;
        res.destroy();
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        clearTimeout(idle);
        idle = setTimeout(onIdle, idleMs);
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0 && !failed) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          let ev: WatchEvent;
          try {
            ev = JSON.parse(line) as WatchEvent;
          } catch {
            fail(new KubesocksError('API_UNREACHABLE', `invalid watch event from ${this.path}`));
            return;
          }
          const err = this.#apply(ev);
          if (err) {
            fail(err);
            return;
          }
          count++;
        }
      });
      res.on('close', () => {
        clearTimeout(idle);
        if (failed) reject(failed);
        else if (ac.signal.aborted) reject(new KubesocksError('CLOSED', 'watch stopped'));
        else if (!res.complete) reject(new KubesocksError('API_UNREACHABLE', `the watch of ${this.path} broke`));
        else resolve(count);
      });
      res.on('error', (err) => {
        if (!failed) {
          failed = err instanceof KubesocksError ? err : new KubesocksError('API_UNREACHABLE', `the watch of ${this.path} broke: ${err.message}`, { cause: err });
        }
      });
    });
  }

  /** Applies one watch event; returns an error to end the watch with. */
  #apply(ev: WatchEvent): KubesocksError | null {
    const obj = ev.object;
    if (ev.type === 'ERROR') {
      const status = obj ?? {};
      const code = status.code ?? 500;
      return statusError(this.#client, code, JSON.stringify({ kind: 'Status', ...status }), { method: 'WATCH', path: this.path, fromWatchEvent: true });
    }
    const rv = obj?.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      if (rv) this.#rv = rv;
      return null;
    }
    const name = obj?.metadata?.name;
    if (!obj || name === undefined) return null;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
      const p = this.#project(obj);
      if (p) {
        const old = this.#store.get(name);
        this.#store.set(name, p);
        if (old) this.emit('update', p, old);
        else this.emit('add', p);
      }
    } else if (ev.type === 'DELETED') {
      const old = this.#store.get(name);
      if (old) {
        this.#store.delete(name);
        this.emit('delete', old);
      }
    }
    if (rv) this.#rv = rv;
    this.lastError = undefined;
    return null;
  }
}

