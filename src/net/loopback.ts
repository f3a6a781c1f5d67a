/**
 * What counts as "only this machine", and the one rule built on it: a
 * listener off loopback must require credentials, because anyone who can
 * reach it could use the cluster credentials behind it.
 *
 * Addresses: every spelling of 127.0.0.0/8 and ::1, including IPv4-mapped
 * IPv6 (`::ffff:127.0.0.1`, `::ffff:7f00:1`): a socket bound there only
 * accepts connections from this machine. Names: exactly `localhost`, which
 * the system resolves from its hosts file. Other names are not trusted even
 * when they end in `.localhost`: RFC 6761 §6.3 asks resolvers to answer those
 * with loopback, but glibc without nss-myhostname sends them to DNS, which
 * may answer anything. Wildcards (`0.0.0.0`, `::`, empty) are not loopback.
 */
import { BlockList, isIP } from 'node:net';

// BlockList matches IPv4-mapped IPv6 against IPv4 rules in any spelling
// (https://nodejs.org/api/net.html#class-netblocklist).
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for hosts only this machine can reach (see above); `[v6]` brackets are allowed. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (h.toLowerCase() === 'localhost') return true;
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The rule for every listener that gives access to a cluster: undefined when
 * listening on `host` is allowed, else the refusal as the start of one line
 * (`refusing to listen on SHOWN without credentials`); the caller adds what
 * to do, which depends on who asked (a flag, an option).
 */
export function openListenerRefusal(host: string, hasCredentials: boolean, shown: string = host || 'all interfaces'): string | undefined {
  if (hasCredentials || isLoopbackHost(host)) return undefined;
  return `refusing to listen on ${shown} without credentials`;
}
