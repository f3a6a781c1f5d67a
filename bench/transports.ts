/**
 * Port-forward transports side by side: kubesocks over SPDY and over the
 * WebSocket tunnel (KEP-4006), kubectl over each (KUBECTL_PORT_FORWARD_WEBSOCKETS=false
 * forces kubectl 1.31+ to SPDY), and kubesocks over WebSockets with ws's
 * JavaScript masking (WS_NO_BUFFER_UTIL=1) to show what masking every
 * upload byte costs without the native mask. Every route is a separate
 * forwarder process against one simulator; the simulator's per-protocol
 * counters prove which transport each one really took.
 *
 * Throughput both ways (sha256-checked), CPU seconds of the forwarder per GiB,
 * and warm connect p50. Runs go round-robin over the routes (A/B interleaved),
 * so a slow patch of the shared machine spreads over all of them.
 */
import type { Duplex } from 'node:stream';
import { measureWarm } from './latency.js';
import { download, open, upload } from './lib/client.js';
import type { Address, Route } from './lib/client.js';
import { log, startKubesocks, startPortForward } from './lib/harness.js';
import type { Sim } from './lib/harness.js';
import type { ProcSample } from './lib/procs.js';
import { NS, PORTS, serviceHost } from './lib/scenario.js';
import { GiB, markdownTable, median, MiB, num } from './lib/table.js';

export type TransportName = 'spdy' | 'websocket';

export interface TransportDirection {
  mibPerSec: number;
  runs: number[];
  /** CPU seconds of the forwarding process per GiB (median run). */
  cpuPerGiB: number;
}

export interface TransportRow {
  label: string;
  forwarder: 'kubectl' | 'kubesocks';
  transport: TransportName;
  /** What the simulator counted for this forwarder's connections, by protocol. */
  tunnels: Record<string, number>;
  download: TransportDirection;
  upload: TransportDirection;
  connectP50Ms: number;
  connectP99Ms: number;
}

export interface TransportOptions {
  bytes: number;
  warmupBytes: number;
  runs: number;
  connectSamples: number;
}

interface RouteUnderTest {
  label: string;
  forwarder: 'kubectl' | 'kubesocks';
  transport: TransportName;
  tunnels: Record<string, number>;
  source(): Route;
  sink(): Route;
  echo(): Route;
  sample(): ProcSample | undefined;
  stop(): Promise<void>;
}

const BULK = serviceHost('bulk');

function tcp(address: Address | undefined): Route {
  if (!address) throw new Error('kubectl did not forward the port');
  return { kind: 'tcp', address };
}

/** Starts a forwarder and records which tunnels the simulator accepted while it made its first connections. */
async function counted<T>(sim: Sim, start: () => Promise<T>, touch: (value: T) => Promise<void>): Promise<{ value: T; tunnels: Record<string, number> }> {
  const before = (await sim.counters()).tunnels;
  const value = await start();
  await touch(value);
  const after = (await sim.counters()).tunnels;
  const tunnels: Record<string, number> = {};
  for (const [protocol, n] of Object.entries(after)) if (n - (before[protocol as keyof typeof before] ?? 0) > 0) tunnels[protocol] = n - (before[protocol as keyof typeof before] ?? 0);
  return { value, tunnels };
}

async function echoOnce(route: Route): Promise<void> {
  const stream = await open(route);
  stream.destroy();
}

async function kubesocksRoute(sim: Sim, transport: TransportName, label: string, env: NodeJS.ProcessEnv = {}): Promise<RouteUnderTest> {
  const { value: ks, tunnels } = await counted(
    sim,
    () => startKubesocks(sim, label, undefined, { args: ['--transport', transport], env }),
    (k) => echoOnce({ kind: 'socks5', proxy: k.proxy, host: BULK, port: PORTS.echo }),
  );
  return {
    label,
    forwarder: 'kubesocks',
    transport,
    tunnels,
    source: () => ({ kind: 'socks5', proxy: ks.proxy, host: BULK, port: PORTS.source }),
    sink: () => ({ kind: 'socks5', proxy: ks.proxy, host: BULK, port: PORTS.sink }),
    echo: () => ({ kind: 'socks5', proxy: ks.proxy, host: BULK, port: PORTS.echo }),
    sample: ks.sample,
    stop: () => ks.child.stop(10_000),
  };
}

async function kubectlRoute(sim: Sim, kubectl: string, transport: TransportName): Promise<RouteUnderTest> {
  const label = `kubectl port-forward (${transport === 'spdy' ? 'SPDY' : 'WebSocket'})`;
  // kubectl ≥ 1.31 takes the tunnel by default; this variable sends it to SPDY.
  const env = transport === 'spdy' ? { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } : {};
  const { value: pf, tunnels } = await counted(
    sim,
    () => startPortForward(kubectl, sim, 'pod/bulk-0', [PORTS.source, PORTS.sink, PORTS.echo], label, NS, env),
    (p) => echoOnce(tcp(p.ports.get(PORTS.echo))),
  );
  return {
    label,
    forwarder: 'kubectl',
    transport,
    tunnels,
    source: () => tcp(pf.ports.get(PORTS.source)),
    sink: () => tcp(pf.ports.get(PORTS.sink)),
    echo: () => tcp(pf.ports.get(PORTS.echo)),
    sample: pf.sample,
    stop: () => pf.child.stop(),
  };
}

async function transfer(route: RouteUnderTest, direction: 'download' | 'upload', bytes: number): Promise<{ mibPerSec: number; cpuPerGiB: number }> {
  const timeoutMs = Math.max(60_000, (bytes / (10 * MiB)) * 1000);
  const stream: Duplex = await open(direction === 'download' ? route.source() : route.sink());
  const before = route.sample();
  const result = direction === 'download' ? await download(stream, bytes, timeoutMs) : await upload(stream, bytes, timeoutMs);
  const after = route.sample();
  return {
    mibPerSec: result.bytes / MiB / result.seconds,
    cpuPerGiB: before && after ? (after.cpuSec - before.cpuSec) / (result.bytes / GiB) : Number.NaN,
  };
}

export async function measureTransports(sim: Sim, kubectl: string | undefined, options: TransportOptions): Promise<TransportRow[]> {
  const routes: RouteUnderTest[] = [];
  try {
    if (kubectl) routes.push(await kubectlRoute(sim, kubectl, 'spdy'), await kubectlRoute(sim, kubectl, 'websocket'));
    routes.push(
      await kubesocksRoute(sim, 'spdy', 'kubesocks SOCKS5 (SPDY)'),
      await kubesocksRoute(sim, 'websocket', 'kubesocks SOCKS5 (WebSocket)'),
      await kubesocksRoute(sim, 'websocket', 'kubesocks SOCKS5 (WebSocket, JS masking)', { WS_NO_BUFFER_UTIL: '1' }),
    );
    for (const r of routes) log(`  ${r.label}: tunnels ${JSON.stringify(r.tunnels)}`);
    for (const r of routes) for (const d of ['download', 'upload'] as const) await transfer(r, d, options.warmupBytes);
    const runs = new Map(routes.map((r) => [r, { download: [] as Array<{ mibPerSec: number; cpuPerGiB: number }>, upload: [] as Array<{ mibPerSec: number; cpuPerGiB: number }> }]));
    for (let run = 1; run <= options.runs; run++) {
      for (const direction of ['download', 'upload'] as const) {
        for (const r of routes) {
          const s = await transfer(r, direction, options.bytes);
          runs.get(r)![direction].push(s);
          log(`  run ${run}/${options.runs} ${direction} ${r.label}: ${s.mibPerSec.toFixed(1)} MiB/s, ${s.cpuPerGiB.toFixed(2)} CPU s/GiB, sha256 ok`);
        }
      }
    }
    const rows: TransportRow[] = [];
    for (const r of routes) {
      const connect = await measureWarm(`${r.label}, warm`, r.echo(), options.connectSamples);
      const pick = (samples: Array<{ mibPerSec: number; cpuPerGiB: number }>): TransportDirection => {
        const speeds = samples.map((s) => s.mibPerSec);
        const mid = samples[speeds.indexOf(median(speeds))]!;
        return { mibPerSec: mid.mibPerSec, runs: speeds, cpuPerGiB: median(samples.map((s) => s.cpuPerGiB)) };
      };
      const own = runs.get(r)!;
      rows.push({
        label: r.label,
        forwarder: r.forwarder,
        transport: r.transport,
        tunnels: r.tunnels,
        download: pick(own.download),
        upload: pick(own.upload),
        connectP50Ms: connect.p50Ms,
        connectP99Ms: connect.p99Ms,
      });
    }
    return rows;
  } finally {
    for (const r of routes) await r.stop().catch(() => {});
  }
}

/** The report section: one row per route, then kubesocks/kubectl ratios per transport. */
export function transportsTable(rows: TransportRow[]): string {
  const table = markdownTable(
    ['route', 'tunnel (simulator counters)', 'download MiB/s', 'upload MiB/s', 'CPU s/GiB down', 'CPU s/GiB up', 'warm connect p50 ms', 'p99 ms'],
    rows.map((r) => [
      r.label,
      Object.keys(r.tunnels).join(', ') || '—',
      num(r.download.mibPerSec, 0),
      num(r.upload.mibPerSec, 0),
      num(r.download.cpuPerGiB, 2),
      num(r.upload.cpuPerGiB, 2),
      num(r.connectP50Ms, 2),
      num(r.connectP99Ms, 2),
    ]),
  );
  const ratios: string[][] = [];
  for (const transport of ['spdy', 'websocket'] as const) {
    const ks = rows.find((r) => r.forwarder === 'kubesocks' && r.transport === transport && !r.label.includes('JS masking'));
    const kc = rows.find((r) => r.forwarder === 'kubectl' && r.transport === transport);
    if (!ks || !kc) continue;
    const x = (a: number, b: number): string => (b > 0 && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : '—');
    ratios.push([
      transport === 'spdy' ? 'SPDY' : 'WebSocket',
      x(ks.download.mibPerSec, kc.download.mibPerSec),
      x(ks.upload.mibPerSec, kc.upload.mibPerSec),
      x(ks.download.cpuPerGiB, kc.download.cpuPerGiB),
      x(ks.upload.cpuPerGiB, kc.upload.cpuPerGiB),
      x(ks.connectP50Ms, kc.connectP50Ms),
    ]);
  }
  const ratioTable = ratios.length
    ? `\n\nkubesocks ÷ kubectl on the same transport (throughput above 1× is faster; CPU and connect time below 1× is cheaper):\n\n${markdownTable(
        ['transport', 'download', 'upload', 'CPU down', 'CPU up', 'connect p50'],
        ratios,
      )}`
    : '';
  return `${table}${ratioTable}`;
}
