/**
 * Which headers a forwarding proxy passes on. Hop-by-hop headers describe
 * one connection, not the message, and must not be forwarded (RFC 9110
 * §7.6.1): the fixed list below, plus every header named in `Connection`.
 */

/** RFC 9110 §7.6.1 and RFC 2616 §13.5.1, plus the non-standard Proxy-Connection. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'transfer-encoding',
]);

export interface FilterOptions {
  /** Further lower-case names to drop (e.g. `host`, which is rewritten). */
  drop?: readonly string[];
  /**
   * Transfer-Encoding is hop-by-hop, but Node decodes the chunked framing
   * and re-encodes when it sees `chunked` in the outgoing header. `keep`:
   * forward it as received (requests — Node would otherwise send a GET body
   * unframed); `unless-chunked`: drop a plain `chunked` and let Node frame the
   * response for the client's HTTP version, keep other codings.
   */
  transferEncoding: 'keep' | 'unless-chunked';
}

/** Filters raw headers (`[name, value, name, value, …]`, as in `rawHeaders`), keeping order and case. */
export function filterHeaders(rawHeaders: readonly string[], options: FilterOptions): string[] {
  const named = new Set(options.drop ?? []);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'connection') {
      for (const token of (rawHeaders[i + 1] ?? '').split(',')) {
        const name = token.trim().toLowerCase();
        if (name) named.add(name);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const value = rawHeaders[i + 1] ?? '';
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      const plainChunked = value.replace(/\s+/g, '').toLowerCase() === 'chunked';
      if (options.transferEncoding === 'keep' || !plainChunked) out.push(name, value);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    out.push(name, value);
  }
  return out;
}
