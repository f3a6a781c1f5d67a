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

type Direction = 'download' | 'upload';
const DIRECTIONS: readonly Direction[] = ['download', 'upload'];

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
  /** CPU seconds per GiB of the forwarding process (kubectl / kubesocks), of the median-speed run; absent for direct, ceiling and dialer. */
  forwarderCpuPerGiB?: number;
  /** The same for every run, in run order. */
  forwarderCpuPerGiBRuns?: number[];
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

interface Sample {
  mibPerSec: number;
  sha256: string;
  fwd?: number;
  sim: number;
  client: number;
}

function open(spec: RouteSpec, direction: Direction): Promise<Duplex> {
  return direction === 'download' ? spec.openSource() : spec.openSink();
}

function transfer(spec: RouteSpec, direction: Direction, bytes: number) {
  const timeoutMs = Math.max(60_000, (bytes / (10 * MiB)) * 1000);
  return open(spec, direction).then((s) => (direction === 'download' ? download(s, bytes, timeoutMs) : upload(s, bytes, timeoutMs)));
}

async function measureOnce(sim: Sim, spec: RouteSpec, direction: Direction, bytes: number): Promise<Sample> {
  const f0 = spec.forwarder?.();
  const s0 = sample(sim.child.pid);
  const c0 = clientCpuSec();
  const result = await transfer(spec, direction, bytes);
  const f1 = spec.forwarder?.();
  const s1 = sample(sim.child.pid);
  const c1 = clientCpuSec();
  const gib = result.bytes / GiB;
  return {
    mibPerSec: result.bytes / MiB / result.seconds,
    sha256: result.digest,
    ...(f0 && f1 ? { fwd: (f1.cpuSec - f0.cpuSec) / gib } : {}),
    sim: s0 && s1 ? (s1.cpuSec - s0.cpuSec) / gib : Number.NaN,
    client: (c1 - c0) / gib,
  };
}

function figures(spec: RouteSpec, bytes: number, samples: Sample[]): TransferFigures {
  const speeds = samples.map((s) => s.mibPerSec);
  const mid = samples[speeds.indexOf(median(speeds))]!;
  const result: TransferFigures = {
    bytes,
    mibPerSec: mid.mibPerSec,
    runs: speeds,
    sha256: mid.sha256,
    simCpuPerGiB: mid.sim,
    clientCpuPerGiB: mid.client,
  };
  if (mid.fwd !== undefined) result.forwarderCpuPerGiB = mid.fwd;
  const cpuRuns = samples.map((s) => s.fwd).filter((v): v is number => v !== undefined);
  if (cpuRuns.length > 0) result.forwarderCpuPerGiBRuns = cpuRuns;
  const peak = spec.forwarder?.()?.hwm;
  if (peak !== undefined) result.forwarderPeakRss = peak;
  return result;
}

/**
 * Every route, both directions. Each route and direction first gets an
 * untimed warm-up transfer (pooled connections, JIT, socket buffers; checked
 * like the rest); then the runs go round-robin over the routes, so a slow
 * patch of machine time spreads over all of them instead of hitting one.
 */
export async function measureThroughput(sim: Sim, specs: RouteSpec[], options: ThroughputOptions): Promise<ThroughputRow[]> {
  for (const spec of specs) for (const direction of DIRECTIONS) await transfer(spec, direction, options.warmupBytes);
  const samples = new Map(specs.map((spec) => [spec.route, { download: [] as Sample[], upload: [] as Sample[] }]));
  for (let run = 1; run <= options.runs; run++) {
    for (const direction of DIRECTIONS) {
      for (const spec of specs) {
        const s = await measureOnce(sim, spec, direction, options.bytes);
        samples.get(spec.route)![direction].push(s);
        log(`  run ${run}/${options.runs} ${direction} ${ROUTE_LABELS[spec.route]}: ${s.mibPerSec.toFixed(1)} MiB/s${s.fwd !== undefined ? `, ${s.fwd.toFixed(2)} CPU s/GiB` : ''}, sha256 ok`);
      }
    }
  }
  return specs.map((spec) => {
    const own = samples.get(spec.route)!;
    return {
      route: spec.route,
      label: ROUTE_LABELS[spec.route],
      download: figures(spec, options.bytes, own.download),
      upload: figures(spec, options.bytes, own.upload),
    };
  });
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
