/**
 * Proxy credentials: validation of the configured pair, constant-time
 * comparison of what a client presents, and the HTTP Basic scheme.
 *
 * Credentials never appear in errors, records or debug output.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The username and password every client must present when set. */
export interface Credentials {
  username: string;
  password: string;
}

/** RFC 1929 §2 carries each field with a one-byte length: 1 to 255 bytes. */
const MAX_FIELD_BYTES = 255;

/**
 * Throws a TypeError naming the problem when `creds` cannot be used by every
 * protocol the proxy speaks (so a pair that would work for HTTP but not for
 * SOCKS5 is refused at start, not at the first client).
 */
export function validateCredentials(creds: unknown): asserts creds is Credentials {
  if (typeof creds !== 'object' || creds === null) {
    throw new TypeError(`Expected the \`auth\` option to be an object with username and password, got ${creds === null ? 'null' : typeof creds}`);
  }
  const { username, password } = creds as Partial<Credentials>;
  for (const [name, value] of [['username', username], ['password', password]] as const) {
    if (typeof value !== 'string') throw new TypeError(`Expected \`auth.${name}\` to be a string, got ${typeof value}`);
    const bytes = Buffer.byteLength(value);
    if (bytes < 1 || bytes > MAX_FIELD_BYTES) {
      throw new TypeError(`Expected \`auth.${name}\` to be 1 to ${MAX_FIELD_BYTES} bytes long (RFC 1929), got ${bytes}`);
    }
  }
  // HTTP Basic splits user-id and password at the first colon (RFC 7617 §2).
  if ((username as string).includes(':')) throw new TypeError('Expected `auth.username` not to contain ":" (HTTP Basic cannot carry it)');
}

const digest = (value: Buffer | string): Buffer => createHash('sha256').update(value).digest();

/**
 * Compares presented credentials with the configured ones in time that does
 * not depend on where they differ: both sides are hashed to equal-length
 * digests first, because timingSafeEqual needs equal lengths and the length
 * itself must not leak.
 */
export class CredentialChecker {
  readonly #username: Buffer;
  readonly #password: Buffer;

  constructor(creds: Credentials) {
    this.#username = digest(creds.username);
    this.#password = digest(creds.password);
  }

  matches(username: Buffer | string, password: Buffer | string): boolean {
    const userOk = timingSafeEqual(digest(username), this.#username);
    const passOk = timingSafeEqual(digest(password), this.#password);
    return userOk && passOk;
  }

  /** Checks a `Proxy-Authorization` (or `Authorization`) header value. */
  matchesBasic(header: string | undefined): boolean {
    const presented = parseBasic(header);
    return presented !== null && this.matches(presented.username, presented.password);
  }
}

/**
 * Decodes `Basic base64(user:pass)` (RFC 7617 §2). The scheme name is
 * case-insensitive. Returns null for anything else.
 */
export function parseBasic(header: string | undefined): { username: Buffer; password: Buffer } | null {
  if (header === undefined) return null;
  const m = /^\s*basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header);
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return null;
  return { username: decoded.subarray(0, colon), password: decoded.subarray(colon + 1) };
}

/** The challenge sent with 407 (RFC 9110 §11.7.1, RFC 7617 §2). */
export const BASIC_CHALLENGE = 'Basic realm="kubesocks"';
