/**
 * The shape of `/status.json` (documented for scripts in docs/status.md).
 * Times are ISO 8601 strings in UTC; durations are milliseconds; byte
 * counts are numbers. Nothing here carries a token, a certificate or a
 * credential. `schema` changes only when a field changes meaning or goes away.
 */

export const STATUS_SCHEMA = 1;

/** The last failure of something, as one line. */
export interface StatusError {
  /** When it happened. */
  time: string;
  /** The KubesocksError code (src/errors.ts). */
  code: string;
  message: string;
}

/** One kubeconfig context the proxy reaches clusters through. */
export interface ContextStatus {
  name: string;
  /** The API server URL from the kubeconfig. */
  server: string;
  /** The kubeconfig user name (a name only; never a token). */
  user: string;
  /** The namespace short names resolve in. */
  namespace: string;
  /** Whether the API server answered lately; null before anything was asked. */
  reachable: boolean | null;
  /** The last failure talking to this API server (watch, list, upgrade, probe), or null. */
  lastError: StatusError | null;
  /** Namespaces whose services, EndpointSlices and pods are watched now. */
  namespaces: string[];
}

/** A pod the proxy has (or had) port-forward connections to. */
export interface PodStatus {
  context: string;
  namespace: string;
  pod: string;
  /** How its port-forward connections are made (`spdy`, `websocket`); null when none is open. */
  transport: string | null;
  /** Port-forward connections to the pod open now. */
  connections: number;
  /** Sockets (stream pairs) open now on those connections. */
  socketsOpen: number;
  /** Proxied connections that went to this pod since start. */
  socketsTotal: number;
  /** Client → pod bytes since start (open connections included). */
  bytesUp: number;
  /** Pod → client bytes since start. */
  bytesDown: number;
  /** When the oldest open connection to the pod was made; null when none is open. */
  since: string | null;
  /** Age of that connection in ms; null when none is open. */
  ageMs: number | null;
  lastError: StatusError | null;
}

/** A proxied connection (a SOCKS or CONNECT tunnel, or a forwarded HTTP request) open now. */
export interface OpenConnectionStatus {
  id: number;
  /** The client's address, `127.0.0.1:52144`. */
  client: string;
  /** `socks5`, `socks4`, `http-connect` or `http`. */
  protocol: string;
  /** What the client asked for, `web.demo:80`. */
  target: string;
  /** Where it goes, `demo/web-0:8080` or `direct example.com:443`. */
  via: string;
  /** The pod (`namespace/name`), or null for direct connections. */
  pod: string | null;
  bytesUp: number;
  bytesDown: number;
  startedAt: string;
  durationMs: number;
}

/** A connection or request that failed (the most recent first). */
export interface FailureStatus extends StatusError {
  client: string;
  protocol: string;
  /** What the client asked for; null when the handshake never named one. */
  target: string | null;
}

export interface TotalsStatus {
  /** Proxied connections and forwarded requests since start, ended or open. */
  connections: number;
  /** Of those, how many failed. */
  failed: number;
  /** Open now. */
  open: number;
  bytesUp: number;
  bytesDown: number;
  /** Port-forward connections (upgrades) made to pods. */
  upgrades: number;
  /** Port-forward connections open now. */
  poolConnections: number;
  /** Times another pod was tried for a socket (at connect time, or after a refusal before its first byte). */
  failovers: number;
  keepaliveFailures: number;
  watchRelists: number;
}

export interface StatusSnapshot {
  schema: typeof STATUS_SCHEMA;
  version: string;
  /** `spdy` or `websocket` (or `auto`): how port-forward connections are made. */
  transport: string;
  /** Where the proxy listens, `127.0.0.1:1080`. */
  listen: string;
  /** Whether clients must present credentials (--auth). */
  auth: boolean;
  now: string;
  startedAt: string;
  contexts: ContextStatus[];
  pods: PodStatus[];
  connections: OpenConnectionStatus[];
  failures: FailureStatus[];
  totals: TotalsStatus;
}
