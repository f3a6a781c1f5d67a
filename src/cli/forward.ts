/** `kubesocks forward`: kubectl port-forward's interface, without its failures. */
import { createDialer } from '../dialer/dialer.js';
import { Forwarder } from '../forward/forwarder.js';
import { parseAddresses, parsePortSpec, parseResource } from './forward-spec.js';
import { ForwardTarget } from '../forward/forward-target.js';
import { UsageError, parseDuration, parseFlags, parseTransportFlag } from './flags.js';
import { SHUTDOWN_GRACE_MS, say } from './proxy-runner.js';

export const FORWARD_HELP = `Usage: kubesocks forward [flags] TYPE/NAME [LOCAL:]REMOTE [...]

Forwards local ports to a pod, service, deployment, statefulset or replicaset,
like kubectl port-forward. Unlike kubectl, services and workloads are resolved
again for every connection (spread over ready pods, surviving pod restarts),
and a refused connection never ends the command.

Examples:
  kubesocks forward svc/web 8080:80          local 8080 -> service port 80
  kubesocks forward -n db sts/postgres :5432  a free local port -> 5432
  kubesocks forward deploy/api 8443:https     a named container port

Flags:
  -n, --namespace NS           namespace (default: the context's)
  --address LIST               local addresses, comma-separated (default localhost = 127.0.0.1 and ::1)
  --pod-running-timeout DUR    how long to wait at start for a running pod (default 1m)
  --transport T                port-forward over auto (default: WebSocket, else SPDY, as kubectl), spdy or websocket
  --kubeconfig FILE, --context NAME, --cluster-domain D
  -h, --help                   this help
`;

export async function forward(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, {
    namespace: { type: 'string', short: 'n' },
    address: { type: 'string' },
    'pod-running-timeout': { type: 'string' },
    kubeconfig: { type: 'string' },
    context: { type: 'string' },
    'cluster-domain': { type: 'string' },
    transport: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(FORWARD_HELP);
    return;
  }
  const [resourceText, ...portTexts] = positionals;
  if (!resourceText || portTexts.length === 0) throw new UsageError('forward needs TYPE/NAME and at least one port, e.g. kubesocks forward svc/web 8080:80');
  const resource = parseResource(resourceText);
  const ports = portTexts.map(parsePortSpec);
  const addresses = parseAddresses(values.address ?? 'localhost');
  const runningTimeoutMs = parseDuration(values['pod-running-timeout'] ?? '1m', '--pod-running-timeout');

  const dialer = await createDialer({
    kubeconfig: values.kubeconfig,
    context: values.context,
    namespace: values.namespace,
    clusterDomain: values['cluster-domain'],
    direct: 'deny',
    transport: parseTransportFlag(values.transport),
    // A new token, CA or server written by `aws sso login`, `gcloud` or an edit is used without a restart.
    watchKubeconfig: true,
    onKubeconfigEvent: (event) => say(event.message),
  });
  const target = new ForwardTarget(dialer, dialer.context().namespace, resource);
  try {
    await target.waitUntilReady(runningTimeoutMs);
  } catch (error) {
    await dialer.close();
    throw error;
  }
  const forwarder = new Forwarder({
    target,
    ports,
    addresses,
    info: (line) => process.stdout.write(`${line}\n`),
    error: (line) => say(line),
  });
  // Before start(): its "Forwarding from" lines tell a script it may send a signal.
  const stop = (): void => {
    void Promise.race([forwarder.close(), new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS))])
      .then(() => dialer.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await forwarder.start();
}
