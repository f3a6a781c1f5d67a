/**
 * Soak: steady load through the real proxy with pod churn, watching for
 * growth in memory and handles. Not part of CI.
 *
 *   node --import tsx test/faults/soak.ts --minutes 30
 *
 * Load: `--rate` new connections per second (default 300), alternating a
 * SOCKS5 echo exchange and an HTTP GET through the proxy's HTTP front, at
 * most `--concurrency` in flight. Churn: every `--churn-s` seconds (default
 * 3) one of: a pod deleted and added again (a new uid, as a rollout does), a
 * pod's readiness flipped, a pod marked terminating and back. Every
 * `--report-s` seconds (default 30) one line: RSS, heap, ArrayBuffers,
 * handles, connections done, errors by code, proxy/pool/simulator counters.
 *
 * At the end the run fails (exit 1) if, compared with the sample taken at the
 * end of the warm-up (`--warmup-s`, default a quarter of the run, at most
 * 5 minutes), RSS grew more than `--max-rss-growth-mib` (default 64), socket
 * handles more than `--max-handle-growth` (default 40), or errors exceeded
 * `--max-error-ratio` of connections (default 0.01) — errors are expected
 * only for the connections a churn step cut.
 */
import { parseArgs } from 'node:util';
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';
import { activeResources, echoOnce, mib, socks5, startRig, type Rig } from '../helpers/faults-rig.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '200' },
    'churn-s': { type: 'string', default: '3' },
    'report-s': { type: 'string', default: '30' },
    'warmup-s': { type: 'string' },
    'max-rss-growth-mib': { type: 'string', default: '64' },
    'max-handle-growth': { type: 'string', default: '40' },
    'max-error-ratio': { type: 'string', default: '0.01' },
  },
});

const number = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${String(values[name])}`);
  return n;
};

const MINUTES = number('minutes');
const RATE = number('rate');
const CONCURRENCY = number('concurrency');
const CHURN_MS = number('churn-s') * 1000;
const REPORT_MS = number('report-s') * 1000;
const TOTAL_MS = MINUTES * 60_000;
const WARMUP_MS = values['warmup-s'] !== undefined ? number('warmup-s') * 1000 : Math.min(5 * 60_000, TOTAL_MS / 4);
const MAX_RSS_GROWTH = number('max-rss-growth-mib') * 1024 * 1024;
const MAX_HANDLE_GROWTH = number('max-handle-growth');
const MAX_ERROR_RATIO = number('max-error-ratio');

const NS = 'soak';
const PODS = 6;

function pod(app: 'echo' | 'web', i: number): ScenarioPod {
  return {
    name: `${app}-${i}`,
    namespace: NS,
    labels: { app },
    ip: `10.244.${app === 'echo' ? 1 : 2}.${10 + i}`,
    phase: 'Running',
    ready: true,
    ports: [app === 'echo' ? { name: 'main', containerPort: 7, backend: 'echo' } : { name: 'main', containerPort: 8080, backend: 'http' }],
  };
}

const scenario: Scenario = {
  namespaces: [NS],
  pods: [...Array.from({ length: PODS }, (_, i) => pod('echo', i)), ...Array.from({ length: PODS }, (_, i) => pod('web', i))],
  services: [
    { name: 'echo', namespace: NS, selector: { app: 'echo' }, ports: [{ name: 'main', port: 7, targetPort: 'main' }] },
    { name: 'web', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'main', port: 80, targetPort: 'main' }] },
  ],
};

// ---------------------------------------------------------------------------
// Load

const counts = { ok: 0, failed: 0, skipped: 0 };
const errors = new Map<string, number>();
let inFlight = 0;

function noteError(err: unknown): void {
  counts.failed++;
  const e = err as { code?: unknown; message?: string };
  const key = typeof e.code === 'string' ? e.code : (e.message ?? String(err)).replace(/\d+/g, 'N').slice(0, 60);
  errors.set(key, (errors.get(key) ?? 0) + 1);
}

async function socksEcho(rig: Rig, n: number): Promise<void> {
  let socket: Socket | undefined;
  try {
    socket = await socks5(rig.proxyPort, `echo.${NS}`, 7, 10_000);
    await echoOnce(socket, `soak ${n} ${'x'.repeat(48)}`, 10_000);
  } finally {
    socket?.destroy();
  }
}

function httpGet(rig: Rig, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: rig.proxyPort, path: `http://web.${NS}/soak-${n}`, agent: false, timeout: 10_000, headers: { Connection: 'close' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.once('end', () => {
          if (res.statusCode === 200 && body.startsWith('pod web-')) resolve();
          else reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body.trim().slice(0, 80)}`), { code: `HTTP_${res.statusCode}` }));
        });
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'CLIENT_TIMEOUT' })));
    req.once('error', reject);
    req.end();
  });
}

function launch(rig: Rig, n: number): void {
  if (inFlight >= CONCURRENCY) {
    counts.skipped++;
    return;
  }
  inFlight++;
  (n % 2 === 0 ? socksEcho(rig, n) : httpGet(rig, n)).then(
    () => counts.ok++,
    (err: unknown) => noteError(err),
  ).finally(() => inFlight--);
}

// ---------------------------------------------------------------------------
// Churn

const churnLog = new Map<string, number>();

function churnStep(rig: Rig, step: number): void {
  const app = step % 2 === 0 ? 'echo' : 'web';
  const i = Math.floor(step / 2) % PODS;
  const name = `${app}-${i}`;
  const kind = ['replace', 'not-ready', 'ready', 'terminating', 'alive'][Math.floor(step / (2 * PODS)) % 5] ?? 'replace';
  try {
    if (kind === 'replace') {
      rig.cluster.deletePod(NS, name);
      rig.cluster.addPod(pod(app, i));
    } else if (kind === 'not-ready' || kind === 'ready') {
      rig.cluster.setPodReady(NS, name, kind === 'ready');
    } else {
      rig.cluster.setPodTerminating(NS, name, kind === 'terminating');
    }
    churnLog.set(kind, (churnLog.get(kind) ?? 0) + 1);
  } catch (err) {
    console.error(`churn ${kind} ${name} failed: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------
// Measuring

interface Sample {
  atMs: number;
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  /** Socket handles, less idle keep-alive connections to the API server (a bounded pool; two ends each). */
  sockets: number;
  handles: number;
}

function sample(rig: Rig, startedAt: number): Sample {
  const m = process.memoryUsage();
  const resources = activeResources();
  const idle = Object.values(rig.dialer.client.agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);
  const sockets = (resources['TCPSocketWrap'] ?? 0) + (resources['TCPServerWrap'] ?? 0) - 2 * idle;
  const handles = Object.entries(resources).reduce((n, [type, c]) => (type === 'Timeout' || type === 'Immediate' ? n : n + c), 0) - 2 * idle;
  return { atMs: performance.now() - startedAt, rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, sockets, handles };
}

function report(rig: Rig, s: Sample, lastOk: number, intervalMs: number): void {
  const errs = [...errors.entries()].map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
  const p = rig.proxy.stats();
  const pool = rig.dialer.stats();
  const sim = rig.cluster.counters();
  console.log(
    `[${(s.atMs / 1000).toFixed(0).padStart(5)} s] rss ${mib(s.rss)} heap ${mib(s.heapUsed)} arrayBuffers ${mib(s.arrayBuffers)} ` +
      `handles ${s.handles} sockets ${s.sockets} | ok ${counts.ok} (${((counts.ok - lastOk) / (intervalMs / 1000)).toFixed(0)}/s) failed ${counts.failed} skipped ${counts.skipped} in-flight ${inFlight} | errors ${errs} | ` +
      `proxy open ${p.openSockets} handshakes ${p.handshakes} | pool conns ${pool.connections} pairs ${pool.pairs} upgrades ${pool.upgrades} | sim pf-conns ${sim.openConnections}`,
  );
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  console.log(
    `soak: ${MINUTES} min, ${RATE} connections/s (SOCKS5 echo + HTTP), churn every ${CHURN_MS / 1000} s, report every ${REPORT_MS / 1000} s, warm-up ${(WARMUP_MS / 1000).toFixed(0)} s`,
  );
  const rig = await startRig(scenario, { maxRecords: 0, dialer: { direct: 'deny' } });
  const idle = sample(rig, performance.now());
  const startedAt = performance.now();
  let n = 0;
  const perTick = RATE / 100;
  let carry = 0;
  const loadTimer = setInterval(() => {
    carry += perTick;
    while (carry >= 1) {
      carry--;
      launch(rig, n++);
    }
  }, 10);
  let step = 0;
  const churnTimer = CHURN_MS > 0 ? setInterval(() => churnStep(rig, step++), CHURN_MS) : undefined;

  let warm: Sample | undefined;
  const after: Sample[] = [];
  let lastOk = 0;
  let lastReportAt = 0;
  while (performance.now() - startedAt < TOTAL_MS) {
    const nextReport = lastReportAt + REPORT_MS;
    const untilWarm = warm ? Infinity : WARMUP_MS - (performance.now() - startedAt);
    const wait = Math.max(0, Math.min(nextReport - (performance.now() - startedAt), untilWarm, TOTAL_MS - (performance.now() - startedAt)));
    await sleep(wait);
    const s = sample(rig, startedAt);
    if (!warm && s.atMs >= WARMUP_MS) {
      warm = s;
      console.log(`warm-up over: baseline rss ${mib(s.rss)}, sockets ${s.sockets}, handles ${s.handles}`);
    } else if (warm) {
      after.push(s);
    }
    if (s.atMs >= nextReport - 5) {
      report(rig, s, lastOk, s.atMs - lastReportAt);
      lastOk = counts.ok;
      lastReportAt = s.atMs;
    }
  }
  clearInterval(loadTimer);
  if (churnTimer) clearInterval(churnTimer);
  // Let what is in flight finish (and the runtime's 1 s half-close grace pass): the final, idle sample.
  const drainStarted = performance.now();
  while (inFlight > 0 && performance.now() - drainStarted < 15_000) await sleep(50);
  await sleep(1500);
  const final = sample(rig, startedAt);
  report(rig, final, lastOk, final.atMs - lastReportAt);
  const p = rig.proxy.stats();
  const pool = rig.dialer.stats();
  await rig.close();

  const problems: string[] = [];
  const total = counts.ok + counts.failed;
  console.log(`churn steps: ${[...churnLog.entries()].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  console.log(`connections: ${counts.ok} ok, ${counts.failed} failed (${((100 * counts.failed) / Math.max(1, total)).toFixed(3)} %), ${counts.skipped} not started (concurrency cap)`);
  if (total === 0) problems.push('no connection was made');
  if (counts.failed > MAX_ERROR_RATIO * total) problems.push(`errors ${counts.failed} of ${total} exceed ${MAX_ERROR_RATIO * 100} %`);
  if (inFlight > 0) problems.push(`${inFlight} connections still in flight 15 s after the load stopped`);
  if (p.openSockets !== 0 || pool.pairs !== 0) problems.push(`after the load: proxy open sockets ${p.openSockets}, pool pairs ${pool.pairs} (expected 0)`);
  if (warm && after.length > 0) {
    // Under load, the last samples against the warm-up one; the least of them, not the peak:
    // a GC cycle or a burst of connections raises a single sample, a leak raises them all.
    const tail = after.slice(-3);
    const rssGrowth = Math.min(...tail.map((s) => s.rss)) - warm.rss;
    const socketGrowth = Math.min(...tail.map((s) => s.sockets)) - warm.sockets;
    const handleGrowth = Math.min(...tail.map((s) => s.handles)) - warm.handles;
    console.log(`idle before the load: sockets ${idle.sockets}, handles ${idle.handles}; idle after it: sockets ${final.sockets}, handles ${final.handles}`);
    console.log(`growth since warm-up: rss ${mib(rssGrowth)} (bound ${mib(MAX_RSS_GROWTH)}), sockets ${socketGrowth}, handles ${handleGrowth} (bound ${MAX_HANDLE_GROWTH})`);
    if (rssGrowth > MAX_RSS_GROWTH) problems.push(`RSS grew ${mib(rssGrowth)} after warm-up`);
    if (socketGrowth > MAX_HANDLE_GROWTH || handleGrowth > MAX_HANDLE_GROWTH) problems.push(`handles grew ${handleGrowth} (sockets ${socketGrowth}) after warm-up`);
  } else {
    problems.push('the run ended before the warm-up did (or right after it)');
  }
  if (problems.length > 0) {
    console.log(`SOAK FAILED: ${problems.join('; ')}`);
    return 1;
  }
  console.log('SOAK PASSED');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
