/**
 * Several simulated clusters behind one kubeconfig, as someone with dev,
 * staging and prod has: each cluster its own CA, token and namespaces, each
 * a context of its own. Pod names carry the cluster's tag, so an answer
 * (`pod web-b-0 path /`) says which cluster served it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';

/** The same ClusterIP and pod IPs in every cluster, as real clusters with default ranges have. */
export const SHARED_CLUSTER_IP = '10.96.100.10';
export const SHARED_POD_IP = '10.244.0.10';

/**
 * Cluster `tag`: namespace `team` with service web (pod web-TAG-0, ClusterIP
 * SHARED_CLUSTER_IP) and headless service db (pod db-TAG-0, hostname db-0),
 * namespace `only-TAG` with service web (pod web-TAG-only-0), and any
 * `extraNamespaces` each with service web (pod web-TAG-in-NS-0).
 */
export function taggedScenario(tag: string, extraNamespaces: readonly string[] = []): Scenario {
  const http = [{ name: 'http', containerPort: 8080, backend: 'http' }];
  const pod = (name: string, namespace: string, app: string, ip: string, extra: Partial<ScenarioPod> = {}): ScenarioPod => ({
    name,
    namespace,
    labels: { app },
    ip,
    ports: http,
    ...extra,
  });
  const web = (namespace: string, clusterIP: string) => ({
    name: 'web',
    namespace,
    clusterIP,
    selector: { app: 'web' },
    ports: [{ name: 'http', port: 80, targetPort: 'http' }],
  });
  return {
    namespaces: ['team', `only-${tag}`, ...extraNamespaces],
    pods: [
      pod(`web-${tag}-0`, 'team', 'web', SHARED_POD_IP),
      pod(`db-${tag}-0`, 'team', 'db', '10.244.0.20', { hostname: 'db-0', subdomain: 'db' }),
      pod(`web-${tag}-only-0`, `only-${tag}`, 'web', '10.244.1.10'),
      ...extraNamespaces.map((ns, i) => pod(`web-${tag}-in-${ns}-0`, ns, 'web', `10.244.${2 + i}.10`)),
    ],
    services: [
      web('team', SHARED_CLUSTER_IP),
      { name: 'db', namespace: 'team', clusterIP: 'None', selector: { app: 'db' }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] },
      web(`only-${tag}`, '10.96.101.10'),
      ...extraNamespaces.map((ns, i) => web(ns, `10.96.${102 + i}.10`)),
    ],
  };
}

/** A context of the kubeconfig: a cluster's, or one with a twist. */
export interface ContextSpec {
  name: string;
  /** The cluster it points at; absent with `server`. */
  cluster?: SimCluster;
  /** An API server URL instead of a cluster's (e.g. nothing listening). */
  server?: string;
  /** A token instead of the cluster's admin token (e.g. a wrong one). */
  token?: string;
  /** Get the token from an exec plugin that first touches this file. */
  execMarker?: string;
  namespace?: string;
}

/** A kubeconfig with the given contexts; the first is the current context. */
export function kubeconfigFor(specs: readonly ContextSpec[]): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: specs.map((s) => ({
      name: `${s.name}-cluster`,
      cluster: {
        server: s.server ?? s.cluster?.url,
        'certificate-authority-data': Buffer.from(s.cluster?.caPem ?? '').toString('base64'),
      },
    })),
    users: specs.map((s) => {
      const token = s.token ?? s.cluster?.adminToken ?? 'no-token';
      if (s.execMarker === undefined) return { name: `${s.name}-user`, user: { token } };
      const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token } });
      return {
        name: `${s.name}-user`,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1beta1',
            command: 'sh',
            args: ['-c', `touch '${s.execMarker}' && printf '%s' '${credential}'`],
            interactiveMode: 'Never',
          },
        },
      };
    }),
    contexts: specs.map((s) => ({
      name: s.name,
      context: { cluster: `${s.name}-cluster`, user: `${s.name}-user`, namespace: s.namespace ?? 'team' },
    })),
    'current-context': specs[0]?.name ?? '',
  };
  return yaml.dump(doc);
}

export interface MultiCluster {
  clusters: SimCluster[];
  dir: string;
  kubeconfig: string;
  close(): Promise<void>;
}

/**
 * Starts one cluster per tag (each its own CA) and writes a kubeconfig with
 * `contexts(clusters, dir)` (default: one context per cluster, named by tag).
 */
export async function startClusters(
  scenarios: readonly Scenario[],
  contexts?: (clusters: SimCluster[], dir: string) => ContextSpec[],
): Promise<MultiCluster> {
  const clusters: SimCluster[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'kubesocks-contexts-'));
  try {
    for (const scenario of scenarios) clusters.push(await SimCluster.start({ scenario, ownCa: true }));
    const specs = contexts ? contexts(clusters, dir) : clusters.map((cluster, i) => ({ name: `c${i}`, cluster }));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigFor(specs), { mode: 0o600 });
    return {
      clusters,
      dir,
      kubeconfig,
      async close() {
        await Promise.all(clusters.map((c) => c.close()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(clusters.map((c) => c.close()));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
