/**
 * `kubesocks demo`: a simulated cluster (API server + kubelets, in this
 * process) and the proxy in front of it, so everything can be tried without
 * a cluster. The kubeconfig it writes works with real kubectl too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDialer } from '../dialer/dialer.js';
import { SimCluster, writeMultiKubeconfig } from '../sim/cluster.js';
import { SANDBOX_MODES, loadScenario } from '../sim/scenario.js';
import type { SandboxMode, Scenario } from '../sim/types.js';
import { UsageError, parseFlags, parseTransportFlag } from './flags.js';
import { parseListenAndAuth } from './listen-address.js';
import { PROXY_FLAGS, parseDirect } from './serve.js';
import { runProxy, say } from './proxy-runner.js';

export const DEMO_HELP = `Usage: kubesocks demo [flags]

Starts a simulated cluster in this process and the proxy against it.

Flags:
  --listen HOST:PORT        where the proxy listens (default $KUBESOCKS_LISTEN, else 127.0.0.1:1080;
                            port 0 picks one)
  --scenario FILE           the simulated cluster's pods and services (JSON; default: built-in demo)
  --write-kubeconfig FILE   write a kubeconfig for the simulated cluster (kubectl can use it)
  --api-port PORT           the simulated API server's port (default: any free port)
  --control                 also serve the simulator's control endpoint (for tests and benchmarks)
  --sandboxes MODE          simulated (default) or containerd: every running pod a real sandbox in a
                            private containerd (Linux, root; see docs/real-runtime.md)
  --feature-gates G=BOOL    the simulated API server's gates: PortForwardWebsockets=false acts as an
                            API server without port-forward over WebSockets (before 1.31), so clients
                            fall back to SPDY (default: true, as 1.31+)
  --clusters N              simulate N clusters (1-3), each its own context, CA and token in one
                            kubeconfig, all served through the one proxy port (default 1)
  --auth, --auth-file, --direct, --transport, -v   as for "kubesocks serve"
  -h, --help                this help
`;

export async function demo(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    ...PROXY_FLAGS,
    scenario: { type: 'string' },
    'write-kubeconfig': { type: 'string' },
    'api-port': { type: 'string' },
    control: { type: 'boolean' },
    sandboxes: { type: 'string' },
    'feature-gates': { type: 'string' },
    clusters: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(DEMO_HELP);
    return;
  }
  const { listen, auth } = parseListenAndAuth(values);
  const sandboxes = values.sandboxes;
  if (sandboxes !== undefined && !(SANDBOX_MODES as readonly string[]).includes(sandboxes)) {
    throw new UsageError(`--sandboxes: expected one of ${SANDBOX_MODES.join(', ')}, got "${sandboxes}"`);
  }
  const scenario = values.scenario ? await loadScenario(values.scenario) : undefined;
  const count = parseClusterCount(values.clusters);
  const cluster = await SimCluster.start({
    scenario,
    port: values['api-port'] ? Number(values['api-port']) : 0,
    control: values.control ?? false,
    ...(sandboxes !== undefined ? { sandboxes: sandboxes as SandboxMode } : {}),
    ...parseFeatureGates(values['feature-gates']),
  });
  say(`simulated cluster https://${new URL(cluster.url).host} (API server ${cluster.url})`);
  if (cluster.containerd) say(`pods are real sandboxes in a private containerd (bridge ${cluster.containerd.bridge}, ${cluster.containerd.subnet}, state in ${cluster.containerd.dir})`);
  if (cluster.controlUrl) say(`simulator control endpoint ${cluster.controlUrl}`);
  const others: Array<{ cluster: SimCluster; contextName: string }> = [];
  try {
    for (const contextName of MORE_CONTEXTS.slice(0, count - 1)) {
      const more = await SimCluster.start({ scenario: shopScenario(contextName), ownCa: true, ...parseFeatureGates(values['feature-gates']) });
      others.push({ cluster: more, contextName });
      say(`simulated cluster ${contextName} https://${new URL(more.url).host} (its own CA and token)`);
    }
  } catch (error) {
    await Promise.all([cluster.close(), ...others.map((o) => o.cluster.close())]);
    throw error;
  }

  let kubeconfig = values['write-kubeconfig'];
  let scratch: string | undefined;
  // Whatever fails from here on, the simulator stops and the scratch
  // directory (a kubeconfig with a token in it) is removed.
  const cleanUp = async (): Promise<void> => {
    await Promise.all([cluster.close(), ...others.map((o) => o.cluster.close())]);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  };
  try {
    if (!kubeconfig) {
      scratch = await mkdtemp(join(tmpdir(), 'kubesocks-demo-'));
      kubeconfig = join(scratch, 'kubeconfig');
    }
    if (others.length === 0) await cluster.writeKubeconfig(kubeconfig);
    else await writeMultiKubeconfig(kubeconfig, [{ cluster }, ...others.map((o) => ({ cluster: o.cluster, contextName: o.contextName, namespace: 'shop' }))]);
    say(`kubeconfig ${kubeconfig}${values['write-kubeconfig'] ? ` (try: kubectl --kubeconfig ${kubeconfig} get pods -n demo)` : ''}`);

    const dialer = await createDialer({
      kubeconfig,
      contexts: values.context ?? [],
      allContexts: true,
      aliases: values.alias ?? [],
      clusterDomain: values['cluster-domain'],
      direct: parseDirect(values.direct),
      namespace: values.namespace,
      transport: parseTransportFlag(values.transport),
      // A new token, CA or server written by `aws sso login`, `gcloud` or an edit is used without a restart.
      watchKubeconfig: true,
      onKubeconfigEvent: (event) => say(event.message),
    });
    await runProxy({
      dialer,
      listen,
      auth,
      verbose: values.verbose ?? false,
      hints: scenario ? undefined : (proxy) => demoHints(proxy, others.map((o) => o.contextName)),
      onShutdown: cleanUp,
    }).catch(async (error: unknown) => {
      await dialer.close();
      throw error;
    });
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** Lines that work when pasted, one per name form the built-in scenario has, and a few per extra cluster. */
function demoHints(proxy: string, moreContexts: readonly string[]): string[] {
  return [
    `export ALL_PROXY=socks5h://${proxy}`,
    'the demo cluster answers, through the proxy, by every name form:',
    `curl -x http://${proxy} http://web.demo/                      # service.namespace, spread over ready pods`,
    `curl -x http://${proxy} http://web/                           # a single label: a service in the namespace "demo"`,
    `curl --socks5-hostname ${proxy} http://web.demo.svc.cluster.local/hello`,
    `curl --socks4a ${proxy} http://web.demo.svc/`,
    `curl -p -x http://${proxy} http://web-0.demo:8080/         # a pod by name, its container port (HTTP CONNECT)`,
    `curl --socks5-hostname ${proxy} http://10-244-0-11.demo.pod.cluster.local:8080/`,
    `curl -x http://${proxy} http://10.96.100.10/                  # a service's ClusterIP`,
    `curl -x http://${proxy} http://10.244.0.12:8080/             # a pod IP, its container port`,
    `curl -x http://${proxy} http://lonely.demo:8080/             # a pod with no service`,
    `curl -x http://${proxy} http://api.other/                    # another namespace`,
    `echo hello | ALL_PROXY=socks5h://${proxy} curl -s --max-time 2 telnet://echo.demo:7   # echo service (ends after 2 s)`,
    `echo hi | ALL_PROXY=socks5h://${proxy} curl -s --max-time 2 telnet://db-0.db.demo.svc.cluster.local:5432   # headless: one pod`,
    `curl -x http://${proxy} http://web-0.demo:9090/               # a pod port nothing listens on: 502 with the kubelet reason`,
    ...(moreContexts.length > 0
      ? [
          'and every cluster by names ending in its context alias:',
          `curl -x http://${proxy} http://web.demo.kubesocks-sim/         # the default context by its alias`,
          ...moreContexts.flatMap((context) => [
            `curl -x http://${proxy} http://cart.shop.${context}/              # service cart in namespace shop of context ${context}`,
            `curl --socks5-hostname ${proxy} http://cart-${context}-0.shop.${context}:8080/   # a pod by name in ${context}`,
          ]),
          `curl -x http://${moreContexts[0] ?? ''}@${proxy} http://cart.shop/   # proxy username = alias: short names in that context`,
        ]
      : []),
    `browser PAC file: http://${proxy}/proxy.pac`,
  ];
}

/** `--feature-gates PortForwardWebsockets=false` (kube-apiserver's flag syntax; the one gate the simulator has). */
export function parseFeatureGates(value: string | undefined): { featureGates?: { PortForwardWebsockets: boolean } } {
  if (value === undefined) return {};
  const gates = { PortForwardWebsockets: true };
  for (const item of value.split(',')) {
    const match = /^\s*([A-Za-z]+)=(true|false)\s*$/.exec(item);
    if (!match || match[1] !== 'PortForwardWebsockets') {
      throw new UsageError(`--feature-gates: expected PortForwardWebsockets=true|false, got "${item}"`);
    }
    gates.PortForwardWebsockets = match[2] === 'true';
  }
  return { featureGates: gates };
}

/** The contexts of the extra demo clusters, in order. */
const MORE_CONTEXTS = ['staging', 'prod'] as const;

function parseClusterCount(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = /^[1-3]$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(n)) throw new UsageError(`--clusters: expected 1, 2 or 3, got "${value}"`);
  return n;
}

/** An extra demo cluster: namespace shop with service cart; pod names carry the context so answers show which cluster spoke. */
function shopScenario(contextName: string): Scenario {
  return {
    namespaces: ['shop'],
    pods: [0, 1].map((i) => ({
      name: `cart-${contextName}-${i}`,
      namespace: 'shop',
      labels: { app: 'cart' },
      ip: `10.244.0.${10 + i}`,
      ports: [{ name: 'http', containerPort: 8080, backend: 'http' }],
    })),
    services: [{ name: 'cart', namespace: 'shop', clusterIP: '10.96.100.10', selector: { app: 'cart' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }],
  };
}
