/**
 * The one table that puts every kubesocks-vs-kubectl figure of a run side by
 * side, with the ratio and the target it is held to (issue 14). Reported,
 * never asserted: the exit status reflects only completion and integrity.
 */
import type { LatencyFigures } from './latency.js';
import { median, mib, MiB, num, ratio } from './lib/table.js';
import { markdownTable } from './lib/table.js';
import type { Results } from './report.js';
import type { StartupFigures } from './startup.js';
import type { ThroughputRow } from './throughput.js';

/** The floor of a first request into a new namespace and pod, in round trips (TLS, the lookups in parallel, the upgrade, the streams with the first bytes). */
export const FIRST_REQUEST_FLOOR_RTTS = 5;

interface Row {
  measurement: string;
  kubectl: string;
  kubesocks: string;
  ratio: string;
  target: string;
  met: boolean | undefined;
}

const dir = (d: 'download' | 'upload'): string => (d === 'download' ? 'down' : 'up');

function pick(rows: StartupFigures[] | undefined, label: string): StartupFigures | undefined {
  return rows?.find((r) => r.label.startsWith(label));
}

function latency(rows: LatencyFigures[], prefix: string): LatencyFigures | undefined {
  return rows.find((r) => r.label.startsWith(prefix));
}

function throughputRows(rows: ThroughputRow[], where: string): Row[] {
  const out: Row[] = [];
  const kc = rows.find((r) => r.route === 'kubectl' && !r.skipped);
  for (const key of ['socks5', 'http'] as const) {
    const ks = rows.find((r) => r.route === key && !r.skipped);
    if (!ks) continue;
    for (const d of ['download', 'upload'] as const) {
      const a = ks[d]?.mibPerSec;
      const b = kc?.[d]?.mibPerSec;
      out.push({
        measurement: `${where}${ks.label} ${dir(d)}, MiB/s (median of ${ks[d]?.runs.length ?? 0})`,
        kubectl: num(b, 0),
        kubesocks: num(a, 0),
        ratio: ratio(a, b),
        target: '≥ 1.00×',
        met: a === undefined || b === undefined ? undefined : a >= b,
      });
      const ac = ks[d]?.forwarderCpuPerGiBRuns;
      const bc = kc?.[d]?.forwarderCpuPerGiBRuns;
      if (ac?.length && bc?.length) {
        const worst = Math.max(...ac);
        out.push({
          measurement: `${where}${ks.label} ${dir(d)}, CPU s/GiB min–median–max of ${ac.length}`,
          kubectl: `${num(Math.min(...bc), 2)}–${num(median(bc), 2)}–${num(Math.max(...bc), 2)}`,
          kubesocks: `${num(Math.min(...ac), 2)}–${num(median(ac), 2)}–${num(worst, 2)}`,
          ratio: `${ratio(median(ac), median(bc))} (worst ${ratio(worst, median(bc))})`,
          target: 'every run ≤ kubectl median',
          met: worst <= median(bc),
        });
      }
    }
  }
  return out;
}

export function summaryRows(r: Results): Row[] {
  const rows: Row[] = [];
  const ks = pick(r.startup, 'kubesocks');
  const kc = pick(r.startup, 'kubectl');
  if (ks) {
    rows.push({
      measurement: 'start to `listening on` / `Forwarding from`, ms',
      kubectl: num(kc?.readyMs, 0),
      kubesocks: num(ks.readyMs, 0),
      ratio: ratio(ks.readyMs, kc?.readyMs),
      target: '≤ 300 ms',
      met: ks.readyMs <= 300,
    });
    rows.push({
      measurement: 'CPU time used by the ready line, ms (the start-up cost without the machine\'s load)',
      kubectl: num(kc?.cpuReadyMs, 0),
      kubesocks: num(ks.cpuReadyMs, 0),
      ratio: ratio(ks.cpuReadyMs, kc?.cpuReadyMs),
      target: '≤ 300 ms',
      met: ks.cpuReadyMs <= 300,
    });
    rows.push({
      measurement: 'RSS after start + one proxied connection',
      kubectl: mib(kc?.rssAfterOne),
      kubesocks: mib(ks.rssAfterOne),
      ratio: ratio(ks.rssAfterOne, kc?.rssAfterOne),
      target: '≤ 1.25×',
      met: kc ? ks.rssAfterOne <= 1.25 * kc.rssAfterOne : undefined,
    });
    rows.push({
      measurement: 'start + first request into a namespace not used before, ms',
      kubectl: num(kc?.startPlusFirstMs, 0),
      kubesocks: num(ks.startPlusFirstMs, 0),
      ratio: ratio(ks.startPlusFirstMs, kc?.startPlusFirstMs),
      target: '< kubectl',
      met: kc ? ks.startPlusFirstMs < kc.startPlusFirstMs : undefined,
    });
  }
  for (const sockets of [...new Set(r.onePod?.runs.map((x) => x.sockets) ?? [])]) {
    const a = r.onePod!.runs.find((x) => x.sockets === sockets && x.forwarder === 'kubesocks');
    const b = r.onePod!.runs.find((x) => x.sockets === sockets && x.forwarder === 'kubectl');
    if (!a) continue;
    const label = `${sockets} sockets × ${a.bytesEach / MiB} MiB echo to one pod`;
    rows.push({
      measurement: `${label}: ok`,
      kubectl: b ? `${b.verified}/${b.sockets}` : '—',
      kubesocks: `${a.verified}/${a.sockets}`,
      ratio: '',
      target: 'all',
      met: a.failed === 0,
    });
    for (const [what, av, bv, fmt] of [
      ['wall s', a.wallSeconds, b?.wallSeconds, (v: number | undefined) => num(v, 2)],
      ['peak RSS', a.peakRss, b?.peakRss, mib],
      ['CPU s', a.cpuSec, b?.cpuSec, (v: number | undefined) => num(v, 2)],
    ] as const) {
      rows.push({ measurement: `${label}: ${what}`, kubectl: fmt(bv), kubesocks: fmt(av), ratio: ratio(av, bv), target: '≤ 1.00×', met: bv === undefined ? undefined : av <= bv });
    }
  }
  const kl = latency(r.latency, 'kubectl');
  for (const [label, prefix] of [
    ['SOCKS5', 'kubesocks SOCKS5, warm'],
    ['HTTP CONNECT', 'kubesocks HTTP CONNECT, warm'],
  ] as const) {
    const l = latency(r.latency, prefix);
    if (!l) continue;
    rows.push({
      measurement: `warm connect + 1-byte echo p50, loopback, ${label}, ms`,
      kubectl: num(kl?.p50Ms, 2),
      kubesocks: num(l.p50Ms, 2),
      ratio: ratio(l.p50Ms, kl?.p50Ms),
      target: '≤ 1.00×',
      met: kl ? l.p50Ms <= kl.p50Ms : undefined,
    });
  }
  rows.push(...throughputRows(r.throughput, ''));
  if (r.services?.kubectl) {
    rows.push({
      measurement: `${r.services.services} services held open: peak RSS (one process vs ${r.services.kubectl.processes} kubectl)`,
      kubectl: mib(r.services.kubectl.peakRssSum),
      kubesocks: mib(r.services.kubesocksPeakRss),
      ratio: ratio(r.services.kubesocksPeakRss, r.services.kubectl.peakRssSum),
      target: '—',
      met: undefined,
    });
  }
  if (r.rtt) {
    const rtt = r.rtt.rttMs;
    const at = `RTT ${rtt} ms: `;
    const kr = latency(r.rtt.latency, 'kubectl');
    for (const [label, prefix] of [
      ['SOCKS5', 'kubesocks SOCKS5'],
      ['HTTP CONNECT', 'kubesocks HTTP CONNECT'],
    ] as const) {
      const l = latency(r.rtt.latency, prefix);
      if (!l) continue;
      rows.push({
        measurement: `${at}warm connect + 1-byte echo p50, ${label}, ms`,
        kubectl: num(kr?.p50Ms, 1),
        kubesocks: num(l.p50Ms, 1),
        ratio: ratio(l.p50Ms, kr?.p50Ms),
        target: '≤ 0.50×',
        met: kr ? l.p50Ms <= 0.5 * kr.p50Ms : undefined,
      });
    }
    const rs = pick(r.rtt.startup, 'kubesocks');
    const rc = pick(r.rtt.startup, 'kubectl');
    if (rs) {
      const trips = (label: string): number | undefined => r.rtt?.firstRequestRoundTrips[label];
      const ksTrips = trips(rs.label);
      const kcTrips = rc ? trips(rc.label) : undefined;
      rows.push({
        measurement: `${at}first request by name into a namespace and pod not used before, ms (round trips, from the growth between RTT ${rtt} and ${r.rtt.probe.rttMs} ms)`,
        kubectl: rc ? `${num(rc.firstRequestMs, 0)} (${num(kcTrips, 1)})` : '—',
        kubesocks: `${num(rs.firstRequestMs, 0)} (${num(ksTrips, 1)})`,
        ratio: ksTrips === undefined ? '—' : `${num(ksTrips / FIRST_REQUEST_FLOOR_RTTS, 2)}× floor`,
        target: `≤ 1.5 × ${FIRST_REQUEST_FLOOR_RTTS} round trips`,
        met: ksTrips === undefined ? undefined : ksTrips <= 1.5 * FIRST_REQUEST_FLOOR_RTTS,
      });
      rows.push({
        measurement: `${at}start to ready, ms`,
        kubectl: num(rc?.readyMs, 0),
        kubesocks: num(rs.readyMs, 0),
        ratio: ratio(rs.readyMs, rc?.readyMs),
        target: '—',
        met: undefined,
      });
      rows.push({
        measurement: `${at}start + first request, ms`,
        kubectl: num(rc?.startPlusFirstMs, 0),
        kubesocks: num(rs.startPlusFirstMs, 0),
        ratio: ratio(rs.startPlusFirstMs, rc?.startPlusFirstMs),
        target: '< kubectl',
        met: rc ? rs.startPlusFirstMs < rc.startPlusFirstMs : undefined,
      });
    }
    rows.push(...throughputRows(r.rtt.throughput, at).filter((x) => !x.measurement.includes('CPU')));
  }
  return rows;
}

export function summaryTable(r: Results): string {
  const rows = summaryRows(r);
  if (rows.length === 0) return '';
  return markdownTable(
    ['measurement', 'kubectl', 'kubesocks', 'kubesocks ÷ kubectl', 'target', 'met'],
    rows.map((x) => [x.measurement, x.kubectl, x.kubesocks, x.ratio, x.target, x.met === undefined ? '—' : x.met ? 'yes' : 'NO']),
  );
}
