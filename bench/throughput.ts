/**
 * Bulk throughput: COUNT bytes downloaded from the `source` backend and
 * uploaded to the `sink` backend of pod bulk-0, by every route, each transfer
 * SHA-256-checked. Besides MiB/s it records the CPU seconds per GiB of the
 * process doing the forwarding (kubectl or kubesocks), of the simulator, and
 * of the client (this process).
 */
import type { Duplex } from 'node:stream';
import type { Dialer } from '../src/dialer/dialer.js';
import type { BareClient } from './ceiling.js';
import { download, upload } from './lib/client.js';
import { log } from './lib/harness.js';
import type { Sim } from './lib/harness.js';
import { sample } from './lib/procs.js';
import type { ProcSample } from './lib/procs.js';
import { GiB, MiB, median } from './lib/table.js';

export type RouteKey = 'direct' | 'ceiling' | 'kubectl' | 'socks5' | 'http' | 'dialer';

export const ROUTE_LABELS: Record<RouteKey, string> = {
  direct: 'direct TCP to the backend',
  ceiling: 'bare SPDY client (ceiling)',
  kubectl: 'kubectl port-forward',
  socks5: 'kubesocks SOCKS5',
  http: 'kubesocks HTTP CONNECT',
  dialer: 'kubesocks dialer API (in-process)',
};

export interface TransferFigures {
  bytes: number;
  /** Median over runs. */
  mibPerSec: number;
  /** Every run's MiB/s. */
  runs: number[];
  sha256: string;
  /** CPU seconds per GiB of the forwarding process (kubectl / kubesocks); absent for direct, ceiling and dialer. */
  forwarderCpuPerGiB?: number;
  /** Peak RSS of the forwarding process after this transfer (bytes). */
  forwarderPeakRss?: number;
  /** CPU seconds per GiB of the simulator process. */
  simCpuPerGiB: number;
  /** CPU seconds per GiB of this process (the client; for the dialer row also the dialer). */
  clientCpuPerGiB: number;
}

export interface ThroughputRow {
  route: RouteKey;
  label: string;
  download?: TransferFigures;
  upload?: TransferFigures;
  skipped?: string;
}

/** How to open a stream to the source / sink port by one route, and which process forwards. */
export interface RouteSpec {
  route: RouteKey;
  openSource(): Promise<Duplex>;
  openSink(): Promise<Duplex>;
  forwarder?: () => ProcSample | undefined;
}

export interface ThroughputOptions {
  bytes: number;
  runs: number;
  warmupBytes: number;
}

function clientCpuSec(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measureOne(
  sim: Sim,
  spec: RouteSpec,
  direction: 'download' | 'upload',
  options: ThroughputOptions,
): Promise<TransferFigures> {
  const timeoutMs = Math.max(60_000, (options.bytes / (10 * MiB)) * 1000);
  const run = (n: number) => (direction === 'download' ? spec.openSource().then((s) => download(s, n, timeoutMs)) : spec.openSink().then((s) => upload(s, n, timeoutMs)));
  // Warm-up: pooled connections, JIT, socket buffers. Checked like the rest.
  await run(options.warmupBytes);
  const speeds: number[] = [];
  const cpu: Array<{ fwd?: number; sim: number; client: number }> = [];
  let sha256 = '';
  for (let i = 0; i < options.runs; i++) {
    const f0 = spec.forwarder?.();
    const s0 = sample(sim.child.pid);
    const c0 = clientCpuSec();
    const result = await run(options.bytes);
    const f1 = spec.forwarder?.();
    const s1 = sample(sim.child.pid);
    const c1 = clientCpuSec();
    const gib = result.bytes / GiB;
    speeds.push(result.bytes / MiB / result.seconds);
    cpu.push({
      ...(f0 && f1 ? { fwd: (f1.cpuSec - f0.cpuSec) / gib } : {}),
      sim: s0 && s1 ? (s1.cpuSec - s0.cpuSec) / gib : Number.NaN,
      client: (c1 - c0) / gib,
    });
    sha256 = result.digest;
  }
  const mid = speeds.indexOf(median(speeds));
  const c = cpu[mid]!;
  const peak = spec.forwarder?.()?.hwm;
  const figures: TransferFigures = {
    bytes: options.bytes,
    mibPerSec: speeds[mid]!,
    runs: speeds,
    sha256,
    simCpuPerGiB: c.sim,
    clientCpuPerGiB: c.client,
  };
  if (c.fwd !== undefined) figures.forwarderCpuPerGiB = c.fwd;
  if (peak !== undefined) figures.forwarderPeakRss = peak;
  return figures;
}

export async function measureThroughput(sim: Sim, spec: RouteSpec, options: ThroughputOptions): Promise<ThroughputRow> {
  const row: ThroughputRow = { route: spec.route, label: ROUTE_LABELS[spec.route] };
  for (const direction of ['download', 'upload'] as const) {
    const figures = await measureOne(sim, spec, direction, options);
    row[direction] = figures;
    log(`  ${row.label} ${direction}: ${figures.mibPerSec.toFixed(1)} MiB/s (${figures.runs.map((r) => r.toFixed(0)).join(', ')}), sha256 ok`);
  }
  return row;
}

/** The dialer row's spec (the dialer lives in this process). */
export function dialerRoute(dialer: Dialer, host: string, sourcePort: number, sinkPort: number): RouteSpec {
  return {
    route: 'dialer',
    openSource: () => dialer.connect(`${host}:${sourcePort}`, { signal: AbortSignal.timeout(30_000) }),
    openSink: () => dialer.connect(`${host}:${sinkPort}`, { signal: AbortSignal.timeout(30_000) }),
  };
}

/** The ceiling row's spec: stream pairs on one bare SPDY connection. */
export function ceilingRoute(client: BareClient, sourcePort: number, sinkPort: number): RouteSpec {
  return {
    route: 'ceiling',
    openSource: async () => client.open(sourcePort),
    openSink: async () => client.open(sinkPort),
  };
}
