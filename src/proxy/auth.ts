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

/**
 * What a presented username (and password) admits: whether the client may
 * use the proxy, and the selector its username carries (a context alias,
 * for the Connector to interpret).
 *
 * - Without configured credentials every client is admitted and a non-empty
 *   username is the selector (`socks5h://staging@127.0.0.1:1080`).
 * - With credentials USER:PASS, the username is `USER` (no selector) or
 *   `USER+SELECTOR`, and the password must match either way. Split at the
 *   last `+`: a selector (a DNS label) never contains one, a USER may.
 *   Both comparisons take the same time wherever the strings differ.
 */
export function admit(
  checker: CredentialChecker | undefined,
  username: Buffer | string | undefined,
  password: Buffer | string | undefined,
): { ok: boolean; selector: string | undefined } {
  const user = username === undefined ? '' : Buffer.isBuffer(username) ? username.toString('utf8') : username;
  if (!checker) return { ok: true, selector: user === '' ? undefined : user };
  if (username === undefined || password === undefined) return { ok: false, selector: undefined };
  if (checker.matches(username, password)) return { ok: true, selector: undefined };
  const plus = user.lastIndexOf('+');
  if (plus <= 0 || plus === user.length - 1) return { ok: false, selector: undefined };
  return checker.matches(user.slice(0, plus), password) ? { ok: true, selector: user.slice(plus + 1) } : { ok: false, selector: undefined };
}

/** admit() for an HTTP `Proxy-Authorization`/`Authorization` header value (absent: no username). */
export function admitBasic(checker: CredentialChecker | undefined, header: string | undefined): { ok: boolean; selector: string | undefined } {
  const presented = parseBasic(header);
  if (!presented) return checker ? { ok: false, selector: undefined } : { ok: true, selector: undefined };
  return admit(checker, presented.username, presented.password);
}

/** The challenge sent with 407 (RFC 9110 §11.7.1, RFC 7617 §2). */
export const BASIC_CHALLENGE = 'Basic realm="kubesocks"';
