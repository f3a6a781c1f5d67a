/**
 * Text that came off the wire, made safe and readable for logs, error
 * messages and replies, and the one check every front applies to a
 * requested host before anything is dialled.
 *
 * Node hands HTTP request targets and header values over as latin1 (one
 * character per byte), and the SOCKS parsers do the same with names, so no
 * byte is lost. A name sent as UTF-8 (`wéb.demo`) therefore reads
 * `wÃ©b.demo` until it is decoded again for people.
 */
import { isIP, isIPv4 } from 'node:net';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes-as-latin1 text as a person should read it: decoded as UTF-8 when it is valid UTF-8. */
export function displayWireText(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  const bytes = Buffer.from(text, 'latin1');
  try {
    return utf8.decode(bytes);
  } catch {
    return text;
  }
}

/**
 * Hides the userinfo of URLs and authorities (`http://user:pw@host/`,
 * `user:pw@host:443`) wherever it could be printed: RFC 9110 §4.2.4
 * deprecates it, and what clients put there is usually a password. Applied
 * to text that may be malformed, so it errs on the side of hiding: whatever
 * stands between a `/` (or the start) and an `@` goes.
 */
export function redactUserinfo(text: string): string {
  return text.replace(/[^\s/?#@]*@/g, '***@');
}

/** A quoted, shortened, redacted, readable form of a request target for a message. */
export function quoteWireText(text: string, max = 200): string {
  const shown = displayWireText(redactUserinfo(text));
  return JSON.stringify(shown.length > max ? `${shown.slice(0, max)}…` : shown);
}

/** True when a URL or authority carries userinfo (`user@`, `user:pw@`) before its host. */
export function hasUserinfo(urlOrAuthority: string): boolean {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#\s]*)/i.exec(urlOrAuthority)?.[1] ?? urlOrAuthority;
  return authority.includes('@');
}

/**
 * The unspecified address and "this network" (0.0.0.0/8, RFC 1122
 * §3.2.1.3; ::, RFC 4291 §2.5.2; their IPv4-mapped forms; and the numeric
 * shorthands inet_aton accepts, `0`, `0x0`, `0.0`): they name no host. Linux
 * connects them to this machine, so they are refused like any non-address,
 * the same way by every front.
 */
export function isUnspecifiedAddress(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (isIPv4(h)) return h.startsWith('0.');
  if (isIP(h) === 6) {
    const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
    if (mapped !== undefined) return mapped.startsWith('0.');
    return /^[0:]+$/.test(h);
  }
  return /^(?:0x0*|0+)(?:\.(?:0x0*|0+)){0,3}$/.test(h);
}

/**
 * Why a requested host cannot be a destination, or undefined when it can
 * be: every front (SOCKS5, SOCKS4a, CONNECT, absolute-form) asks this before
 * it asks the Connector, so all refuse the same hosts with the same words.
 */
export function hostProblem(host: string): string | undefined {
  if (isUnspecifiedAddress(host)) {
    const what = /^[0.:\[\]]+$|^0x0*$/i.test(host) ? 'the unspecified address' : 'in 0.0.0.0/8 ("this network")';
    return `${JSON.stringify(host)} is ${what}, not a destination; use 127.0.0.1 or a name for this machine`;
  }
  if (host.length < 1 || host.length > 255) return `a host name must be 1 to 255 bytes long, got ${host.length}`;
  if (/[^\x21-\x7e]/.test(host)) {
    const shown = displayWireText(host);
    if (/^[^\x00-\x20\x7f]+$/.test(shown) && /[^\x00-\x7f]/.test(shown)) {
      return `${JSON.stringify(shown)} is not an ASCII host name: send internationalised names as punycode (xn--…)`;
    }
    return `invalid host name ${JSON.stringify(shown)}`;
  }
  return undefined;
}
