/**
 * The simulated cluster in a process of its own, so its CPU time does not
 * count against kubesocks or kubectl.
 *
 *   node --import tsx bench/sim-process.ts SCENARIO.json KUBECONFIG [containerd]
 *
 * With `containerd` the pods are real sandboxes in a private containerd
 * (`npm run bench -- --runtime containerd`): their ports are served inside
 * them (`@source` → the `source` server in the pod, …) and the "direct"
 * addresses are the bulk pod's own, on the CNI bridge.
 *
 * Starts one `source`, one `echo` and one `sink` backend server (the pods'
 * container ports point at them, so a "direct" connection reaches the same
 * server), the API server with its control endpoint, writes the kubeconfig,
 * and prints one JSON line (SimReady) on stdout. Exits on SIGTERM/SIGINT or
 * when stdin closes (the runner went away).
 */
import { readFile } from 'node:fs/promises';
import { startBackend } from '../src/sim/backends.js';
import { SimCluster } from '../src/sim/cluster.js';
import type { Scenario } from '../src/sim/types.js';

/** A backend's real address. */
interface Address {
  host: string;
  port: number;
}

export interface SimReady {
  url: string;
  caPem: string;
  adminToken: string;
  controlUrl: string;
  backends: { source: Address; echo: Address; sink: Address };
}

async function main(): Promise<void> {
  const [scenarioFile, kubeconfig, sandboxes] = process.argv.slice(2);
  if (!scenarioFile || !kubeconfig) throw new Error('usage: sim-process.ts SCENARIO.json KUBECONFIG [containerd]');
  if (sandboxes === 'containerd') return realRuntime(scenarioFile, kubeconfig);
  const closers: Array<() => Promise<void>> = [];

  const source = await startBackend('source', 'bench');
  const echo = await startBackend('echo', 'bench');
  closers.push(() => source.close(), () => echo.close());
  // The sink answers `BYTES SHA256` after a `COUNT\n` prefix, without the FIN
  // that the runtime would not pass on.
  const builtinSink = await startBackend('sink', 'bench');
  closers.push(() => builtinSink.close());
  const sink: Address = builtinSink.address;

  const addr = (a: Address): string => `${a.host}:${a.port}`;
  const refs: Record<string, string> = { '@source': addr(source.address), '@echo': addr(echo.address), '@sink': addr(sink) };
  const scenario = JSON.parse(await readFile(scenarioFile, 'utf8')) as Scenario;
  for (const pod of scenario.pods) {
    for (const port of pod.ports ?? []) {
      if (port.backend !== undefined && port.backend in refs) port.backend = refs[port.backend];
    }
  }

  const cluster = await SimCluster.start({ scenario, control: true });
  closers.unshift(() => cluster.close());
  await cluster.writeKubeconfig(kubeconfig, { namespace: 'bench' });
  stopWithParent(closers);

  const ready: SimReady = {
    url: cluster.url,
    caPem: cluster.caPem,
    adminToken: cluster.adminToken,
    controlUrl: cluster.controlUrl ?? '',
    backends: { source: source.address, echo: echo.address, sink },
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

/** The same scenario with every pod a containerd sandbox; the servers run inside the pods. */
async function realRuntime(scenarioFile: string, kubeconfig: string): Promise<void> {
  const scenario = JSON.parse(await readFile(scenarioFile, 'utf8')) as Scenario;
  for (const pod of scenario.pods) {
    for (const port of pod.ports ?? []) {
      if (port.backend?.startsWith('@')) port.backend = port.backend.slice(1);
      // The runtime's pods get their addresses from the bridge network.
    }
    delete pod.ip;
  }
  const cluster = await SimCluster.start({ scenario, control: true, sandboxes: 'containerd' });
  stopWithParent([() => cluster.close()]);
  await cluster.writeKubeconfig(kubeconfig, { namespace: 'bench' });
  const bulk = await cluster.realPod('bench', 'bulk-0');
  if (!bulk) throw new Error('pod bulk-0 has no sandbox');
  const at = (port: number): Address => ({ host: bulk.ip, port });
  const ready: SimReady = {
    url: cluster.url,
    caPem: cluster.caPem,
    adminToken: cluster.adminToken,
    controlUrl: cluster.controlUrl ?? '',
    backends: { source: at(9000), echo: at(7), sink: at(9001) },
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

/** Exits on SIGTERM/SIGINT or when stdin closes (the runner went away), after closing what `closers` close. */
function stopWithParent(closers: Array<() => Promise<void>>): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // Real sandboxes take longer to remove; whatever is left then goes with the process's exit hook (teardown.ts).
    const force = setTimeout(() => process.exit(0), 25_000);
    force.unref();
    void Promise.allSettled(closers.map((close) => close())).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

main().catch((error: unknown) => {
  process.stderr.write(`sim-process: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
