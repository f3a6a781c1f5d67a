/**
 * How long to wait before telling a client its proxy credentials are wrong:
 * guessing `--auth` must be slow, while a client with the right password is
 * never made to wait (the caller answers successes at once and asks this
 * class only about failures).
 *
 * Per client address, failures within a window are counted: the first
 * `freeFailures` (a typo, a browser's retry) are answered at once, each
 * further one after a delay that doubles from `firstDelayMs` up to
 * `maxDelayMs`. An address is forgotten `windowMs` after its last failure.
 * Successes do not reset the count: on loopback every local program shares
 * 127.0.0.1, so a legitimate client's successes would otherwise keep
 * resetting an attacker's count.
 *
 * The table is bounded: entries older than the window are dropped first
 * (they are kept in order of last failure, so that is a look at the front);
 * when `maxAddresses` addresses are still in it, a new address counts on one
 * shared overflow entry instead of evicting another address — so an attacker
 * with many addresses cannot flush its own counts, at worst making the
 * failures of other new addresses slow too. IPv6 clients are counted per /64
 * (one host usually owns a whole /64).
 *
 * Pure: no sockets, no timers; time is passed in, so it can be tested with
 * synthetic addresses and clocks.
 */
import { isIPv6 } from 'node:net';

export interface AuthThrottleOptions {
  /** Failures per address within the window answered without delay. */
  freeFailures: number;
  /** The delay of the first failure beyond the free ones; it doubles with each further one. */
  firstDelayMs: number;
  /** The longest delay. */
  maxDelayMs: number;
  /** An address's count is forgotten this long after its last failure. */
  windowMs: number;
  /** Addresses counted separately at most; beyond, new addresses share one count. */
  maxAddresses: number;
}

export const DEFAULT_AUTH_THROTTLE: Readonly<AuthThrottleOptions> = Object.freeze({
  freeFailures: 5,
  firstDelayMs: 250,
  maxDelayMs: 3000,
  windowMs: 60_000,
  maxAddresses: 4096,
});

/** The key shared by addresses that find the table full. */
export const OVERFLOW_KEY = '*';

interface Entry {
  failures: number;
  lastFailureAt: number;
}

export interface FailureVerdict {
  /** How long to wait before answering this failure. */
  delayMs: number;
  /** Failures of this address (or of the overflow entry) within the window, this one included. */
  failures: number;
  /** What was counted: the address, its /64, or OVERFLOW_KEY. */
  key: string;
}

export class AuthThrottle {
  readonly #options: AuthThrottleOptions;
  /** Least recently failed first (an entry is re-inserted on each failure). */
  readonly #entries = new Map<string, Entry>();
  readonly #overflow: Entry = { failures: 0, lastFailureAt: 0 };

  constructor(options: Partial<AuthThrottleOptions> = {}) {
    const merged = { ...DEFAULT_AUTH_THROTTLE, ...options };
    for (const [name, value] of Object.entries(merged)) {
      if (!Number.isInteger(value) || value < 0) throw new TypeError(`Expected \`${name}\` to be a non-negative integer, got ${String(value)}`);
    }
    if (merged.maxAddresses < 1) throw new TypeError('Expected `maxAddresses` to be at least 1');
    this.#options = merged;
  }

  /** How long after its last failure an address is forgotten. */
  get windowMs(): number {
    return this.#options.windowMs;
  }

  /** Addresses counted now (not the overflow entry). */
  get size(): number {
    return this.#entries.size;
  }

  /** Counts one failure of `address` (as the socket reports it) at `now` and says how long to wait before answering it. */
  failed(address: string, now: number = Date.now()): FailureVerdict {
    const { windowMs } = this.#options;
    this.#forgetOlderThan(now - windowMs);
    let key = throttleKey(address);
    let entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
    } else if (this.#entries.size < this.#options.maxAddresses) {
      entry = { failures: 0, lastFailureAt: now };
    } else {
      key = OVERFLOW_KEY;
      entry = this.#overflow;
      if (now - entry.lastFailureAt > windowMs) entry.failures = 0;
    }
    entry.failures++;
    entry.lastFailureAt = now;
    if (entry !== this.#overflow) this.#entries.set(key, entry);
    return { delayMs: this.delayFor(entry.failures), failures: entry.failures, key };
  }

  /** The delay for an address's `failures`-th failure within the window. */
  delayFor(failures: number): number {
    const { freeFailures, firstDelayMs, maxDelayMs } = this.#options;
    const beyond = failures - freeFailures;
    if (beyond <= 0) return 0;
    // 2 ** 30 ms is past any sensible cap; the exponent must not grow without bound.
    return Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(beyond - 1, 30));
  }

  #forgetOlderThan(cutoff: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.lastFailureAt >= cutoff) return;
      this.#entries.delete(key);
    }
  }
}

/**
 * What counts as one client: an IPv4 address as is (IPv4-mapped IPv6 as the
 * IPv4 address), an IPv6 address by its /64 (`2001:db8:0:1::/64`).
 */
export function throttleKey(address: string): string {
  const bare = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(bare)) return bare;
  const groups = expandIPv6(bare);
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, an embedded IPv4 tail as two groups). */
function expandIPv6(address: string): number[] {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}
