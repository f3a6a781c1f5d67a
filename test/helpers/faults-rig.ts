/**
 * The rig for the fault-and-load suite (test/faults/): a simulated cluster
 * over TLS, a real dialer on its kubeconfig, and the real proxy in front of
 * the dialer on 127.0.0.1:0 — the same path every byte takes in production.
 * Plus the clients the cases drive it with (SOCKS5 via the `socks` npm
 * client, HTTP via node:http), byte counters with sha256, resource snapshots,
 * and the one-line summary every case prints.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Dialer, type DialerOptions } from '../../src/dialer/dialer.js';
import { KubeClient } from '../../src/kube/client.js';
import { Resolver } from '../../src/resolve/resolver.js';
import { TunnelPool } from '../../src/tunnel/pool.js';
import { createProxyServer, type ConnectionRecord, type ProxyServer, type ProxyServerOptions } from '../../src/proxy/server.js';
import type { KubesocksError } from '../../src/errors.js';
import type { Connector } from '../../src/net/connector.js';
import type { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario, ScenarioPod, ScenarioPort } from '../../src/sim/types.js';
import { startTestCluster, type TestCluster } from './sim.js';
import { TEST_TRANSPORT } from './transport.js';

export interface Rig {
  t: TestCluster;
  cluster: SimCluster;
  dialer: Dialer;
  /** The dialer's resolver, built here (the Dialer keeps its parts private) so cases can wait for a name to resolve. */
  resolver: Resolver;
  proxy: ProxyServer;
  proxyPort: number;
  /** Every connection record the proxy logged (the `-v` log). */
  records: ConnectionRecord[];
  /** Failures of the proxy itself (onError): a healthy run has none. */
  proxyErrors: KubesocksError[];
  close(): Promise<void>;
}

export interface RigOptions {
  proxy?: Partial<Omit<ProxyServerOptions, 'connector'>>;
  dialer?: Partial<DialerOptions>;
  /** Use this kubeconfig instead of the admin one. */
  kubeconfig?: (t: TestCluster) => Promise<string>;
  /** Keep at most this many records (load cases log thousands). Default 10,000. */
  maxRecords?: number;
  streamPairTimeoutMs?: number;
  /** Debugging: wrap the connector the proxy uses. */
  wrapConnector?: (c: Connector) => Connector;
}

/** The namespace every fault case's pods live in. */
export const NS = 'faults';

/** A running, ready pod in NS; its `app` label is its name without the `-N` suffix. */
export function readyPod(name: string, ip: string, ports: ScenarioPort[], app = name.replace(/-\d+$/, '')): ScenarioPod {
  return { name, namespace: NS, labels: { app }, ip, phase: 'Running', ready: true, ports };
}

export async function startRig(scenario: Scenario, options: RigOptions = {}): Promise<Rig> {
  const t = await startTestCluster(scenario, options.streamPairTimeoutMs !== undefined ? { streamPairTimeoutMs: options.streamPairTimeoutMs } : {});
  const kubeconfig = options.kubeconfig ? await options.kubeconfig(t) : t.kubeconfig;
  // createDialer's assembly, by hand, to keep a handle on the resolver.
  const client = await KubeClient.load({ kubeconfig });
  const resolver = new Resolver(client, { clusterDomain: options.dialer?.clusterDomain, namespace: client.namespace, maxNamespaces: options.dialer?.maxNamespaces });
  const dialer = new Dialer({ client, resolver, pool: new TunnelPool(client, { transport: options.dialer?.transport ?? TEST_TRANSPORT, ...options.dialer?.pool }) }, options.dialer);
  const records: ConnectionRecord[] = [];
  const proxyErrors: KubesocksError[] = [];
  const maxRecords = options.maxRecords ?? 10_000;
  const proxy = createProxyServer({
    connector: options.wrapConnector ? options.wrapConnector(dialer.connector()) : dialer.connector(),
    onConnection: (r) => {
      if (records.length < maxRecords) records.push(r);
    },
    onError: (e) => proxyErrors.push(e),
    ...options.proxy,
  });
  const { port } = await proxy.listen('127.0.0.1', 0);
  let closing: Promise<void> | undefined;
  return {
    t,
    cluster: t.cluster,
    dialer,
    resolver,
    proxy,
    proxyPort: port,
    records,
    proxyErrors,
    close: () =>
      (closing ??= (async () => {
        await proxy.close();
        await dialer.close();
        await t.close();
      })()),
  };
}

// ---------------------------------------------------------------------------
// Clients

export { socks5, socks5Reply } from './socks-client.js';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A GET through the proxy's HTTP front (absolute-form, a fresh connection each time). */
export function httpViaProxy(proxyPort: number, url: string, timeoutMs = 10_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: proxyPort, path: url, method: 'GET', agent: false, headers: { Connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer from the proxy for ${url} within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

/** Which pod answered an http backend's reply (`pod NAME path …`). */
export function podOf(body: string): string | undefined {
  return /^pod (\S+) path /.exec(body)?.[1];
}

export { exchangeToEnd } from './streams.js';

/** One echo round trip on an open stream: writes `text`, resolves when it came back. */
export function echoOnce(stream: Duplex, text: string, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => done(new Error(`echo of ${JSON.stringify(text)} not back within ${timeoutMs} ms (got ${JSON.stringify(got)})`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (got.length >= text.length) done(got === text ? undefined : new Error(`echo mismatch: ${JSON.stringify(got)}`));
    };
    const onEnd = (): void => done(new Error(`stream ended during an echo (got ${JSON.stringify(got)})`));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('error', done);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      if (err) reject(err);
      else resolve();
    };
    stream.on('data', onData);
    stream.once('error', done);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.write(text);
  });
}

/** What a download saw: bytes, their sha256, how it ended. */
export interface Download {
  bytes: number;
  sha256: string;
  /** `end` (clean EOF), `error` (with the error), or `close` (closed without end). */
  ending: 'end' | 'error' | 'close';
  error?: Error;
}

/**
 * Counts and hashes everything `stream` delivers until it ends, errors or
 * closes. Call after the request was sent. `onChunk` sees the running total.
 */
export function download(stream: Duplex, onChunk?: (total: number) => void): Promise<Download> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let settled = false;
    const settle = (ending: Download['ending'], error?: Error): void => {
      if (settled) return;
      settled = true;
      resolve({ bytes, sha256: hash.digest('hex'), ending, ...(error ? { error } : {}) });
    };
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      onChunk?.(bytes);
    });
    stream.once('end', () => settle('end'));
    stream.once('error', (err) => settle('error', err));
    stream.once('close', () => setImmediate(() => settle('close')));
  });
}

/**
 * Holds a reader to `bytesPerSecond` (pausing and resuming `stream` every
 * 50 ms) until stop() — so several downloads advance together instead of
 * racing each other, and a fault can be injected while all are mid-way.
 * Pair it with download(): call onChunk(total) from download's callback.
 */
export function pace(stream: Duplex, bytesPerSecond: number): { onChunk(total: number): void; stop(): void } {
  let total = 0;
  let allowance = bytesPerSecond / 20;
  let stopped = false;
  const timer = setInterval(() => {
    allowance = total + bytesPerSecond / 20;
    stream.resume();
  }, 50);
  stream.once('close', () => clearInterval(timer));
  return {
    onChunk(t) {
      total = t;
      if (!stopped && total >= allowance) stream.pause();
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      stream.resume();
    },
  };
}

// ---------------------------------------------------------------------------
// Waiting and measuring

/**
 * Polls `check` every `everyMs` until it holds; returns the time it took (ms).
 * Throws after `timeoutMs`; `what` (a function is called then, so the message
 * shows the state at the timeout) says what was awaited.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 10_000, everyMs = 10): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(everyMs);
  }
}

export function ms(value: number): string {
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/**
 * The summary line every case prints: what the client saw, what was lost,
 * how long recovery took. Also kept for the end-of-file table.
 */
export interface CaseSummary {
  case: string;
  saw: string;
  lost: string;
  recovery: string;
}

export function summarize(t: TestContext, summary: CaseSummary): void {
  t.diagnostic(`${summary.case} | client saw: ${summary.saw} | lost: ${summary.lost} | recovery: ${summary.recovery}`);
}

/** Open handles by type (TCPSocketWrap, Timeout, …), from process.getActiveResourcesInfo(). */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** A socket or server among the process's active handles. */
interface HandleLike {
  constructor: { name: string };
  localPort?: number;
  remotePort?: number;
  listening?: boolean;
}

/** The process's active handles (undocumented but stable since Node 0.x; getActiveResourcesInfo() gives only type names). */
export function activeHandles(): HandleLike[] {
  return (process as unknown as { _getActiveHandles(): HandleLike[] })._getActiveHandles();
}

/**
 * Active sockets (not servers: the simulator starts a backend server per pod
 * port on first use), less the connections to `apiPort` (both ends, as the
 * simulator runs in-process): those are the API client's keep-alive pool,
 * whose size follows how many requests happened to overlap, and the pooled
 * port-forward connections, counted separately by dialer.stats(). What is
 * left are client, proxy, kubelet and backend sockets. (A paused socket with
 * nothing to write is not an active handle for libuv: a leak shows here once
 * something reads or writes on it, and in the proxy's and pool's counters.)
 */
export function socketHandles(apiPort?: number): number {
  let n = 0;
  for (const h of activeHandles()) {
    const kind = h.constructor.name;
    if (kind !== 'Socket' && kind !== 'TLSSocket') continue;
    if (apiPort !== undefined && (h.localPort === apiPort || h.remotePort === apiPort)) continue;
    n++;
  }
  return n;
}

export function formatResources(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
