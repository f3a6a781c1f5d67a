/**
 * Runs the proxy in front of a dialer and speaks to the person at the
 * terminal: the ready line, hints, the -v connection log, errors, and a
 * clean exit on SIGINT/SIGTERM. Shared by `serve` and `demo`.
 */
import type { ContextInfo } from '../dialer/contexts.js';
import type { Dialer } from '../dialer/dialer.js';
import { createProxyServer, type ProxyServer } from '../proxy/server.js';
import { ConnectionLog } from './connection-log.js';
import { formatAddress, type ListenAddress } from './listen-address.js';

export interface RunProxyOptions {
  dialer: Dialer;
  listen: ListenAddress;
  auth: { username: string; password: string } | undefined;
  verbose: boolean;
  /** Lines printed once the proxy is ready, instead of the generic hints (which name SERVICE.NAMESPACE). */
  hints?: (proxy: string) => string[];
  /** Called on shutdown, after the proxy closed (e.g. stop the simulator). */
  onShutdown?: () => Promise<void>;
}

export const SHUTDOWN_GRACE_MS = 2000;

export function say(line: string): void {
  process.stderr.write(`kubesocks: ${line}\n`);
}

/** A listen failure as one line that says what to do. */
export function explainListenError(error: unknown, address: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE')
    return `${address} is already in use (another kubesocks?): choose another port with --listen 127.0.0.1:PORT, or --listen 127.0.0.1:0 for any free one`;
  if (code === 'EACCES') return `not allowed to listen on ${address} (ports below 1024 need privileges): choose a port above 1023 with --listen`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${address}: that address is not one of this machine's; use --listen 127.0.0.1:PORT`;
  return (error as Error).message;
}

/** One line per served context: alias, kubeconfig context, cluster, namespace. */
export function contextLines(contexts: readonly ContextInfo[]): string[] {
  return contexts.map((c) => {
    const name = c.alias === c.context ? '' : ` (${c.context})`;
    const role = c.isDefault ? ', default' : '';
    if (c.problem) return `context ${c.alias}${name}: unusable, its names fail: ${c.problem}`;
    return `context ${c.alias}${name}: cluster ${c.cluster}, namespace ${c.namespace}${role}`;
  });
}

export async function runProxy(options: RunProxyOptions): Promise<ProxyServer> {
  const { dialer, listen, auth, verbose } = options;
  const log = new ConnectionLog({ verbose, print: say });
  const server = createProxyServer({
    connector: dialer.connector(),
    auth,
    observer: dialer.observer,
    onConnection: (record) => log.record(record),
    onError: (error) => say(error.message),
  });
  // Before the ready line: a script that sees it may signal at once, and an
  // unhandled SIGTERM would kill the process without closing anything.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    say(`${signal}: closing (open connections get ${SHUTDOWN_GRACE_MS / 1000} s to finish)`);
    void server
      .close(SHUTDOWN_GRACE_MS)
      .then(() => log.close())
      .then(() => dialer.close())
      .then(() => options.onShutdown?.())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          say(`error while closing: ${(error as Error).message}`);
          process.exit(1);
        },
      );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  const bound = await server.listen(listen.host, listen.port).catch((error: unknown) => {
    throw (error as NodeJS.ErrnoException).code?.startsWith('E') ? new Error(explainListenError(error, formatAddress(listen))) : error;
  });
  const address = formatAddress(bound);
  const contexts = dialer.contexts();
  const first = contexts[0];
  if (contexts.length === 1 && first) {
    say(`listening on ${address} (context ${first.context}, cluster ${first.cluster}, namespace ${first.namespace})`);
  } else {
    say(`listening on ${address} (${contexts.length} contexts, default ${first?.alias ?? ''})`);
    for (const line of contextLines(contexts)) say(`  ${line}`);
  }
  const creds = auth ? `${encodeURIComponent(auth.username)}:****@` : '';
  const hints = [
    `export ALL_PROXY=socks5h://${creds}${address}`,
    `curl -x http://${creds}${address} http://SERVICE.NAMESPACE/`,
    `curl --socks5-hostname ${creds}${address} http://SERVICE.NAMESPACE.svc.${dialer.clusterDomain}/`,
    `browser PAC file: http://${address}/proxy.pac`,
    `status page: http://${address}/ (also /status.json, /metrics; or: kubesocks status --listen ${address})`,
  ];
  const other = contexts[1];
  if (other) {
    const selector = auth ? `${encodeURIComponent(auth.username)}+${other.alias}:****@` : `${other.alias}@`;
    // Before the PAC line, which stays last.
    hints.splice(
      hints.length - 1,
      0,
      `curl -x http://${creds}${address} http://SERVICE.NAMESPACE.${other.alias}/          # a name in context ${other.alias}`,
      `curl -x http://${selector}${address} http://SERVICE.NAMESPACE/   # proxy username ${other.alias}: short names in context ${other.alias}`,
    );
  }
  for (const hint of options.hints?.(address) ?? hints) say(`  ${hint}`);

  return server;
}
