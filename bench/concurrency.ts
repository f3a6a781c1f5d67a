/**
 * Many sockets at once: N SOCKS5 connections to the pods of one service are
 * opened (at most `handshakesInFlight` handshakes at a time, below the
 * proxy's cap on handshakes in flight), all held open, then every one
 * sends BYTES to the echo backend and reads them back, SHA-256-checked.
 * Measures wall time and the peak RSS and CPU time of a fresh kubesocks
 * process that did nothing else.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { echoBulk, open, patternMiB } from './lib/client.js';
import { log } from './lib/harness.js';
import type { Kubesocks, Sim } from './lib/harness.js';
import { sample } from './lib/procs.js';
import { GiB, MiB } from './lib/table.js';

export interface ConcurrencyFigures {
  sockets: number;
  pods: number;
  bytesEach: number;
  /** Both directions. */
  bytesMoved: number;
  /** First connect to last verified byte. */
  wallSeconds: number;
  /** All sockets connected (SOCKS5 done) after this long. */
  connectSeconds: number;
  /** The transfers, once all were connected. */
  transferSeconds: number;
  kubesocksPeakRss: number;
  kubesocksRssBefore: number;
  kubesocksCpuSec: number;
  kubesocksCpuPerGiB: number;
  simCpuPerGiB: number;
  upgrades: number;
  verified: number;
}

export async function measureConcurrency(
  sim: Sim,
  kubesocks: Kubesocks,
  host: string,
  port: number,
  options: { sockets: number; pods: number; bytesEach: number; handshakesInFlight: number; timeoutMs: number },
): Promise<ConcurrencyFigures> {
  const { sockets, bytesEach } = options;
  if (bytesEach > MiB) throw new Error('concurrency: at most 1 MiB per socket');
  const data = patternMiB().subarray(0, bytesEach);
  const digest = createHash('sha256').update(data).digest('hex');
  await sim.resetCounters();
  const before = kubesocks.sample();
  const simBefore = sample(sim.child.pid);
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const t0 = performance.now();

  const streams: Duplex[] = [];
  try {
    let next = 0;
    const opener = async (): Promise<void> => {
      while (next < sockets) {
        next++;
        if (deadline.aborted) throw new Error('concurrency: deadline passed while connecting');
        streams.push(await open({ kind: 'socks5', proxy: kubesocks.proxy, host, port }, 30_000));
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.handshakesInFlight, sockets) }, opener));
    const t1 = performance.now();
    log(`  ${sockets} sockets connected in ${((t1 - t0) / 1000).toFixed(2)} s; transferring`);
    const remaining = Math.max(1000, options.timeoutMs - (t1 - t0));
    const results = await Promise.allSettled(streams.map((s) => echoBulk(s, data, digest, remaining)));
    const t2 = performance.now();
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) {
      const reasons = new Map<string, number>();
      for (const f of failures) {
        const message = (f.reason as Error).message;
        reasons.set(message, (reasons.get(message) ?? 0) + 1);
      }
      const lines = kubesocks.child.output().split('\n').filter((l) => /failed|error/i.test(l));
      throw new Error(
        `concurrency: ${failures.length} of ${sockets} sockets failed after ${((performance.now() - t1) / 1000).toFixed(1)} s of transfer: ` +
          `${[...reasons].map(([m, n]) => `${n}× ${m}`).join('; ')}\nkubesocks said (${lines.length} lines, last 10):\n${lines.slice(-10).join('\n')}`,
      );
    }
    const after = kubesocks.sample();
    const simAfter = sample(sim.child.pid);
    const counters = await sim.counters();
    const bytesMoved = 2 * sockets * bytesEach;
    const cpu = after && before ? after.cpuSec - before.cpuSec : Number.NaN;
    const figures: ConcurrencyFigures = {
      sockets,
      pods: options.pods,
      bytesEach,
      bytesMoved,
      wallSeconds: (t2 - t0) / 1000,
      connectSeconds: (t1 - t0) / 1000,
      transferSeconds: (t2 - t1) / 1000,
      kubesocksPeakRss: after?.hwm ?? Number.NaN,
      kubesocksRssBefore: before?.rss ?? Number.NaN,
      kubesocksCpuSec: cpu,
      kubesocksCpuPerGiB: cpu / (bytesMoved / GiB),
      simCpuPerGiB: simAfter && simBefore ? (simAfter.cpuSec - simBefore.cpuSec) / (bytesMoved / GiB) : Number.NaN,
      upgrades: counters.upgrades,
      verified: results.length,
    };
    log(
      `  ${sockets} × ${bytesEach / MiB} MiB: ${figures.wallSeconds.toFixed(2)} s, kubesocks peak RSS ${(figures.kubesocksPeakRss / MiB).toFixed(0)} MiB, ` +
        `${figures.kubesocksCpuPerGiB.toFixed(2)} CPU s/GiB, ${counters.upgrades} upgrades, all ${results.length} sha256 ok`,
    );
    return figures;
  } finally {
    for (const s of streams) s.destroy();
  }
}
