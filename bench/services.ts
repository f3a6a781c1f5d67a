/**
 * Many services at once: one socket held open to each of N services. One
 * kubesocks process carries them all; with kubectl a user runs one
 * `kubectl port-forward svc/NAME` per service. Compares the peak RSS of the
 * one process with the sum over the N kubectl processes, and records how long
 * each kubectl took from spawn to the first echoed byte (kubectl's "cold").
 */
import type { Duplex } from 'node:stream';
import { echoByte, open } from './lib/client.js';
import { log, startPortForward } from './lib/harness.js';
import type { Kubesocks, PortForward, Sim } from './lib/harness.js';
import { RssPoller, sample } from './lib/procs.js';
import { serviceHost, PORTS } from './lib/scenario.js';
import { median, MiB, percentile } from './lib/table.js';

export interface ServicesFigures {
  services: number;
  kubesocksIdleRss: number;
  kubesocksPeakRss: number;
  /** First byte through kubesocks to each service (a cold connect per service), median ms. */
  kubesocksFirstByteP50Ms: number;
  kubectl?: {
    processes: number;
    /** Sum of each process's VmHWM. */
    peakRssSum: number;
    /** Largest sum of VmRSS seen at one moment (polled). */
    polledRssSum: number;
    /** Spawn to `Forwarding from`, median ms. */
    readyP50Ms: number;
    /** Spawn to the first echoed byte, median and p99 ms. */
    firstByteP50Ms: number;
    firstByteP99Ms: number;
  };
}

async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

export async function measureServices(sim: Sim, kubesocks: Kubesocks, kubectl: string | undefined, services: number): Promise<ServicesFigures> {
  const held: Duplex[] = [];
  try {
    const idle = kubesocks.sample();
    const firstBytes = await pool(services, 5, async (i) => {
      const t0 = performance.now();
      const s = await open({ kind: 'socks5', proxy: kubesocks.proxy, host: serviceHost(`svc-${i}`), port: PORTS.echo }, 30_000);
      held.push(s);
      await echoByte(s, 15_000);
      return performance.now() - t0;
    });
    await new Promise((r) => setTimeout(r, 500));
    const peak = kubesocks.sample();
    const figures: ServicesFigures = {
      services,
      kubesocksIdleRss: idle?.rss ?? Number.NaN,
      kubesocksPeakRss: peak?.hwm ?? Number.NaN,
      kubesocksFirstByteP50Ms: median(firstBytes),
    };
    log(`  kubesocks, ${services} services held open: peak RSS ${(figures.kubesocksPeakRss / MiB).toFixed(1)} MiB (idle ${(figures.kubesocksIdleRss / MiB).toFixed(1)} MiB)`);
    for (const s of held.splice(0)) s.destroy();

    if (!kubectl) return figures;
    const forwards: PortForward[] = [];
    const poller = new RssPoller(() => forwards.map((f) => f.child.pid), 100);
    try {
      const timings = await pool(services, 5, async (i) => {
        const t0 = performance.now();
        const pf = await startPortForward(kubectl, sim, `svc/svc-${i}`, [PORTS.echo], `kubectl svc-${i}`);
        forwards.push(pf);
        const s = await open({ kind: 'tcp', address: pf.ports.get(PORTS.echo)! }, 15_000);
        held.push(s);
        await echoByte(s, 15_000);
        return { readyMs: pf.readyMs, firstByteMs: performance.now() - t0 };
      });
      await new Promise((r) => setTimeout(r, 500));
      const polled = poller.stop();
      const peakRssSum = forwards.reduce((sum, f) => sum + (sample(f.child.pid)?.hwm ?? 0), 0);
      const first = timings.map((t) => t.firstByteMs);
      figures.kubectl = {
        processes: forwards.length,
        peakRssSum,
        polledRssSum: polled,
        readyP50Ms: median(timings.map((t) => t.readyMs)),
        firstByteP50Ms: median(first),
        firstByteP99Ms: percentile(first, 99),
      };
      log(`  ${forwards.length} kubectl port-forward processes: peak RSS sum ${(peakRssSum / MiB).toFixed(1)} MiB; spawn→first byte p50 ${figures.kubectl.firstByteP50Ms.toFixed(0)} ms`);
    } finally {
      poller.stop();
      for (const s of held.splice(0)) s.destroy();
      await Promise.all(forwards.map((f) => f.child.stop()));
    }
    return figures;
  } finally {
    for (const s of held) s.destroy();
  }
}
