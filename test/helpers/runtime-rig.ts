/**
 * The rig for the real-runtime tests (test/runtime/): one private containerd
 * per test file (start-up costs about a second, each pod a quarter), a
 * simulated API server whose pods are real sandboxes in it, a real dialer on
 * its kubeconfig and the real proxy in front — the same path as production,
 * with containerd's port-forward server where the simulated kubelet was.
 *
 * Where the machine cannot run containers (not Linux, not root, packages
 * missing) the tests skip and say why — except with CI=true, where they fail.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import type { KubesocksError } from '../../src/errors.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import { SimCluster } from '../../src/sim/cluster.js';
import { Containerd } from '../../src/sim/runtime/containerd.js';
import { runtimeUnsupportedReason } from '../../src/sim/runtime/support.js';
import type { Scenario } from '../../src/sim/types.js';

const unsupported = runtimeUnsupportedReason();

/**
 * The `skip` option for a real-runtime suite: the reason it cannot run here,
 * or false. In CI (CI=true) never a reason: the suite runs and fails in
 * startRuntime(), so a machine that cannot run containers is not mistaken for a pass.
 */
export const runtimeSkip: string | false = unsupported && process.env.CI !== 'true' ? `real-runtime tests skipped: ${unsupported}` : false;

if (runtimeSkip) process.stderr.write(`${runtimeSkip}\n`);

/** Starts the file's containerd (throws the reason where it cannot run). */
export async function startRuntime(): Promise<Containerd> {
  if (unsupported) throw new Error(`the real-runtime tests cannot run here: ${unsupported}`);
  return Containerd.start();
}

export interface RealRig {
  cluster: SimCluster;
  kubeconfig: string;
  dialer: Dialer;
  proxy: ProxyServer;
  proxyPort: number;
  proxyErrors: KubesocksError[];
  close(): Promise<void>;
}

/** A cluster over `runtime` (all its pods real), with a dialer and the proxy on 127.0.0.1:0. */
export async function startRealRig(runtime: Containerd, scenario: Scenario): Promise<RealRig> {
  const cluster = await SimCluster.start({ scenario, containerd: runtime });
  const dir = await mkdtemp(join(tmpdir(), 'kubesocks-runtime-test-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await cluster.writeKubeconfig(kubeconfig);
  const dialer = await createDialer({ kubeconfig });
  const proxyErrors: KubesocksError[] = [];
  const proxy = createProxyServer({ connector: dialer.connector(), onError: (e) => proxyErrors.push(e) });
  const { port } = await proxy.listen('127.0.0.1', 0);
  let closing: Promise<void> | undefined;
  return {
    cluster,
    kubeconfig,
    dialer,
    proxy,
    proxyPort: port,
    proxyErrors,
    close: () =>
      (closing ??= (async () => {
        await proxy.close();
        await dialer.close();
        await cluster.close();
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}
