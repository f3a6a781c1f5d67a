/**
 * Soak: steady load through the real proxy with pod churn, watching for
 * growth in memory and handles. Not part of CI.
 *
 *   node --import tsx test/faults/soak.ts --minutes 30
 *
 * Load: `--rate` new connections per second (default 300), alternating a
 * SOCKS5 echo exchange and an HTTP GET through the proxy's HTTP front, at
 * most `--concurrency` in flight. Churn: every `--churn-s` seconds (default
 * 3) one pod, round robin, is deleted and added again (a new uid, as a
 * rollout does), or made not ready, or marked terminating — the last two
 * undone half a period later. Every
 * `--report-s` seconds (default 30) one line: RSS, heap, ArrayBuffers,
 * handles, connections done, errors by code, proxy/pool/simulator counters.
 *
 * Each report is taken at a quiet point: the load pauses until nothing is in
 * flight and the proxy and pool are idle (about 1 s: the runtime closes a
 * pod socket 1 s after a half-close), so handle counts compare like with
 * like.
 *
 * At the end the run fails (exit 1) if, from the quiet point that ends the
 * warm-up (`--warmup-s`, default a quarter of the run, at most 5 minutes) to
 * the last one, each after a full GC, RSS grew more than
 * `--max-rss-growth-mib` (default 64), heap plus ArrayBuffers more than
 * `--max-heap-growth-mib` (default 32), handles more than
 * `--max-handle-growth` (default 40), if errors exceeded
 * `--max-error-ratio` of connections (default 0.01) — errors are expected
 * only for connections a churn step cut — or if the proxy is not idle 15 s
 * after the load stopped.
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';
import { activeHandles, echoOnce, mib, socketHandles, socks5, startRig, type Rig } from '../helpers/faults-rig.js';

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
    'max-heap-growth-mib': { type: 'string', default: '32' },
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
const MAX_HEAP_GROWTH = number('max-heap-growth-mib') * 1024 * 1024;
const MAX_ERROR_RATIO = number('max-error-ratio');

/** A full GC at quiet points, so heap and RSS compare like with like (no --expose-gc needed on the command line). */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

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
  const text = (e.message ?? String(err)).replace(/\d+/g, 'N').slice(0, 70);
  const key = typeof e.code === 'string' ? `${e.code} ${text}` : text;
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

/**
 * One churn step disturbs one pod (round robin over both services), and
 * undoes a readiness or terminating flip half a period later, so every
 * service always has ready pods: the load should see no error beyond the
 * connections a pod deletion cut.
 */
function churnStep(rig: Rig, step: number): void {
  const app = step % 2 === 0 ? 'echo' : 'web';
  const i = Math.floor(step / 2) % PODS;
  const name = `${app}-${i}`;
  const kind = (['replace', 'not-ready', 'terminating'] as const)[Math.floor(step / 2) % 3] ?? 'replace';
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      console.error(`churn ${what} ${name} failed: ${(err as Error).message}`);
    }
  };
  attempt(kind, () => {
    if (kind === 'replace') {
      rig.cluster.deletePod(NS, name);
      rig.cluster.addPod(pod(app, i));
    } else if (kind === 'not-ready') {
      rig.cluster.setPodReady(NS, name, false);
    } else {
      rig.cluster.setPodTerminating(NS, name, true);
    }
  });
  churnLog.set(kind, (churnLog.get(kind) ?? 0) + 1);
  if (kind !== 'replace') {
    setTimeout(() => attempt(`undo ${kind}`, () => (kind === 'not-ready' ? rig.cluster.setPodReady(NS, name, true) : rig.cluster.setPodTerminating(NS, name, false))), CHURN_MS / 2);
  }
}

// ---------------------------------------------------------------------------
// Measuring

interface Sample {
  atMs: number;
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  /** Active sockets other than connections to the API server (clients, proxy, kubelet, backends): 0 when idle. */
  sockets: number;
  /** Active handles of every kind but timers (API connections, pooled port-forward connections, servers included). */
  handles: number;
}

function sample(rig: Rig, startedAt: number): Sample {
  const m = process.memoryUsage();
  const handles = activeHandles().filter((h) => h.constructor.name !== 'Timeout' && h.constructor.name !== 'Immediate').length;
  const sockets = socketHandles(Number(new URL(rig.cluster.url).port));
  return { atMs: performance.now() - startedAt, rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, sockets, handles };
}

function report(rig: Rig, s: Sample, lastOk: number, intervalMs: number, note: string): void {
  const errs = [...errors.entries()].map(([k, v]) => `${v}× "${k}"`).join(', ') || 'none';
  const p = rig.proxy.stats();
  const pool = rig.dialer.stats();
  const sim = rig.cluster.counters();
  console.log(
    `[${(s.atMs / 1000).toFixed(0).padStart(5)} s] rss ${mib(s.rss)} heap ${mib(s.heapUsed)} arrayBuffers ${mib(s.arrayBuffers)} ` +
      `handles ${s.handles} sockets ${s.sockets} | ok ${counts.ok} (${((counts.ok - lastOk) / (intervalMs / 1000)).toFixed(0)}/s) failed ${counts.failed} skipped ${counts.skipped} in-flight ${inFlight} | errors ${errs} | ` +
      `pool conns ${pool.connections} upgrades ${pool.upgrades} | sim pf-conns ${sim.openConnections} | proxy accepted ${p.accepted} | ${note}`,
  );
}

// ---------------------------------------------------------------------------

/**
 * Stops launching, waits until nothing is in flight and the proxy and the
 * pool are idle (the runtime closes a pod socket 1 s after a half-close),
 * takes a sample, and resumes. Handles are compared only at such quiet
 * points: under load their count follows the connections open at that
 * instant, which says nothing about leaks.
 */
async function quietPoint(rig: Rig, startedAt: number, pause: { on: boolean }): Promise<Sample & { quietMs: number }> {
  pause.on = true;
  const started = performance.now();
  const idle = (): boolean => inFlight === 0 && rig.proxy.stats().openSockets === 0 && rig.dialer.stats().pairs === 0;
  while (!idle() && performance.now() - started < 15_000) await sleep(20);
  collectGarbage();
  collectGarbage();
  const s = sample(rig, startedAt);
  pause.on = false;
  return { ...s, quietMs: performance.now() - started };
}

async function main(): Promise<number> {
  console.log(
    `soak: ${MINUTES} min, ${RATE} connections/s (SOCKS5 echo + HTTP), churn every ${CHURN_MS / 1000} s, ` +
      `report (with a quiet point) every ${REPORT_MS / 1000} s, warm-up ${(WARMUP_MS / 1000).toFixed(0)} s`,
  );
  const rig = await startRig(scenario, { maxRecords: 0, dialer: { direct: 'deny' } });
  const startedAt = performance.now();
  const pause = { on: false };
  let n = 0;
  const perTick = RATE / 100;
  let carry = 0;
  const loadTimer = setInterval(() => {
    if (pause.on) return;
    carry += perTick;
    while (carry >= 1) {
      carry--;
      launch(rig, n++);
    }
  }, 10);
  let step = 0;
  const churnTimer = CHURN_MS > 0 ? setInterval(() => churnStep(rig, step++), CHURN_MS) : undefined;

  let warmQuiet: Sample | undefined;
  let lastQuiet: Sample | undefined;
  let lastOk = 0;
  let lastReportAt = 0;
  let nextReport = Math.min(REPORT_MS, WARMUP_MS);
  while (performance.now() - startedAt < TOTAL_MS) {
    const now = performance.now() - startedAt;
    await sleep(Math.max(0, Math.min(nextReport, TOTAL_MS) - now));
    if (performance.now() - startedAt >= TOTAL_MS) break;
    const q = await quietPoint(rig, startedAt, pause);
    const isWarmPoint = !warmQuiet && q.atMs >= WARMUP_MS - 1000;
    if (isWarmPoint) warmQuiet = q;
    else if (warmQuiet) lastQuiet = q;
    report(rig, q, lastOk, q.atMs - lastReportAt, `quiet in ${Math.round(q.quietMs)} ms${isWarmPoint ? ', end of warm-up: the baseline' : ''}`);
    lastOk = counts.ok;
    lastReportAt = q.atMs;
    nextReport = warmQuiet ? lastReportAt + REPORT_MS : Math.min(lastReportAt + REPORT_MS, WARMUP_MS);
  }
  clearInterval(loadTimer);
  if (churnTimer) clearInterval(churnTimer);
  const final = await quietPoint(rig, startedAt, pause);
  report(rig, final, lastOk, final.atMs - lastReportAt, 'final quiet point');
  if (warmQuiet) lastQuiet = final;
  const p = rig.proxy.stats();
  const pool = rig.dialer.stats();
  await rig.close();

  const problems: string[] = [];
  const total = counts.ok + counts.failed;
  console.log(`churn steps: ${[...churnLog.entries()].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  console.log(`connections: ${counts.ok} ok, ${counts.failed} failed (${((100 * counts.failed) / Math.max(1, total)).toFixed(3)} %), ${counts.skipped} not started (concurrency cap)`);
  if (total === 0) problems.push('no connection was made');
  if (counts.failed > MAX_ERROR_RATIO * total) problems.push(`errors ${counts.failed} of ${total} exceed ${MAX_ERROR_RATIO * 100} %`);
  if (inFlight > 0 || p.openSockets !== 0 || pool.pairs !== 0) {
    problems.push(`not idle 15 s after the load stopped: in flight ${inFlight}, proxy open sockets ${p.openSockets}, pool pairs ${pool.pairs}`);
  }
  if (warmQuiet && lastQuiet) {
    const rssGrowth = lastQuiet.rss - warmQuiet.rss;
    const heapGrowth = lastQuiet.heapUsed + lastQuiet.arrayBuffers - (warmQuiet.heapUsed + warmQuiet.arrayBuffers);
    const socketGrowth = lastQuiet.sockets - warmQuiet.sockets;
    const handleGrowth = lastQuiet.handles - warmQuiet.handles;
    console.log(
      `growth after warm-up (quiet points, after a full GC): rss ${mib(warmQuiet.rss)} → ${mib(lastQuiet.rss)} = ${mib(rssGrowth)} (bound ${mib(MAX_RSS_GROWTH)}); ` +
        `heap+ArrayBuffers ${mib(heapGrowth)} (bound ${mib(MAX_HEAP_GROWTH)}); ` +
        `sockets ${warmQuiet.sockets} → ${lastQuiet.sockets}, handles ${warmQuiet.handles} → ${lastQuiet.handles} (bound +${MAX_HANDLE_GROWTH})`,
    );
    if (rssGrowth > MAX_RSS_GROWTH) problems.push(`RSS grew ${mib(rssGrowth)} after warm-up`);
    if (heapGrowth > MAX_HEAP_GROWTH) problems.push(`heap + ArrayBuffers grew ${mib(heapGrowth)} after warm-up`);
    if (socketGrowth > MAX_HANDLE_GROWTH || handleGrowth > MAX_HANDLE_GROWTH) problems.push(`handles grew ${handleGrowth} (sockets ${socketGrowth}) after warm-up`);
  } else {
    problems.push('the run was too short to compare the end of the warm-up with the end of the run');
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
