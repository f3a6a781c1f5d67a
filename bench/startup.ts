/**
 * Start-up and the idle footprint: a fresh forwarder process is spawned, the
 * time to its ready line (`listening on` / `Forwarding from`) and its RSS
 * then are taken; then ONE connection goes through it (kubesocks: SOCKS5 by
 * service name; kubectl: to its forwarded port) with a one-byte echo, and its
 * RSS half a second later. kubesocks and kubectl alternate, `runs` times each,
 * and the medians are reported.
 */
import { echoByte, open } from './lib/client.js';
import type { Route } from './lib/client.js';
import { log, startKubesocks, startPortForward } from './lib/harness.js';
import type { Sim } from './lib/harness.js';
import { median, MiB } from './lib/table.js';

export interface StartupSample {
  /** Spawn to the ready line, ms. */
  readyMs: number;
  /** CPU time (user + system) the process had used at its ready line, ms: what the start costs, whatever the machine's load. */
  cpuReadyMs: number;
  /** Ready line to the one byte echoed back on the first connection, ms. */
  firstRequestMs: number;
  rssReady: number;
  /** RSS 500 ms after the first connection's echo, the connection still open. */
  rssAfterOne: number;
  /** CPU time the first request cost the forwarder (ready line to 500 ms after the echo), ms. */
  cpuFirstMs: number;
}

export interface StartupFigures {
  label: string;
  runs: StartupSample[];
  readyMs: number;
  cpuReadyMs: number;
  firstRequestMs: number;
  cpuFirstMs: number;
  /** readyMs + firstRequestMs, median of the sums. */
  startPlusFirstMs: number;
  rssReady: number;
  rssAfterOne: number;
}

function summarize(label: string, runs: StartupSample[]): StartupFigures {
  return {
    label,
    runs,
    readyMs: median(runs.map((r) => r.readyMs)),
    cpuReadyMs: median(runs.map((r) => r.cpuReadyMs)),
    firstRequestMs: median(runs.map((r) => r.firstRequestMs)),
    cpuFirstMs: median(runs.map((r) => r.cpuFirstMs)),
    startPlusFirstMs: median(runs.map((r) => r.readyMs + r.firstRequestMs)),
    rssReady: median(runs.map((r) => r.rssReady)),
    rssAfterOne: median(runs.map((r) => r.rssAfterOne)),
  };
}

async function firstRequest(route: Route): Promise<{ ms: number; close(): void }> {
  const t0 = performance.now();
  const stream = await open(route, 30_000);
  await echoByte(stream, 30_000);
  return { ms: performance.now() - t0, close: () => stream.destroy() };
}

export interface StartupTargets {
  /** kubesocks: the host name of the first request (a namespace and pod not used before). */
  kubesocksHost: string;
  port: number;
  /** kubectl: what it forwards (`svc/NAME`), and its namespace. */
  kubectlTarget: string;
  kubectlNamespace: string;
}

export async function measureStartup(
  sim: Sim,
  kubectl: string | undefined,
  targets: StartupTargets,
  runs: number,
  what = 'start-up',
): Promise<StartupFigures[]> {
  const ks: StartupSample[] = [];
  const kc: StartupSample[] = [];
  for (let i = 0; i < runs; i++) {
    {
      const t0 = performance.now();
      const p = await startKubesocks(sim, 'kubesocks (start-up)');
      try {
        const readyMs = performance.now() - t0;
        const atReady = p.sample();
        const rssReady = atReady?.rss ?? Number.NaN;
        const cpuReadyMs = (atReady?.cpuSec ?? Number.NaN) * 1000;
        const first = await firstRequest({ kind: 'socks5', proxy: p.proxy, host: targets.kubesocksHost, port: targets.port });
        await new Promise((r) => setTimeout(r, 500));
        const after = p.sample();
        ks.push({ readyMs, cpuReadyMs, firstRequestMs: first.ms, rssReady, rssAfterOne: after?.rss ?? Number.NaN, cpuFirstMs: (after?.cpuSec ?? Number.NaN) * 1000 - cpuReadyMs });
        first.close();
      } finally {
        await p.child.stop(10_000);
      }
    }
    if (kubectl) {
      const pf = await startPortForward(kubectl, sim, targets.kubectlTarget, [targets.port], 'kubectl (start-up)', targets.kubectlNamespace);
      try {
        const atReady = pf.sample();
        const rssReady = atReady?.rss ?? Number.NaN;
        const cpuReadyMs = (atReady?.cpuSec ?? Number.NaN) * 1000;
        const first = await firstRequest({ kind: 'tcp', address: pf.ports.get(targets.port)! });
        await new Promise((r) => setTimeout(r, 500));
        const after = pf.sample();
        kc.push({ readyMs: pf.readyMs, cpuReadyMs, firstRequestMs: first.ms, rssReady, rssAfterOne: after?.rss ?? Number.NaN, cpuFirstMs: (after?.cpuSec ?? Number.NaN) * 1000 - cpuReadyMs });
        first.close();
      } finally {
        await pf.child.stop();
      }
    }
  }
  const rows = [summarize('kubesocks', ks)];
  if (kc.length > 0) rows.push(summarize('kubectl port-forward', kc));
  for (const r of rows) {
    log(`  ${what} ${r.label}: ready ${r.readyMs.toFixed(0)} ms (CPU ${r.cpuReadyMs.toFixed(0)} ms), first request ${r.firstRequestMs.toFixed(1)} ms (CPU ${r.cpuFirstMs.toFixed(0)} ms), RSS ${(r.rssReady / MiB).toFixed(1)} → ${(r.rssAfterOne / MiB).toFixed(1)} MiB after one connection`);
  }
  return rows;
}
