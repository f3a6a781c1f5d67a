/** Starts a simulated cluster with a kubeconfig on disk, for tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';

export interface TestCluster {
  cluster: SimCluster;
  kubeconfig: string;
  dir: string;
  /** Writes another kubeconfig (e.g. for a limited user) and returns its path. */
  kubeconfigFor(user: string, name?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestCluster(scenario?: Scenario, options: { streamPairTimeoutMs?: number } = {}): Promise<TestCluster> {
  const cluster = await SimCluster.start({ scenario, ...options });
  const dir = await mkdtemp(join(tmpdir(), 'kubesocks-test-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await cluster.writeKubeconfig(kubeconfig);
  return {
    cluster,
    kubeconfig,
    dir,
    async kubeconfigFor(user, name = user) {
      const file = join(dir, `kubeconfig-${name}`);
      await cluster.writeKubeconfig(file, { user });
      return file;
    },
    async close() {
      await cluster.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** N pods `NAME-i` in namespace `ns` behind service NAME, each port served by `backend`. */
export function podsBehindService(ns: string, name: string, count: number, port: number, backend: string): Scenario {
  const pods: ScenarioPod[] = Array.from({ length: count }, (_, i) => ({
    name: `${name}-${i}`,
    namespace: ns,
    labels: { app: name },
    ip: `10.244.${Math.floor(i / 200) + 1}.${(i % 200) + 10}`,
    phase: 'Running',
    ready: true,
    ports: [{ name: 'main', containerPort: port, backend }],
  }));
  return {
    namespaces: [ns],
    pods,
    services: [{ name, namespace: ns, selector: { app: name }, ports: [{ name: 'main', port, targetPort: 'main' }] }],
  };
}
