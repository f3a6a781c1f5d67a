/**
 * Many sockets to ONE pod: N connections to the echo port of pod bulk-0,
 * through a fresh kubesocks process (SOCKS5) and through a fresh
 * `kubectl port-forward pod/bulk-0 :7` — the one case kubectl handles with a
 * single process too. Each side: connect all N (≤ `handshakesInFlight` at a
 * time), hold them, then every socket echoes BYTES (SHA-256-checked). Wall
 * time, the forwarder's peak RSS (VmHWM of a process that did nothing else)
 * and its CPU seconds, side by side.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { echoBulk, open, patternMiB } from './lib/client.js';
import type { Route } from './lib/client.js';
import { log, startKubesocks, startPortForward } from './lib/harness.js';
import type { Sim } from './lib/harness.js';
import type { ProcSample } from './lib/procs.js';
import { PORTS, serviceHost } from './lib/scenario.js';
import { MiB } from './lib/table.js';

export interface ManySocketsRun {
  forwarder: 'kubesocks' | 'kubectl';
  sockets: number;
  bytesEach: number;
  wallSeconds: number;
  connectSeconds: number;
  transferSeconds: number;
  peakRss: number;
  cpuSec: number;
  verified: number;
  /** Sockets that failed (connect or echo), with the reasons; the run then counts as failed. */
  failed: number;
  failures: string[];
}

export interface OnePodFigures {
  runs: ManySocketsRun[];
}

async function manySockets(
  forwarder: ManySocketsRun['forwarder'],
  route: Route,
  proc: () => ProcSample | undefined,
  sockets: number,
  bytesEach: number,
  handshakesInFlight: number,
  timeoutMs: number,
): Promise<ManySocketsRun> {
  const data = patternMiB().subarray(0, bytesEach);
  const digest = createHash('sha256').update(data).digest('hex');
  const before = proc();
  const deadline = AbortSignal.timeout(timeoutMs);
  const reasons = new Map<string, number>();
  const note = (error: unknown): void => {
    const message = (error as Error)?.message ?? String(error);
    reasons.set(message, (reasons.get(message) ?? 0) + 1);
  };
  const streams: Duplex[] = [];
  const t0 = performance.now();
  try {
    let next = 0;
    const opener = async (): Promise<void> => {
      while (next < sockets && !deadline.aborted) {
        next++;
        try {
          streams.push(await open(route, 60_000));
        } catch (error) {
          note(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(handshakesInFlight, sockets) }, opener));
    const t1 = performance.now();
    const remaining = Math.max(1000, timeoutMs - (t1 - t0));
    const results = await Promise.allSettled(streams.map((s) => echoBulk(s, data, digest, remaining)));
    const t2 = performance.now();
    for (const r of results) if (r.status === 'rejected') note(r.reason);
    const after = proc();
    const failed = sockets - results.filter((r) => r.status === 'fulfilled').length;
    const run: ManySocketsRun = {
      forwarder,
      sockets,
      bytesEach,
      wallSeconds: (t2 - t0) / 1000,
      connectSeconds: (t1 - t0) / 1000,
      transferSeconds: (t2 - t1) / 1000,
      peakRss: after?.hwm ?? Number.NaN,
      cpuSec: after && before ? after.cpuSec - before.cpuSec : Number.NaN,
      verified: results.length - failed,
      failed,
      failures: [...reasons].map(([m, n]) => `${n}× ${m}`),
    };
    log(
      `  ${forwarder} ${sockets} × ${bytesEach / MiB} MiB to one pod: ${run.wallSeconds.toFixed(2)} s, peak RSS ${(run.peakRss / MiB).toFixed(0)} MiB, ` +
        `${run.cpuSec.toFixed(2)} CPU s${failed ? `, ${failed} FAILED (${run.failures.slice(0, 3).join('; ')})` : ', all sha256 ok'}`,
    );
    return run;
  } finally {
    for (const s of streams) s.destroy();
  }
}

/**
 * For each count: kubectl then kubesocks, each a fresh process (so VmHWM is
 * this run's peak). Throws if any kubesocks socket failed, after measuring
 * all; kubectl's failures are a figure of the comparison (its "ok" row), not
 * a failure of the benchmark.
 */
export async function measureOnePod(
  sim: Sim,
  kubectl: string | undefined,
  counts: number[],
  options: { bytesEach: number; handshakesInFlight: number; timeoutMs: number },
): Promise<OnePodFigures> {
  const runs: ManySocketsRun[] = [];
  for (const sockets of counts) {
    if (kubectl) {
      const pf = await startPortForward(kubectl, sim, 'pod/bulk-0', [PORTS.echo], 'kubectl (one pod, many sockets)');
      try {
        runs.push(await manySockets('kubectl', { kind: 'tcp', address: pf.ports.get(PORTS.echo)! }, pf.sample, sockets, options.bytesEach, options.handshakesInFlight, options.timeoutMs));
      } finally {
        await pf.child.stop();
      }
    }
    const ks = await startKubesocks(sim, 'kubesocks (one pod, many sockets)');
    try {
      const route: Route = { kind: 'socks5', proxy: ks.proxy, host: serviceHost('bulk'), port: PORTS.echo };
      runs.push(await manySockets('kubesocks', route, ks.sample, sockets, options.bytesEach, options.handshakesInFlight, options.timeoutMs));
    } finally {
      await ks.child.stop(10_000);
    }
  }
  const failed = runs.filter((r) => r.failed > 0 && r.forwarder === 'kubesocks');
  if (failed.length > 0) {
    const err = new Error(`one pod, many sockets: ${failed.map((r) => `${r.forwarder} ${r.failed}/${r.sockets} failed (${r.failures.slice(0, 3).join('; ')})`).join('; ')}`);
    (err as Error & { figures?: OnePodFigures }).figures = { runs };
    throw err;
  }
  return { runs };
}
