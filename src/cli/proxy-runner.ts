/**
 * Runs the proxy in front of a dialer and speaks to the person at the
 * terminal: the ready line, hints, the -v connection log, errors, and a
 * clean exit on SIGINT/SIGTERM. Shared by `serve` and `demo`.
 */
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
  const context = dialer.context();
  const cluster = `context ${context.name}, cluster ${context.clusterServer}, namespace ${context.namespace}`;
  say(`listening on ${address} (${cluster})`);
  const creds = auth ? `${encodeURIComponent(auth.username)}:****@` : '';
  const hints = [
    `export ALL_PROXY=socks5h://${creds}${address}`,
    `curl -x http://${creds}${address} http://SERVICE.NAMESPACE/`,
    `curl --socks5-hostname ${creds}${address} http://SERVICE.NAMESPACE.svc.${dialer.clusterDomain}/`,
    `browser PAC file: http://${address}/proxy.pac`,
    `status page: http://${address}/ (also /status.json, /metrics; or: kubesocks status --listen ${address})`,
  ];
  for (const hint of options.hints?.(address) ?? hints) say(`  ${hint}`);

  return server;
}
