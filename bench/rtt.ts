/**
 * `--rtt MS`: a remote cluster. A relay process (bench/relay-process.ts)
 * delays each direction by MS/2 between the forwarders and the simulated API
 * server; kubectl and kubesocks both get a kubeconfig pointing at the relay.
 * Measured: start-up and the first request by name into a namespace and pod
 * not used before (also counted in round trips: time ÷ RTT), warm connect,
 * and bulk throughput both ways.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open } from './lib/client.js';
import type { Route } from './lib/client.js';
import { log, ROOT, startKubesocks, startPortForward } from './lib/harness.js';
import type { Sim } from './lib/harness.js';
import { start } from './lib/procs.js';
import type { Child } from './lib/procs.js';
import { FAR_NS, PORTS, serviceHost } from './lib/scenario.js';
import { measureStartup } from './startup.js';
import type { StartupFigures } from './startup.js';
import { measureWarm } from './latency.js';
import type { LatencyFigures } from './latency.js';
import { measureThroughput } from './throughput.js';
import type { RouteSpec, ThroughputRow } from './throughput.js';

export interface RttFigures {
  rttMs: number;
  startup: StartupFigures[];
  /**
   * The same start-up measured at a much longer RTT: the growth of the first
   * request's time between the two RTTs, divided by the RTTs' difference,
   * counts its round trips without the processing time (which on a loaded
   * 2-core machine can be as long as a 20 ms round trip or more).
   */
  probe: { rttMs: number; startup: StartupFigures[] };
  /** Round trips of the first request, per forwarder label, from the two RTTs. */
  firstRequestRoundTrips: Record<string, number>;
  latency: LatencyFigures[];
  throughput: ThroughputRow[];
}

/** The relay and a kubeconfig whose server is the relay. */
export async function relayed(sim: Sim, dir: string, rttMs: number): Promise<Sim & { relay: Child }> {
  const api = new URL(sim.ready.url);
  const relay = start(`relay (RTT ${rttMs} ms)`, process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'relay-process.ts'), `${api.hostname}:${api.port}`, String(rttMs / 2)], { cwd: ROOT });
  const [line] = await relay.waitFor(/^\{.*\}$/m, 30_000);
  const { port } = JSON.parse(line) as { port: number };
  const kubeconfig = join(dir, `kubeconfig-rtt-${rttMs}`);
  const text = await readFile(sim.kubeconfig, 'utf8');
  const server = `https://${api.hostname}:${api.port}`;
  if (!text.includes(server)) throw new Error(`rtt: the simulator's kubeconfig does not name ${server}`);
  await writeFile(kubeconfig, text.split(server).join(`https://${api.hostname}:${port}`));
  log(`relay 127.0.0.1:${port} → ${api.host}, ${rttMs / 2} ms each way (pid ${relay.pid})`);
  return { ...sim, kubeconfig, relay };
}

export async function measureRtt(
  sim: Sim,
  kubectl: string | undefined,
  dir: string,
  options: { rttMs: number; startupRuns: number; latencySamples: number; bytes: number; runs: number },
): Promise<RttFigures> {
  const far = await relayed(sim, dir, options.rttMs);
  const targets = { kubesocksHost: `first.${FAR_NS}.svc.cluster.local`, port: PORTS.echo, kubectlTarget: 'svc/first', kubectlNamespace: FAR_NS };
  log(`RTT ${options.rttMs} ms: start-up and the first request into namespace ${FAR_NS}`);
  const startup = await measureStartup(far, kubectl, targets, options.startupRuns, `RTT ${options.rttMs} ms`);
  const probeMs = Math.max(200, 10 * options.rttMs);
  log(`RTT ${probeMs} ms (to count round trips): start-up and the first request into namespace ${FAR_NS}`);
  const probeSim = await relayed(sim, dir, probeMs);
  const probeStartup = await measureStartup(probeSim, kubectl, targets, options.startupRuns, `RTT ${probeMs} ms`);
  await probeSim.relay.stop();
  const firstRequestRoundTrips: Record<string, number> = {};
  for (const row of startup) {
    const slow = probeStartup.find((p) => p.label === row.label);
    if (slow) firstRequestRoundTrips[row.label] = (slow.firstRequestMs - row.firstRequestMs) / (probeMs - options.rttMs);
  }
  log(`  first request, round trips: ${Object.entries(firstRequestRoundTrips).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);

  const ks = await startKubesocks(far, 'kubesocks (rtt)');
  const pf = kubectl ? await startPortForward(kubectl, far, 'pod/bulk-0', [PORTS.source, PORTS.sink, PORTS.echo], 'kubectl (rtt)') : undefined;
  try {
    const host = serviceHost('bulk');
    const socks = (port: number): Route => ({ kind: 'socks5', proxy: ks.proxy, host, port });
    const http = (port: number): Route => ({ kind: 'http', proxy: ks.proxy, host, port });
    log(`RTT ${options.rttMs} ms: warm connect, ${options.latencySamples} samples per route`);
    const latency: LatencyFigures[] = [];
    if (pf) latency.push(await measureWarm(`kubectl port-forward (running), RTT ${options.rttMs} ms`, { kind: 'tcp', address: pf.ports.get(PORTS.echo)! }, options.latencySamples));
    latency.push(await measureWarm(`kubesocks SOCKS5, warm, RTT ${options.rttMs} ms`, socks(PORTS.echo), options.latencySamples));
    latency.push(await measureWarm(`kubesocks HTTP CONNECT, warm, RTT ${options.rttMs} ms`, http(PORTS.echo), options.latencySamples));

    log(`RTT ${options.rttMs} ms: bulk throughput, ${options.bytes / 1024 / 1024} MiB each way`);
    const specs: RouteSpec[] = [];
    if (pf) {
      specs.push({
        route: 'kubectl',
        openSource: () => open({ kind: 'tcp', address: pf.ports.get(PORTS.source)! }),
        openSink: () => open({ kind: 'tcp', address: pf.ports.get(PORTS.sink)! }),
        forwarder: pf.sample,
      });
    }
    specs.push(
      { route: 'socks5', openSource: () => open(socks(PORTS.source)), openSink: () => open(socks(PORTS.sink)), forwarder: ks.sample },
      { route: 'http', openSource: () => open(http(PORTS.source)), openSink: () => open(http(PORTS.sink)), forwarder: ks.sample },
    );
    const throughput = await measureThroughput(sim, specs, { bytes: options.bytes, runs: options.runs, warmupBytes: Math.min(options.bytes, 32 * 1024 * 1024) });
    return { rttMs: options.rttMs, startup, probe: { rttMs: probeMs, startup: probeStartup }, firstRequestRoundTrips, latency, throughput };
  } finally {
    await pf?.child.stop();
    await ks.child.stop(10_000);
  }
}
