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
  latency: LatencyFigures[];
  throughput: ThroughputRow[];
}

/** The relay and a kubeconfig whose server is the relay. */
async function relayed(sim: Sim, dir: string, rttMs: number): Promise<Sim> {
  const api = new URL(sim.ready.url);
  const relay = start('relay', process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'relay-process.ts'), `${api.hostname}:${api.port}`, String(rttMs / 2)], { cwd: ROOT });
  const [line] = await relay.waitFor(/^\{.*\}$/m, 30_000);
  const { port } = JSON.parse(line) as { port: number };
  const kubeconfig = join(dir, `kubeconfig-rtt-${rttMs}`);
  const text = await readFile(sim.kubeconfig, 'utf8');
  const server = `https://${api.hostname}:${api.port}`;
  if (!text.includes(server)) throw new Error(`rtt: the simulator's kubeconfig does not name ${server}`);
  await writeFile(kubeconfig, text.split(server).join(`https://${api.hostname}:${port}`));
  log(`relay 127.0.0.1:${port} → ${api.host}, ${rttMs / 2} ms each way (pid ${relay.pid})`);
  return { ...sim, kubeconfig };
}

export async function measureRtt(
  sim: Sim,
  kubectl: string | undefined,
  dir: string,
  options: { rttMs: number; startupRuns: number; latencySamples: number; bytes: number; runs: number },
): Promise<RttFigures> {
  const far = await relayed(sim, dir, options.rttMs);
  log(`RTT ${options.rttMs} ms: start-up and the first request into namespace ${FAR_NS}`);
  const startup = await measureStartup(
    far,
    kubectl,
    { kubesocksHost: `first.${FAR_NS}.svc.cluster.local`, port: PORTS.echo, kubectlTarget: 'svc/first', kubectlNamespace: FAR_NS },
    options.startupRuns,
    `RTT ${options.rttMs} ms`,
  );

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
    return { rttMs: options.rttMs, startup, latency, throughput };
  } finally {
    await pf?.child.stop();
    await ks.child.stop(10_000);
  }
}
