/** `--listen HOST:PORT` (or just PORT), and the loopback rule applied to it before anything starts. */
import { formatHostPort, parsePortText, splitHostPort, type HostPort } from '../net/address.js';
import { openListenerRefusal } from '../net/loopback.js';
import { UsageError } from './flags.js';
import { resolveCredentials, type AuthFlags } from './credentials.js';

export type ListenAddress = HostPort;

/**
 * The proxy's address when --listen is not given: $KUBESOCKS_LISTEN, else
 * 127.0.0.1:1080. One variable moves `serve`, `demo`, `env` and `exec`
 * together (and lets the README's commands run as written in its test).
 */
export function defaultListen(): string {
  return process.env.KUBESOCKS_LISTEN || '127.0.0.1:1080';
}

export function parseListen(value: string): ListenAddress {
  // A bare PORT listens on 127.0.0.1.
  const split = /^\d+$/.test(value) ? { host: '127.0.0.1', port: value } : splitHostPort(value);
  if (!split) throw new UsageError(`--listen: "${value}" is not HOST:PORT (write IPv6 addresses as [addr]:PORT)`);
  const port = split.port === undefined ? undefined : parsePortText(split.port);
  if (port === undefined) throw new UsageError(`--listen: expected HOST:PORT with a port 0-65535, got "${value}"`);
  return { host: split.host, port };
}

export function formatAddress(address: ListenAddress): string {
  return formatHostPort(address.host, address.port);
}

/** A listener off loopback must require credentials: checked before the kubeconfig is read or anything starts. */
export function requireAuthOffLoopback(listen: ListenAddress, auth: { username: string; password: string } | undefined): void {
  const refusal = openListenerRefusal(listen.host, auth !== undefined, formatAddress(listen));
  if (refusal) {
    throw new UsageError(
      `${refusal}: anyone who can reach it could use your cluster credentials; add --auth USER:PASSWORD (or --auth-file FILE, or KUBESOCKS_AUTH), or listen on 127.0.0.1`,
    );
  }
}

/**
 * `--listen` and `--auth`/`--auth-file` (or KUBESOCKS_AUTH, see credentials.ts)
 * of the commands that run the proxy, with the loopback rule applied before
 * anything starts.
 */
export function parseListenAndAuth(flags: { listen?: string | undefined } & AuthFlags): { listen: ListenAddress; auth: { username: string; password: string } | undefined } {
  const listen = parseListen(flags.listen ?? defaultListen());
  const auth = resolveCredentials(flags);
  requireAuthOffLoopback(listen, auth);
  return { listen, auth };
}
