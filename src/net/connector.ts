/**
 * The contract between the proxy front and whatever opens streams for it
 * (the dialer implements it). It lives below both so that neither imports
 * the other. The proxy knows nothing of Kubernetes: it parses handshakes,
 * asks a Connector for a stream to `host:port`, and maps the Connector's
 * KubesocksError codes to SOCKS replies and HTTP statuses.
 */
import type { Duplex } from 'node:stream';

export interface ProxyTarget {
  /** A host name (as the client sent it, no trailing dot) or an IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /**
   * What the client's proxy username selects, when it gave one: SOCKS5
   * (RFC 1929) or HTTP `Proxy-Authorization` username, or with `auth` the
   * part after `USER+`. The Connector decides what it names (kubesocks: a
   * context alias) and refuses what it does not know.
   */
  selector?: string;
}

export interface Connected {
  /** Bytes to and from the destination. Ends and errors like a socket. */
  stream: Duplex;
  /** Where the stream really goes, for the log: `demo/web-0:8080` or `direct 140.82.112.3:443`. */
  via: string;
  /** The pod the stream goes to (absent for direct connections), for the status page's per-pod rows. */
  pod?: { context: string; namespace: string; pod: string } | undefined;
}

export interface PacInfo {
  /** e.g. `cluster.local` */
  clusterDomain: string;
  /** Namespaces that exist now; `x.NS` names go through the proxy. */
  namespaces: string[];
  /** Exact host names that go through the proxy (services and pods of namespaces named like public domains). */
  hosts?: string[];
  /** Context aliases served; names with at least two labels before `.ALIAS` go through the proxy. */
  aliases?: string[];
}

export interface Connector {
  /**
   * Opens a stream to the target. Rejects with a KubesocksError whose code
   * says why (NOT_FOUND, POD_REFUSED, FORBIDDEN, TIMEOUT, DIRECT_DENIED, …).
   * Aborting `signal` (the client went away) must abandon the attempt.
   */
  connect(target: ProxyTarget, signal: AbortSignal): Promise<Connected>;
  /** Facts for /proxy.pac. */
  pacInfo(): Promise<PacInfo>;
  /** For /readyz: per kubeconfig context, whether its API server answers and accepts the credentials. */
  readiness?(): Promise<ContextReadiness[]>;
}

export interface ContextReadiness {
  context: string;
  ready: boolean;
  /** One line: `ok`, or what is wrong and what to do. */
  reason: string;
}
