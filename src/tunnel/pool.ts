/**
 * The pool of SPDY connections, keyed by pod. Connections are dialled lazily;
 * concurrent first uses share one upgrade. Each connection carries at most
 * `maxPairsPerConnection` pairs: spdystream serves a connection's frames with
 * five workers keyed by stream id and blocks a worker until the pod side
 * reads, so one slow socket can stall its neighbours; beyond the cap another
 * connection to the same pod spreads the load.
 */
import { debuglog } from 'node:util';
import { untilAborted } from '../net/abort.js';
import { KubesocksError } from '../errors.js';
import { Observer, type PoolPod } from '../observe/observer.js';
import type { ReadBudget } from '../spdy/read-budget.js';
import { DEFAULT_STREAM_BUFFER_BYTES, PodConnection } from './pod-connection.js';
import { DEFAULT_CONFIRM_MS, type PortForwardStream } from './pair.js';
import { TransportSelector, type Transport, type TransportChoice } from './transport.js';
import type { UpgradeCredentials } from './upgrade.js';
import { PING_INTERVAL_MS, PING_TIMEOUT_MS, POOL_HOUSEKEEPING_MAX_INTERVAL_MS, POOL_IDLE_TIMEOUT_MS, POOL_SURPLUS_IDLE_TIMEOUT_MS, UPGRADE_TIMEOUT_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:tunnel');

export interface TunnelPoolOptions {
  /** Stream pairs per SPDY connection before another connection is opened. Default 100. */
  maxPairsPerConnection?: number;
  /** Connections per pod at most; more are opened only when the others are full or held back by a slow reader. Default 8. */
  maxConnectionsPerPod?: number;
  /** Close a pod's last connection after it has carried no pair for this long (ms). Default 5 minutes. */
  idleTimeoutMs?: number;
  /**
   * Close a pod's extra connections (opened past a full or held-back one)
   * after this long without a pair (ms), so a burst does not leave them
   * behind for the full idle timeout. Default 10 s.
   */
  surplusIdleTimeoutMs?: number;
  /** PING interval (ms). Default 5 s, as client-go. */
  pingIntervalMs?: number;
  /** A PING unanswered this long ends the connection (ms). Default 15 s. */
  pingTimeoutMs?: number;
  /** Silence after the kubelet's reply that counts as connected (ms). Default 20. */
  confirmMs?: number;
  /** Deadline of one upgrade (ms). Default 30 s. */
  upgradeTimeoutMs?: number;
  /** Where upgrades, keepalive failures and broken connections are recorded. Default: one of its own. */
  observer?: Observer;
  /** The kubeconfig context these credentials belong to, for the observer's per-pod rows. Default ''. */
  context?: string;
  /** Unread bytes one socket may hold before its connection stops reading. Default 4 MiB. */
  streamBufferBytes?: number;
  /** Cap on unread bytes over all sockets. Default: one budget of 64 MiB for the whole process. */
  readBudget?: ReadBudget;
  /** SPDY upgrade, WebSocket tunnel, or `auto` (WebSocket first, SPDY on an upgrade failure; see transport.ts). Default `auto`. */
  transport?: TransportChoice;
}

export interface PoolStats {
  connections: number;
  pairs: number;
  upgrades: number;
  /** Connections whose reading a paused client holds back (their other sockets wait, new ones go elsewhere). */
  stalled: number;
  /** Connections opened so far, by transport. */
  transports: Record<Transport, number>;
}

interface PodEntry {
  connections: PodConnection[];
  /** An upgrade under way, shared by everyone who needs a new connection. */
  dialing: Promise<PodConnection> | undefined;
}

export class TunnelPool {
  readonly #credentials: UpgradeCredentials;
  readonly #options: Required<Omit<TunnelPoolOptions, 'observer' | 'context' | 'readBudget' | 'transport'>> & { readBudget: ReadBudget | undefined };
  readonly #observer: Observer;
  readonly #context: string;
  readonly #transports: TransportSelector;
  /** Which transport each connection came over, for the status page. */
  readonly #transportOf = new WeakMap<PodConnection, Transport>();
  readonly #pods = new Map<string, PodEntry>();
  readonly #idleTimer: NodeJS.Timeout;
  #upgrades = 0;
  #closed = false;
  /** Counts retire() calls: a connection whose upgrade began before the last one is retired as it arrives. */
  #generation = 0;

  constructor(credentials: UpgradeCredentials, options: TunnelPoolOptions = {}) {
    this.#credentials = credentials;
    this.#observer = options.observer ?? new Observer();
    this.#context = options.context ?? '';
    this.#options = {
      maxPairsPerConnection: options.maxPairsPerConnection ?? 100,
      maxConnectionsPerPod: options.maxConnectionsPerPod ?? 8,
      idleTimeoutMs: options.idleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS,
      surplusIdleTimeoutMs: Math.min(options.surplusIdleTimeoutMs ?? POOL_SURPLUS_IDLE_TIMEOUT_MS, options.idleTimeoutMs ?? Infinity),
      pingIntervalMs: options.pingIntervalMs ?? PING_INTERVAL_MS,
      pingTimeoutMs: options.pingTimeoutMs ?? PING_TIMEOUT_MS,
      confirmMs: options.confirmMs ?? DEFAULT_CONFIRM_MS,
      upgradeTimeoutMs: options.upgradeTimeoutMs ?? UPGRADE_TIMEOUT_MS,
      streamBufferBytes: options.streamBufferBytes ?? DEFAULT_STREAM_BUFFER_BYTES,
      readBudget: options.readBudget,
    };
    this.#transports = new TransportSelector(options.transport ?? 'auto');
    const shortest = Math.min(this.#options.idleTimeoutMs, this.#options.surplusIdleTimeoutMs);
    this.#idleTimer = setInterval(() => this.#closeIdle(), Math.max(100, Math.min(shortest / 2, POOL_HOUSEKEEPING_MAX_INTERVAL_MS)));
    this.#idleTimer.unref();
  }

  /** Opens a stream pair to `port` of the pod, dialling a connection if needed. */
  async open(namespace: string, pod: string, port: number, signal?: AbortSignal): Promise<PortForwardStream> {
    for (;;) {
      if (this.#closed) throw new KubesocksError('CLOSED', 'the tunnel pool is closed');
      const entry = this.#entry(namespace, pod);
      // Picking and opening happen in one synchronous step, so concurrent
      // callers woken by the same upgrade never overfill a connection.
      const connection = this.#leastLoaded(entry);
      if (connection) return connection.open(port);
      entry.dialing ??= this.#dial(entry, namespace, pod).finally(() => {
        entry.dialing = undefined;
        if (entry.connections.length === 0 && this.#pods.get(`${namespace}/${pod}`) === entry) this.#pods.delete(`${namespace}/${pod}`);
      });
      await untilAborted(entry.dialing, signal, () => new KubesocksError('CLOSED', 'the client went away'));
    }
  }

  stats(): PoolStats {
    let connections = 0;
    let pairs = 0;
    let stalled = 0;
    for (const entry of this.#pods.values()) {
      connections += entry.connections.length;
      for (const connection of entry.connections) {
        pairs += connection.pairs;
        if (connection.stalled) stalled++;
      }
    }
    return { connections, pairs, upgrades: this.#upgrades, stalled, transports: { ...this.#transports.opened } };
  }

  /** Each pod with connections now, for the status page. */
  pods(): PoolPod[] {
    const pods: PoolPod[] = [];
    for (const entry of this.#pods.values()) {
      const first = entry.connections[0];
      if (!first) continue;
      let sockets = 0;
      let openedAt = first.openedAt;
      for (const connection of entry.connections) {
        sockets += connection.pairs;
        openedAt = Math.min(openedAt, connection.openedAt);
      }
      pods.push({ context: this.#context, namespace: first.namespace, pod: first.pod, connections: entry.connections.length, sockets, openedAt, transport: this.#transportOf.get(first) ?? this.#transports.choice });
    }
    return pods;
  }

  /** Ends every connection of one pod (e.g. the pod was deleted). */
  dropPod(namespace: string, pod: string, reason: KubesocksError): void {
    const entry = this.#pods.get(`${namespace}/${pod}`);
    for (const connection of entry?.connections ?? []) connection.close(reason);
  }

  /**
   * Every connection made so far takes no new socket: the sockets on it
   * carry on, and it closes when its last one ends. Upgrades under way are
   * retired as they complete. New sockets get new connections, made with
   * the credentials' settings from now on. For when the kubeconfig changed
   * (another server, CA or credentials), or the API server stopped
   * accepting the credentials.
   */
  retire(reason: KubesocksError): void {
    this.#generation++;
    this.#retireConnections(reason);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#idleTimer);
    const reason = new KubesocksError('CLOSED', 'kubesocks is shutting down');
    for (const entry of this.#pods.values()) for (const connection of [...entry.connections]) connection.close(reason);
    this.#pods.clear();
  }

  #entry(namespace: string, pod: string): PodEntry {
    const key = `${namespace}/${pod}`;
    let entry = this.#pods.get(key);
    if (!entry) {
      entry = { connections: [], dialing: undefined };
      this.#pods.set(key, entry);
    }
    return entry;
  }

  /**
   * The connection a new pair goes on: the least loaded with room, avoiding
   * one that a slow reader holds back (spdystream has no per-stream flow
   * control, so a paused connection would stall the new socket too). While
   * fewer than maxConnectionsPerPod exist, a stalled one is passed over and
   * another connection is dialled instead.
   */
  #leastLoaded(entry: PodEntry): PodConnection | undefined {
    let best: PodConnection | undefined;
    let bestStalled: PodConnection | undefined;
    for (const connection of entry.connections) {
      if (!connection.usable || connection.pairs >= this.#options.maxPairsPerConnection) continue;
      if (connection.stalled) {
        if (!bestStalled || connection.pairs < bestStalled.pairs) bestStalled = connection;
      } else if (!best || connection.pairs < best.pairs) {
        best = connection;
      }
    }
    if (best) return best;
    return entry.connections.length < this.#options.maxConnectionsPerPod ? undefined : bestStalled;
  }

  async #dial(entry: PodEntry, namespace: string, pod: string): Promise<PodConnection> {
    debug('upgrading to pod %s/%s', namespace, pod);
    const generation = this.#generation;
    let socket;
    let transport: Transport;
    try {
      ({ socket, transport } = await this.#transports.open(this.#credentials, { namespace, pod, timeoutMs: this.#options.upgradeTimeoutMs }));
    } catch (error) {
      if (error instanceof KubesocksError) {
        this.#observer.upgraded(this.#transports.lastAttempted, error);
        this.#observer.podFailed({ context: this.#context, namespace, pod }, error);
        if (error.code !== 'CLOSED') this.#observer.apiResult(this.#context, error);
      }
      if (error instanceof KubesocksError && error.code === 'UNAUTHORIZED') this.#retireAll(error);
      throw error;
    }
    this.#upgrades++;
    this.#observer.upgraded(transport);
    this.#observer.apiResult(this.#context);
    const connection = new PodConnection(socket, namespace, pod, this.#options);
    this.#transportOf.set(connection, transport);
    if (this.#closed) {
      connection.close();
      throw new KubesocksError('CLOSED', 'the tunnel pool is closed');
    }
    entry.connections.push(connection);
    connection.session.once('close', (error) => {
      debug('connection to %s/%s closed: %s', namespace, pod, error?.message ?? 'normally');
      if (connection.session.keepaliveFailed) this.#observer.keepaliveFailed();
      if (error && error.code !== 'CLOSED') this.#observer.podFailed({ context: this.#context, namespace, pod }, error);
      entry.connections = entry.connections.filter((c) => c !== connection);
      if (entry.connections.length === 0 && !entry.dialing && this.#pods.get(`${namespace}/${pod}`) === entry) {
        this.#pods.delete(`${namespace}/${pod}`);
      }
    });
    // Upgraded with what was in use before a retire(): it closes at once, and
    // the caller, finding no usable connection, upgrades again.
    if (generation !== this.#generation) connection.retire(new KubesocksError('CLOSED', 'connection retired: it was made with the previous configuration'));
    return connection;
  }

  /**
   * The API server rejected the credentials (after one refresh): every
   * pooled connection was authenticated with credentials that no longer
   * hold, so none takes a new socket; the sockets already on them carry on.
   */
  #retireAll(reason: KubesocksError): void {
    this.#retireConnections(new KubesocksError('UNAUTHORIZED', `connection retired: ${reason.message}`));
  }

  #retireConnections(reason: KubesocksError): void {
    for (const entry of this.#pods.values()) for (const connection of [...entry.connections]) connection.retire(reason);
  }

  /**
   * Idle connections close; of a pod's connections the most recently used
   * one is kept for the long idle timeout (it is what the next socket
   * reuses), the others only for the short surplus one.
   */
  #closeIdle(): void {
    for (const entry of this.#pods.values()) {
      const byRecentUse = [...entry.connections].sort((a, b) => a.session.idleMs - b.session.idleMs);
      byRecentUse.forEach((connection, index) => {
        const limit = index === 0 ? this.#options.idleTimeoutMs : this.#options.surplusIdleTimeoutMs;
        if (connection.pairs === 0 && connection.session.idleMs >= limit) {
          connection.close(new KubesocksError('CLOSED', 'idle connection closed'));
        }
      });
    }
  }
}
