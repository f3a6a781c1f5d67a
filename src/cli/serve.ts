/** `kubesocks [serve]`: the proxy against the user's cluster. */
import { createDialer } from '../dialer/dialer.js';
import { TRANSPORT_HELP, UsageError, parseFlags, parseTransportFlag } from './flags.js';
import { parseListenAndAuth } from './listen-address.js';
import { runProxy, say } from './proxy-runner.js';

export const SERVE_HELP = `Usage: kubesocks [serve] [flags]

One local port speaking SOCKS5, SOCKS4a and HTTP proxy that reaches cluster
services and pods by their DNS names, through pods/portforward.

Flags:
  --listen HOST:PORT     where to listen (default $KUBESOCKS_LISTEN, else
                         127.0.0.1:1080; port 0 picks one)
  --kubeconfig FILE      kubeconfig file(s), ':'-separated (default $KUBECONFIG, ~/.kube/config)
  --context NAME         kubeconfig context (default: current-context); repeat it to serve
                         several side by side, the first being the default
  --all-contexts         serve every context of the kubeconfig
  --alias NAME=CONTEXT   the alias CONTEXT's names end in (web.demo.NAME); default: the context
                         name lower-cased, other characters than a-z 0-9 - turned into -
  -n, --namespace NS     namespace for short names like "web" (default: the context's)
  --cluster-domain D     cluster DNS domain (default cluster.local)
  --auth USER:PASS       require these credentials; needed off loopback. Other local users can
                         read a command line (ps): prefer --auth-file or KUBESOCKS_AUTH=USER:PASS
  --auth-file FILE       read USER:PASS from FILE's first line; FILE must be yours (or root's)
                         and private (chmod 600 FILE). --auth or --auth-file win over KUBESOCKS_AUTH
  --direct allow|deny    hosts outside the cluster: dial directly (default) or refuse
  ${TRANSPORT_HELP}
  -v, --verbose          log every proxied connection
  -h, --help             this help
`;

export const PROXY_FLAGS = {
  listen: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string', multiple: true },
  'all-contexts': { type: 'boolean' },
  alias: { type: 'string', multiple: true },
  namespace: { type: 'string', short: 'n' },
  'cluster-domain': { type: 'string' },
  auth: { type: 'string' },
  'auth-file': { type: 'string' },
  direct: { type: 'string' },
  transport: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseDirect(value: string | undefined): 'allow' | 'deny' {
  if (value === undefined || value === 'allow') return 'allow';
  if (value === 'deny') return 'deny';
  throw new UsageError(`--direct: expected "allow" or "deny", got "${value}"`);
}

export async function serve(args: string[]): Promise<void> {
  const { values } = parseFlags(args, PROXY_FLAGS);
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const { listen, auth } = parseListenAndAuth(values);
  const dialer = await createDialer({
    kubeconfig: values.kubeconfig,
    contexts: values.context ?? [],
    allContexts: values['all-contexts'] ?? false,
    aliases: values.alias ?? [],
    namespace: values.namespace,
    clusterDomain: values['cluster-domain'],
    direct: parseDirect(values.direct),
    transport: parseTransportFlag(values.transport),
    // A new token, CA or server written by `aws sso login`, `gcloud` or an edit is used without a restart.
    watchKubeconfig: true,
    onKubeconfigEvent: (event) => say(event.message),
  });
  await runProxy({ dialer, listen, auth, verbose: values.verbose ?? false });
  // Once, at start, without holding the proxy back: a cluster that is down
  // or credentials that are refused are said at once; outside hosts work
  // meanwhile, and kubesocks recovers by itself when the cluster is back.
  // With several contexts nothing is contacted before its first use (an exec
  // plugin per context would run at start): /readyz asks the ones in use.
  if (dialer.contexts().length > 1) return;
  void dialer.checkApiServer().then((check) => {
    if (!check.ready) say(`warning: ${check.reason} (kubesocks keeps serving; /readyz tells when the cluster answers again)`);
  });
}
