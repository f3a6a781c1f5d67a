/**
 * What kubesocks is doing, recorded where it happens and read by the status
 * page, `/status.json` and `/metrics`. It sits in the bottom room so every
 * room can record into it: the proxy (connections, failures, bytes), the
 * dialer (failovers, pod failures), the tunnel pool (upgrades, keepalive
 * failures) and the resolver's watches (relists, API errors). One Observer
 * is made by whoever builds the dialer and handed down (no process-global
 * registry: two proxies in one process keep their own numbers).
 *
 * Cost per proxied socket: one small object in a Set while it is open and a
 * few Map updates when it ends. Bytes are not counted here: an open
 * connection's byte counters belong to its relay and are read on demand.
 */
import { createRequire } from 'node:module';
import type { KubesocksError } from '../errors.js';
import { Counter, Gauge, Histogram, renderMetrics, type AnyMetric } from './metrics.js';
import {
  STATUS_SCHEMA,
  type ContextStatus,
  type FailureStatus,
  type OpenConnectionStatus,
  type PodStatus,
  type StatusError,
  type StatusSnapshot,
} from './status.js';

/** The package version, read once (two levels up from src/observe and dist/observe alike). */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** Failures kept for the page. */
const FAILURES_KEPT = 50;
/** Pods remembered after their last connection closed (their totals and last error). */
const PODS_REMEMBERED = 500;

/** Connect durations (seconds): from a millisecond to the 30 s connect deadline. */
const CONNECT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Byte counters of an open connection, updated by its relay. */
export interface ByteCounts {
  bytesUp: number;
  bytesDown: number;
}

/** A pod a connection goes to. */
export interface PodRef {
  context: string;
  namespace: string;
  pod: string;
}

/** A connection while it is open; `close()` once, when it ends. */
export interface OpenConnection {
  close(): void;
}

/** The end of a proxied connection or request, as the proxy logs it. */
export interface EndedConnection {
  protocol: string;
  client: string;
  target: string | null;
  error?: { code: string; message: string } | undefined;
}

/** What a kubeconfig context is, for the page (the observer adds reachability). */
export interface ContextInfo {
  name: string;
  server: string;
  user: string;
  namespace: string;
  namespaces: string[];
}

/** A pod's pooled port-forward connections now. */
export interface PoolPod extends PodRef {
  connections: number;
  sockets: number;
  /** When the oldest of its open connections was made (epoch ms). */
  openedAt: number;
  transport: string;
}

/** The live state of one cluster-facing part (a dialer), read when a snapshot is taken. */
export interface ClusterView {
  /** The contexts, after checking that their API servers answer (cached by the view). */
  contexts(): Promise<ContextInfo[]>;
  pods(): PoolPod[];
}

interface LiveConnection {
  id: number;
  client: string;
  protocol: string;
  target: string;
  via: string;
  pod: PodRef | undefined;
  startedAt: number;
  counts: ByteCounts;
}

interface PodHistory {
  socketsTotal: number;
  bytesUp: number;
  bytesDown: number;
  lastError: StatusError | null;
}

interface ContextHealth {
  reachable: boolean | null;
  lastError: StatusError | null;
}

const podKey = (ref: PodRef): string => `${ref.context}/${ref.namespace}/${ref.pod}`;
const statusError = (error: { code: string; message: string }, at = Date.now()): StatusError => ({
  time: new Date(at).toISOString(),
  code: error.code,
  message: error.message.split('\n')[0] ?? '',
});

export interface ObserverOptions {
  /** How port-forward connections are made (`spdy`, `websocket`, `auto`), for build info. Default `spdy`. */
  transport?: string;
}

export class Observer {
  readonly startedAt = Date.now();
  transport: string;

  readonly #live = new Set<LiveConnection>();
  #nextId = 1;
  readonly #closedBytes: ByteCounts = { bytesUp: 0, bytesDown: 0 };
  readonly #failures: FailureStatus[] = [];
  readonly #pods = new Map<string, PodHistory>();
  readonly #contexts = new Map<string, ContextHealth>();
  readonly #views = new Set<ClusterView>();
  #upgrades = 0;
  #failovers = 0;
  #keepaliveFailures = 0;
  #watchRelists = 0;

  readonly #connections = new Counter<'protocol' | 'result'>(
    'kubesocks_connections_total',
    'Proxied connections and forwarded HTTP requests that ended or failed, by client protocol and result (ok or error).',
    ['protocol', 'result'],
  );
  readonly #connectDuration = new Histogram<'result'>(
    'kubesocks_connect_duration_seconds',
    'Time from a client naming its target to the target accepting (or the attempt failing).',
    ['result'],
    CONNECT_BUCKETS,
  );
  readonly #upgradesTotal = new Counter<'transport' | 'result'>(
    'kubesocks_upgrades_total',
    'Port-forward connections to pods the API server was asked to upgrade, by transport and result.',
    ['transport', 'result'],
  );
  readonly #failoversTotal = new Counter(
    'kubesocks_failovers_total',
    'Times another pod was tried for a socket: at connect time, or after a refusal before its first byte.',
    [],
  );
  readonly #keepaliveTotal = new Counter(
    'kubesocks_keepalive_failures_total',
    'Port-forward connections closed because a PING went unanswered.',
    [],
  );
  readonly #relistsTotal = new Counter('kubesocks_watch_relists_total', 'Lists of a watched collection after its first (the watch broke or expired).', []);
  readonly #errorsTotal = new Counter<'code'>('kubesocks_errors_total', 'Failures reported to clients and in the log, by kubesocks error code.', ['code']);

  constructor(options: ObserverOptions = {}) {
    this.transport = options.transport ?? 'spdy';
    for (const protocol of ['socks5', 'socks4', 'http-connect', 'http']) {
      for (const result of ['ok', 'error']) this.#connections.init({ protocol, result });
    }
    for (const result of ['ok', 'error']) this.#upgradesTotal.init({ transport: this.transport, result });
    this.#failoversTotal.init({});
    this.#keepaliveTotal.init({});
    this.#relistsTotal.init({});
  }

  /** Starts reading a dialer's contexts and pool; returns the function that stops. */
  addCluster(view: ClusterView): () => void {
    this.#views.add(view);
    return () => this.#views.delete(view);
  }

  // ── the proxy ──

  /** A tunnel or forwarded request is connected and relaying; `counts` are its relay's live counters. */
  opened(c: { client: string; protocol: string; target: string; via: string; pod?: PodRef | undefined; startedAt: number; counts: ByteCounts }): OpenConnection {
    const live: LiveConnection = {
      id: this.#nextId++,
      client: c.client,
      protocol: c.protocol,
      target: c.target,
      via: c.via,
      pod: c.pod,
      startedAt: c.startedAt,
      counts: c.counts,
    };
    this.#live.add(live);
    // Looked up once: the close adds to the same history (even if it was forgotten meanwhile, harmlessly).
    const history = live.pod ? this.#podHistory(live.pod) : undefined;
    if (history) history.socketsTotal++;
    let closed = false;
    return {
      close: () => {
        if (closed) return;
        closed = true;
        this.#live.delete(live);
        const { bytesUp, bytesDown } = live.counts;
        this.#closedBytes.bytesUp += bytesUp;
        this.#closedBytes.bytesDown += bytesDown;
        if (history) {
          history.bytesUp += bytesUp;
          history.bytesDown += bytesDown;
        }
      },
    };
  }

  /** A connection or request ended (the record the -v log prints). */
  ended(record: EndedConnection): void {
    this.#connections.inc({ protocol: record.protocol, result: record.error ? 'error' : 'ok' });
    if (!record.error) return;
    this.#errorsTotal.inc({ code: record.error.code });
    this.#failures.unshift({ ...statusError(record.error), client: record.client, protocol: record.protocol, target: record.target });
    if (this.#failures.length > FAILURES_KEPT) this.#failures.length = FAILURES_KEPT;
  }

  /** How long asking for a target took, and whether it connected. */
  connectTimed(seconds: number, ok: boolean): void {
    this.#connectDuration.observe({ result: ok ? 'ok' : 'error' }, seconds);
  }

  // ── the dialer, the pool, the watches ──

  failover(): void {
    this.#failovers++;
    this.#failoversTotal.inc({});
  }

  /** A pod failed a socket or its connection broke. */
  podFailed(pod: PodRef, error: KubesocksError): void {
    this.#podHistory(pod).lastError = statusError(error);
  }

  upgraded(transport: string, error?: KubesocksError): void {
    this.#upgradesTotal.inc({ transport, result: error ? 'error' : 'ok' });
    if (!error) this.#upgrades++;
  }

  keepaliveFailed(): void {
    this.#keepaliveFailures++;
    this.#keepaliveTotal.inc({});
  }

  watchRelisted(): void {
    this.#watchRelists++;
    this.#relistsTotal.inc({});
  }

  /** The API server of `context` answered (no error) or failed. */
  apiResult(context: string, error?: KubesocksError): void {
    let health = this.#contexts.get(context);
    if (!health) {
      health = { reachable: null, lastError: null };
      this.#contexts.set(context, health);
    }
    if (!error) {
      health.reachable = true;
      return;
    }
    health.lastError = statusError(error);
    // Only failing to get an answer makes it unreachable: refused credentials,
    // RBAC or a watch stream cut midway (routine) all came from a server that answers.
    if (error.code === 'API_UNREACHABLE' || error.code === 'TIMEOUT') health.reachable = false;
    else health.reachable ??= true;
  }

  // ── reading ──

  /** Everything the page and `/status.json` show. */
  async snapshot(proxy: { listen: string; auth: boolean }): Promise<StatusSnapshot> {
    const views = [...this.#views];
    const infos = (await Promise.all(views.map((v) => v.contexts()))).flat();
    const now = Date.now();
    const contexts: ContextStatus[] = infos.map((info) => {
      const health = this.#contexts.get(info.name);
      return { ...info, reachable: health?.reachable ?? null, lastError: health?.lastError ?? null };
    });
    const connections = this.#openConnections(now);
    const pods = this.#podStatuses(views, now);
    const open = this.#openBytes();
    const poolConnections = pods.reduce((n, p) => n + p.connections, 0);
    const failed = [...this.#connectionsByResult('error')].reduce((n, v) => n + v, 0);
    const ended = failed + [...this.#connectionsByResult('ok')].reduce((n, v) => n + v, 0);
    return {
      schema: STATUS_SCHEMA,
      version: VERSION,
      transport: this.transport,
      listen: proxy.listen,
      auth: proxy.auth,
      now: new Date(now).toISOString(),
      startedAt: new Date(this.startedAt).toISOString(),
      contexts,
      pods,
      connections,
      failures: this.#failures.slice(),
      totals: {
        connections: ended + connections.length,
        failed,
        open: connections.length,
        bytesUp: this.#closedBytes.bytesUp + open.bytesUp,
        bytesDown: this.#closedBytes.bytesDown + open.bytesDown,
        upgrades: this.#upgrades,
        poolConnections,
        failovers: this.#failovers,
        keepaliveFailures: this.#keepaliveFailures,
        watchRelists: this.#watchRelists,
      },
    };
  }

  /** The Prometheus text exposition of every metric. */
  metrics(): string {
    return renderMetrics(this.#allMetrics());
  }

  #allMetrics(): AnyMetric[] {
    const buildInfo = new Gauge<'version' | 'transport' | 'nodejs'>(
      'kubesocks_build_info',
      'Always 1; the labels say which kubesocks runs, over which transport, on which Node.js.',
      ['version', 'transport', 'nodejs'],
      () => [[{ version: VERSION, transport: this.transport, nodejs: process.versions.node }, 1]],
    );
    const open = new Gauge<'protocol'>('kubesocks_connections_open', 'Proxied connections and forwarded HTTP requests open now, by client protocol.', ['protocol'], () => {
      const byProtocol = new Map<string, number>([
        ['socks5', 0],
        ['socks4', 0],
        ['http-connect', 0],
        ['http', 0],
      ]);
      for (const live of this.#live) byProtocol.set(live.protocol, (byProtocol.get(live.protocol) ?? 0) + 1);
      return [...byProtocol].map(([protocol, n]) => [{ protocol }, n] as [{ protocol: string }, number]);
    });
    const bytes = new Counter<'direction'>('kubesocks_proxied_bytes_total', 'Bytes relayed between clients and targets: up is client to target, down is target to client.', [
      'direction',
    ]);
    const openBytes = this.#openBytes();
    bytes.inc({ direction: 'up' }, this.#closedBytes.bytesUp + openBytes.bytesUp);
    bytes.inc({ direction: 'down' }, this.#closedBytes.bytesDown + openBytes.bytesDown);
    const pods = [...this.#views].flatMap((v) => v.pods());
    const poolOpen = new Gauge<'transport'>('kubesocks_pool_connections_open', 'Port-forward connections to pods open now, by transport.', ['transport'], () => {
      const byTransport = new Map<string, number>([[this.transport, 0]]);
      for (const p of pods) byTransport.set(p.transport, (byTransport.get(p.transport) ?? 0) + p.connections);
      return [...byTransport].map(([transport, n]) => [{ transport }, n] as [{ transport: string }, number]);
    });
    const poolSockets = new Gauge('kubesocks_pool_sockets_open', 'Sockets (stream pairs) open now on port-forward connections.', [], () => [
      [{}, pods.reduce((n, p) => n + p.sockets, 0)],
    ]);
    return [
      buildInfo,
      this.#connections,
      open,
      bytes,
      this.#connectDuration,
      this.#upgradesTotal,
      this.#failoversTotal,
      poolOpen,
      poolSockets,
      this.#keepaliveTotal,
      this.#relistsTotal,
      this.#errorsTotal,
    ];
  }

  *#connectionsByResult(result: string): Iterable<number> {
    for (const protocol of ['socks5', 'socks4', 'http-connect', 'http', 'unknown']) yield this.#connections.get({ protocol, result });
  }

  #openBytes(): ByteCounts {
    let bytesUp = 0;
    let bytesDown = 0;
    for (const live of this.#live) {
      bytesUp += live.counts.bytesUp;
      bytesDown += live.counts.bytesDown;
    }
    return { bytesUp, bytesDown };
  }

  #openConnections(now: number): OpenConnectionStatus[] {
    return [...this.#live]
      .sort((a, b) => a.startedAt - b.startedAt || a.id - b.id)
      .map((live) => ({
        id: live.id,
        client: live.client,
        protocol: live.protocol,
        target: live.target,
        via: live.via,
        pod: live.pod ? `${live.pod.namespace}/${live.pod.pod}` : null,
        bytesUp: live.counts.bytesUp,
        bytesDown: live.counts.bytesDown,
        startedAt: new Date(live.startedAt).toISOString(),
        durationMs: now - live.startedAt,
      }));
  }

  #podStatuses(views: ClusterView[], now: number): PodStatus[] {
    const rows = new Map<string, PodStatus>();
    const row = (ref: PodRef): PodStatus => {
      const key = podKey(ref);
      let status = rows.get(key);
      if (!status) {
        const history = this.#pods.get(key);
        status = {
          context: ref.context,
          namespace: ref.namespace,
          pod: ref.pod,
          transport: null,
          connections: 0,
          socketsOpen: 0,
          socketsTotal: history?.socketsTotal ?? 0,
          bytesUp: history?.bytesUp ?? 0,
          bytesDown: history?.bytesDown ?? 0,
          since: null,
          ageMs: null,
          lastError: history?.lastError ?? null,
        };
        rows.set(key, status);
      }
      return status;
    };
    for (const pooled of views.flatMap((v) => v.pods())) {
      const status = row(pooled);
      status.transport = pooled.transport;
      status.connections += pooled.connections;
      status.socketsOpen += pooled.sockets;
      if (pooled.connections > 0 && (status.ageMs === null || now - pooled.openedAt > status.ageMs)) {
        status.since = new Date(pooled.openedAt).toISOString();
        status.ageMs = now - pooled.openedAt;
      }
    }
    for (const live of this.#live) {
      if (!live.pod) continue;
      const status = row(live.pod);
      status.bytesUp += live.counts.bytesUp;
      status.bytesDown += live.counts.bytesDown;
    }
    // Pods no longer connected still show their totals and last error.
    for (const [key, history] of this.#pods) {
      if (rows.has(key)) continue;
      const [context = '', namespace = '', pod = ''] = splitPodKey(key);
      const status = row({ context, namespace, pod });
      status.lastError = history.lastError;
    }
    return [...rows.values()].sort((a, b) => b.connections - a.connections || a.context.localeCompare(b.context) || a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
  }

  #podHistory(ref: PodRef): PodHistory {
    const key = podKey(ref);
    let history = this.#pods.get(key);
    if (history) return history;
    history = { socketsTotal: 0, bytesUp: 0, bytesDown: 0, lastError: null };
    this.#pods.set(key, history);
    // The first seen are forgotten first (insertion order: no reordering on every use, which costs per socket).
    if (this.#pods.size > PODS_REMEMBERED) {
      const oldest = this.#pods.keys().next().value;
      if (oldest !== undefined) this.#pods.delete(oldest);
    }
    return history;
  }
}

/** `context/namespace/pod`: context names may hold slashes; namespaces and pod names never do. */
function splitPodKey(key: string): [string, string, string] {
  const pod = key.slice(key.lastIndexOf('/') + 1);
  const rest = key.slice(0, key.lastIndexOf('/'));
  const namespace = rest.slice(rest.lastIndexOf('/') + 1);
  return [rest.slice(0, rest.lastIndexOf('/')), namespace, pod];
}
