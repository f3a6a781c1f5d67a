/**
 * Whether a request's `Host` names this proxy itself — the one check in
 * front of every page the proxy serves (/proxy.pac, /healthz, /readyz, the
 * status pages). DNS rebinding: a web page on `evil.example` whose name
 * re-resolves to 127.0.0.1 makes the browser send origin-form requests here,
 * but always with `Host: evil.example[:port]`; only a name that already means
 * this machine (or the address the client connected to) is ours.
 * https://en.wikipedia.org/wiki/DNS_rebinding
 */
import { isIP } from 'node:net';
import { parseAuthority, unmapIPv4 } from '../net/address.js';
import { isLoopbackHost } from '../net/loopback.js';

/**
 * True when `hostHeader` (as sent: `host`, `host:port`, `[v6]:port`) names a
 * loopback address, `localhost`, or one of `ownAddresses` (the listen address
 * and the address this socket was accepted on). An absent or malformed Host
 * is not ours: every browser sends one, so only a page's request could be
 * missing the proof.
 */
export function isOwnHost(hostHeader: string | undefined, ownAddresses: ReadonlyArray<string | undefined>): boolean {
  if (hostHeader === undefined) return false;
  const authority = parseAuthority(hostHeader.trim(), 80);
  if (!authority) return false;
  const host = unmapIPv4(authority.host.toLowerCase());
  if (isLoopbackHost(host)) return true;
  // Only literal addresses: a name (even one resolving here) is what rebinding uses.
  if (isIP(host) === 0) return false;
  // A wildcard listen address (0.0.0.0, ::) is no address anyone connects to.
  if (host === '0.0.0.0' || host === '::') return false;
  return ownAddresses.some((own) => own !== undefined && own !== '' && unmapIPv4(own.toLowerCase()) === host);
}
