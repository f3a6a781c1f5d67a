/** The report: Markdown tables for stdout, from the figures that also go to results.json. */
import type { ConcurrencyFigures } from './concurrency.js';
import type { LatencyFigures } from './latency.js';
import type { ProfileSummary } from './lib/profile.js';
import { markdownTable, median, mib, MiB, num, ratio } from './lib/table.js';
import type { OnePodFigures } from './onepod.js';
import type { RttFigures } from './rtt.js';
import type { ServicesFigures } from './services.js';
import type { StartupFigures } from './startup.js';
import { summaryTable } from './summary.js';
import type { ThroughputRow } from './throughput.js';
import { transportsTable, type TransportRow } from './transports.js';
import type { UpgradeFigures } from './upgrades.js';

export interface Machine {
  node: string;
  cpuModel: string;
  cpus: number;
  memoryGiB: number;
  kernel: string;
  kubectl: string | undefined;
  kubesocks: string;
  commit: string | undefined;
  date: string;
}

export type Profile = ProfileSummary & { transfer: string };

export interface Results {
  mode: 'full' | 'quick';
  machine: Machine;
  config: Record<string, number | string | boolean | number[]>;
  throughput: ThroughputRow[];
  latency: LatencyFigures[];
  upgrades?: UpgradeFigures;
  concurrency?: ConcurrencyFigures;
  /** Start-up and idle footprint, kubesocks and kubectl (fresh processes). */
  startup?: StartupFigures[];
  /** Many sockets to one pod, kubesocks vs kubectl. */
  onePod?: OnePodFigures;
  /** `--rtt MS`: through a relay delaying each direction by MS/2. */
  rtt?: RttFigures;
  services?: ServicesFigures;
  /** kubesocks and kubectl over each port-forward transport. */
  transports?: TransportRow[];
  /** CPU profiles of kubesocks during a SOCKS5 download and upload (full runs). */
  profiles: Profile[];
  /** Measurements that did not complete, or whose integrity check failed. */
  failures: Array<{ phase: string; error: string }>;
  notes: string[];
  elapsedSeconds: number;
}

function throughputTable(rows: ThroughputRow[]): string {
  const by = (k: string): ThroughputRow | undefined => rows.find((r) => r.route === k);
  const direct = by('direct');
  const kubectl = by('kubectl');
  const ceiling = by('ceiling');
  const cpu = (r: ThroughputRow): string => {
    const d = r.download?.forwarderCpuPerGiBRuns;
    const u = r.upload?.forwarderCpuPerGiBRuns;
    if (d === undefined && u === undefined) return '—';
    return `${spread(d)} / ${spread(u)}`;
  };
  const body = rows.map((r) => {
    if (r.skipped) return [r.label, `skipped: ${r.skipped}`, '', '', '', '', '', '', '', '', ''];
    const d = r.download?.mibPerSec;
    const u = r.upload?.mibPerSec;
    return [
      r.label,
      num(d, 0),
      ratio(d, direct?.download?.mibPerSec),
      ratio(d, kubectl?.download?.mibPerSec),
      ratio(d, ceiling?.download?.mibPerSec),
      num(u, 0),
      ratio(u, direct?.upload?.mibPerSec),
      ratio(u, kubectl?.upload?.mibPerSec),
      ratio(u, ceiling?.upload?.mibPerSec),
      cpu(r),
      `${num(r.download?.simCpuPerGiB, 2)} / ${num(r.upload?.simCpuPerGiB, 2)}`,
    ];
  });
  return markdownTable(
    ['route', 'down MiB/s', '× direct', '× kubectl', '× ceiling', 'up MiB/s', '× direct', '× kubectl', '× ceiling', 'forwarder CPU s/GiB down / up (min–median–max)', 'simulator CPU s/GiB down / up'],
    body,
  );
}

/** `min–median–max` of a list of CPU s/GiB figures. */
function spread(values: number[] | undefined): string {
  if (!values || values.length === 0) return '—';
  if (values.length === 1) return num(values[0], 2);
  return `${num(Math.min(...values), 2)}–${num(median(values), 2)}–${num(Math.max(...values), 2)}`;
}

function latencyTable(rows: LatencyFigures[]): string {
  const kubectl = rows.find((r) => r.label.startsWith('kubectl'));
  return markdownTable(
    ['route', 'samples', 'p50 ms', 'p99 ms', 'p50 × kubectl', 'p99 × kubectl', 'note'],
    rows.map((r) => [r.label, String(r.samples), num(r.p50Ms, 2), num(r.p99Ms, 2), ratio(r.p50Ms, kubectl?.p50Ms), ratio(r.p99Ms, kubectl?.p99Ms), r.note ?? '']),
  );
}

function upgradesTable(u: UpgradeFigures): string {
  const per1000 = (n: number): string => num((n * 1000) / u.sockets, 0);
  return markdownTable(
    ['', 'sockets', 'pods', 'upgrades', 'upgrades per 1,000 sockets'],
    [
      [`kubesocks (≤ ${u.concurrency} sockets open at once)`, String(u.sockets), String(u.pods), String(u.kubesocksUpgrades), per1000(u.kubesocksUpgrades)],
      ['one port-forward per socket', String(u.sockets), String(u.pods), String(u.naiveUpgrades), per1000(u.naiveUpgrades)],
    ],
  );
}

function concurrencyTable(c: ConcurrencyFigures, kubectl: ThroughputRow | undefined): string {
  const kcpu = [kubectl?.download?.forwarderCpuPerGiB, kubectl?.upload?.forwarderCpuPerGiB].filter((v): v is number => v !== undefined);
  const kubectlCpu = kcpu.length ? kcpu.reduce((a, b) => a + b, 0) / kcpu.length : undefined;
  return markdownTable(
    ['sockets × size', 'pods', 'wall s', 'connect s', 'transfer s', 'kubesocks peak RSS', 'kubesocks CPU s/GiB', 'kubectl CPU s/GiB (bulk, mean down/up)', 'upgrades', 'sha256 ok'],
    [
      [
        `${c.sockets} × ${c.bytesEach / MiB} MiB echo`,
        String(c.pods),
        num(c.wallSeconds, 2),
        num(c.connectSeconds, 2),
        num(c.transferSeconds, 2),
        mib(c.kubesocksPeakRss),
        num(c.kubesocksCpuPerGiB, 2),
        num(kubectlCpu, 2),
        String(c.upgrades),
        `${c.verified}/${c.sockets}`,
      ],
    ],
  );
}

function startupTable(rows: StartupFigures[]): string {
  return markdownTable(
    ['forwarder', 'start → ready ms', 'CPU ms at ready', 'first request ms (new namespace, new pod)', 'its CPU ms', 'start + first ms', 'RSS at ready', 'RSS after one connection'],
    rows.map((x) => [x.label, num(x.readyMs, 0), num(x.cpuReadyMs, 0), num(x.firstRequestMs, 1), num(x.cpuFirstMs, 0), num(x.startPlusFirstMs, 0), mib(x.rssReady), mib(x.rssAfterOne)]),
  );
}

function onePodTable(f: OnePodFigures): string {
  return markdownTable(
    ['forwarder', 'sockets × size', 'wall s', 'connect s', 'transfer s', 'peak RSS', 'CPU s', 'sha256 ok'],
    f.runs.map((x) => [
      x.forwarder,
      `${x.sockets} × ${x.bytesEach / MiB} MiB echo`,
      num(x.wallSeconds, 2),
      num(x.connectSeconds, 2),
      num(x.transferSeconds, 2),
      mib(x.peakRss),
      num(x.cpuSec, 2),
      `${x.verified}/${x.sockets}${x.failed ? ` (${x.failures.slice(0, 2).join('; ')})` : ''}`,
    ]),
  );
}

function servicesTable(s: ServicesFigures): string {
  const rows = [
    [
      'kubesocks',
      '1',
      mib(s.kubesocksPeakRss),
      `${mib(s.kubesocksIdleRss)} idle + ${mib((s.kubesocksPeakRss - s.kubesocksIdleRss) / s.services)} per service`,
      `${num(s.kubesocksFirstByteP50Ms, 1)} (first socket per service)`,
    ],
  ];
  if (s.kubectl) {
    rows.push([
      `kubectl port-forward × ${s.kubectl.processes}`,
      String(s.kubectl.processes),
      mib(s.kubectl.peakRssSum),
      `${mib(s.kubectl.peakRssSum / s.kubectl.processes)} per process`,
      `${num(s.kubectl.firstByteP50Ms, 0)} (spawn → first byte)`,
    ]);
  }
  return `${markdownTable(['', 'processes', `peak RSS, ${s.services} services`, 'breakdown', 'first byte p50 ms'], rows)}\n\nkubesocks ÷ kubectl peak RSS: ${ratio(s.kubesocksPeakRss, s.kubectl?.peakRssSum)}`;
}

function profileTable(p: Profile): string {
  return (
    `${p.transfer}; busy ${num(p.busyMs / 1000, 2)} s, idle ${num(p.idleMs / 1000, 2)} s (${p.file})\n\n` +
    markdownTable(
      ['self %', 'self ms', 'function', 'where'],
      p.top.map((f) => [num(f.percent, 1), num(f.selfMs, 0), f.name, f.where]),
    )
  );
}

/** The targets issue 5 sets, checked against this run's figures (reported, never asserted). */
export function targets(r: Results): Array<{ target: string; figures: string; met: boolean | undefined }> {
  const row = (k: string): ThroughputRow | undefined => r.throughput.find((t) => t.route === k && !t.skipped);
  const kubectl = row('kubectl');
  const ceiling = row('ceiling');
  const out: Array<{ target: string; figures: string; met: boolean | undefined }> = [];
  for (const k of ['socks5', 'http', 'dialer'] as const) {
    const ks = row(k);
    if (!ks) continue;
    for (const d of ['download', 'upload'] as const) {
      const a = ks[d]?.mibPerSec;
      const kc = kubectl?.[d]?.mibPerSec;
      const c = ceiling?.[d]?.mibPerSec;
      out.push({
        target: `${ks.label} ${d} ≥ kubectl and ≥ 0.9 × ceiling`,
        figures: `${num(a, 0)} vs kubectl ${num(kc, 0)}, ceiling ${num(c, 0)} MiB/s`,
        met: a === undefined || kc === undefined || c === undefined ? undefined : a >= kc && a >= 0.9 * c,
      });
    }
  }
  for (const k of ['socks5', 'http'] as const) {
    const ks = row(k);
    if (!ks) continue;
    for (const d of ['download', 'upload'] as const) {
      const a = ks[d]?.forwarderCpuPerGiB;
      const kc = kubectl?.[d]?.forwarderCpuPerGiB;
      out.push({
        target: `${ks.label} ${d} CPU s/GiB ≤ kubectl`,
        figures: `${num(a, 2)} vs ${num(kc, 2)}`,
        met: a === undefined || kc === undefined ? undefined : a <= kc,
      });
    }
  }
  const warm = r.latency.find((l) => l.label.startsWith('kubesocks SOCKS5, warm'));
  const kl = r.latency.find((l) => l.label.startsWith('kubectl'));
  if (warm && kl) {
    out.push({ target: 'kubesocks SOCKS5 warm connect-to-first-byte p50 ≤ kubectl', figures: `${num(warm.p50Ms, 2)} vs ${num(kl.p50Ms, 2)} ms`, met: warm.p50Ms <= kl.p50Ms });
  }
  return out;
}

export function renderReport(r: Results): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(`# kubesocks benchmark (${r.mode})`);
  parts.push(
    `${m.date} · node ${m.node} · ${m.cpuModel} × ${m.cpus} · ${m.memoryGiB} GiB · Linux ${m.kernel} · kubectl ${m.kubectl ?? 'not found'} · kubesocks ${m.kubesocks}${m.commit ? ` (${m.commit})` : ''}`,
  );
  if (r.failures.length) {
    parts.push(`## FAILED\n\n${r.failures.map((f) => `- **${f.phase}**: ${f.error.split('\n').join('\n  ')}`).join('\n')}`);
  }
  const summary = summaryTable(r);
  if (summary) parts.push(`## kubesocks vs kubectl, this run (issue 14 targets)\n\n${summary}`);
  const bytes = Number(r.config.transferBytes);
  parts.push(`## Bulk throughput (${mib(bytes)} each way, TLS to the simulated API server, sha256-checked)\n\n${throughputTable(r.throughput)}`);
  parts.push(`## New-connection latency (connect + handshake + one-byte echo)\n\n${latencyTable(r.latency)}`);
  if (r.upgrades) parts.push(`## Port-forward upgrades (simulator counters)\n\n${upgradesTable(r.upgrades)}`);
  if (r.startup) parts.push(`## Start-up and idle footprint (fresh processes, medians of ${r.startup[0]?.runs.length ?? 0})\n\n${startupTable(r.startup)}`);
  if (r.onePod) parts.push(`## Many sockets to one pod (fresh processes)\n\n${onePodTable(r.onePod)}`);
  if (r.rtt) {
    parts.push(
      `## Remote cluster: RTT ${r.rtt.rttMs} ms to the API server (relay)\n\n${startupTable(r.rtt.startup)}\n\nThe same at RTT ${r.rtt.probe.rttMs} ms (to count the first request's round trips):\n\n${startupTable(r.rtt.probe.startup)}\n\n${latencyTable(r.rtt.latency)}\n\n${throughputTable(r.rtt.throughput)}`,
    );
  }
  if (r.concurrency) parts.push(`## Concurrent sockets (fresh kubesocks process)\n\n${concurrencyTable(r.concurrency, r.throughput.find((t) => t.route === 'kubectl'))}`);
  if (r.services) parts.push(`## Many services at once (one socket held open to each)\n\n${servicesTable(r.services)}`);
  if (r.transports) {
    parts.push(`## Port-forward transports: SPDY and WebSockets (${mib(Number(r.config.transportBytes))} each way, sha256-checked)\n\n${transportsTable(r.transports)}`);
  }
  for (const p of r.profiles) parts.push(`## Where kubesocks spends its CPU: ${p.transfer.split(' at ')[0]} (node --cpu-prof, top self time)\n\n${profileTable(p)}`);
  const goals = targets(r);
  if (goals.length) {
    parts.push(
      `## Issue 5 targets (this run)\n\n${markdownTable(
        ['target', 'figures', 'met'],
        goals.map((g) => [g.target, g.figures, g.met === undefined ? '—' : g.met ? 'yes' : 'NO']),
      )}`,
    );
  }
  if (r.notes.length) parts.push(`## Notes\n\n${r.notes.map((n) => `- ${n}`).join('\n')}`);
  parts.push(`Finished in ${num(r.elapsedSeconds, 1)} s.`);
  return `${parts.join('\n\n')}\n`;
}
