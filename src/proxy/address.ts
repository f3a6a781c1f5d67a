/**
 * Small, pure helpers for the textual forms of addresses the proxy meets:
 * `host:port` authorities (HTTP CONNECT, logs), IPv6 literals from SOCKS
 * bytes, and the loopback test that guards `listen()`.
 */
import { isIP, isIPv4 } from 'node:net';
import type { ProxyTarget } from './types.js';

/** `host:port`, with brackets around IPv6 literals (RFC 3986 §3.2.2). */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` of a target, for logs and error messages. */
export function formatTarget(target: ProxyTarget): string {
  return formatHostPort(target.host, target.port);
}

/**
 * Turns 16 bytes into the canonical text form of RFC 5952 §4: lower-case
 * hex, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`.
 */
export function formatIPv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`an IPv6 address has 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/** Dotted quad from 4 bytes. */
export function formatIPv4(bytes: Uint8Array): string {
  if (bytes.length !== 4) throw new RangeError(`an IPv4 address has 4 bytes, got ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/**
 * Parses an authority (`host:port`, `[v6]:port`, RFC 3986 §3.2) keeping the
 * host as written (no case folding or IP normalisation, unlike URL). The
 * port is required unless `defaultPort` is given (CONNECT requires it,
 * RFC 9110 §9.3.6). No userinfo. Returns null when the text is not such an
 * authority.
 */
export function parseAuthority(authority: string, defaultPort?: number): ProxyTarget | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@?#]+))(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return null;
  const host = m[1] ?? m[2];
  const port = m[3] !== undefined ? Number(m[3]) : defaultPort;
  if (port === undefined) return null;
  if (host === undefined || !isValidPort(port)) return null;
  if (m[1] !== undefined && isIP(host) !== 6) return null;
  return { host: stripTrailingDot(host), port };
}

export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** `web.demo.` and `web.demo` name the same host; the Connector gets the latter. */
export function stripTrailingDot(host: string): string {
  return host.length > 1 && host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Checks a host name as the proxy received it: printable ASCII without
 * spaces, at most 255 bytes (RFC 1035 §2.3.4). IDNs arrive as punycode from
 * well-behaved clients; anything else is not a name the proxy can pass on.
 */
export function isPlausibleHostName(host: string): boolean {
  return host.length >= 1 && host.length <= 255 && /^[\x21-\x7e]+$/.test(host);
}

/** IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as the IPv4 address it stands for. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] !== undefined && isIPv4(m[1]) ? m[1] : address;
}

/**
 * True for names that only this machine can reach: `localhost`, 127.0.0.0/8,
 * ::1 and their IPv4-mapped form. Wildcards (`0.0.0.0`, `::`, empty) are not.
 */
export function isLoopbackHost(host: string): boolean {
  const h = unmapIPv4(host.replace(/^\[(.*)\]$/, '$1')).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIP(h) === 6) return /^(?:0{0,4}:){1,7}0{0,3}1$/.test(h) || h === '::1';
  return false;
}
