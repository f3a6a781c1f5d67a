/**
 * Small, pure helpers for the textual forms of addresses every room meets:
 * the one `host:port` parser (HTTP CONNECT, dial targets, `--listen`), port
 * numbers, IPv6/IPv4 literals from SOCKS bytes, and `host:port` for logs.
 */
import { isIP, isIPv4 } from 'node:net';

export interface HostPort {
  /** A host name or an IP literal (IPv6 without brackets). */
  host: string;
  port: number;
}

/**
 * Splits `host:port`, `[v6]:port`, `host` and `[v6]` (RFC 3986 §3.2.2: an
 * IPv6 literal needs brackets once a port may follow, so a second colon
 * outside brackets is refused rather than guessed at). The port comes back as
 * written, for the caller to check with parsePortText. Returns null for an
 * empty host, brackets around something that is not an IPv6 address, or an
 * unbracketed IPv6 literal.
 */
export function splitHostPort(text: string): { host: string; port: string | undefined } | null {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? { host: bracketed[1]!, port: bracketed[2] } : null;
  const colon = text.indexOf(':');
  if (colon === -1) return text === '' ? null : { host: text, port: undefined };
  if (colon === 0 || text.indexOf(':', colon + 1) !== -1) return null;
  return { host: text.slice(0, colon), port: text.slice(colon + 1) };
}

/** A decimal port 0-65535 as written (`^\d{1,5}$`), or undefined. Callers that refuse 0 check isValidPort. */
export function parsePortText(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** `host:port`, with brackets around IPv6 literals (RFC 3986 §3.2.2). */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` of a target, for logs and error messages. */
export function formatTarget(target: HostPort): string {
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
export function parseAuthority(authority: string, defaultPort?: number): HostPort | null {
  const split = splitHostPort(authority);
  if (!split || !/^(?:[0-9A-Fa-f:.]+|[^\s:[\]/@?#]+)$/.test(split.host)) return null;
  const port = split.port !== undefined ? parsePortText(split.port) : defaultPort;
  if (port === undefined || !isValidPort(port)) return null;
  return { host: stripTrailingDot(split.host), port };
}

/** A port a connection can go to: an integer 1-65535. */
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
