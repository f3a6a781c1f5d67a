/**
 * The open-file limit (`ulimit -n`) as a budget the listener keeps to. Every
 * client socket is a file descriptor, and so is every connection the proxy
 * opens for its clients (to the API server, to pods, direct dials). If client
 * sockets took the last descriptors, the proxy could no longer reach the
 * cluster for the clients it has; and at the limit itself libuv closes new
 * connections without telling anyone (its "EMFILE trick":
 * https://github.com/libuv/libuv/blob/v1.x/src/unix/stream.c), so nothing
 * would say why clients are cut off.
 *
 * So a reserve of descriptors stays free: a client socket accepted while
 * fewer than `reserve` would remain is closed at once (and the listener says
 * so, accept-failures.ts). What is in use is counted from /proc/self/fd —
 * whatever holds the descriptors (Node's own, a loader's child process,
 * pool connections) — at most once per half reserve of accepted sockets, and
 * near the limit at most every 100 ms; in between it is estimated from the
 * sockets accepted since, which only errs towards closing.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Near the limit, the fewest milliseconds between two counts of /proc/self/fd (each lists every descriptor). */
const RECOUNT_NEAR_LIMIT_MS = 100;

/** The soft limit on open files, from /proc (Linux; Node raised it to the hard limit at start); undefined elsewhere or when unlimited. */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors the process has open now (Linux); `fallback` when they cannot be listed (at the limit, listing needs one more). */
function descriptorsInUse(fallback: number): number {
  try {
    // Less the one the listing itself opened.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return fallback;
  }
}

export interface BudgetVerdict {
  /** Accept the socket; when false, close it at once. */
  admit: boolean;
  /** Descriptors in use, counted or estimated. */
  inUse: number;
}

export class DescriptorBudget {
  readonly limit: number;
  /** Descriptors kept free for the process's own use: an eighth of the limit, at least 16. */
  readonly reserve: number;
  #counted: number;
  #countedAt: number;
  /** Sockets accepted since the last count. */
  #since = 0;

  /** The budget for this process's limit; undefined where the limit is unknown (no /proc) or unlimited. */
  static forThisProcess(): DescriptorBudget | undefined {
    const limit = openFilesLimit();
    return limit !== undefined && Number.isSafeInteger(limit) && limit > 0 ? new DescriptorBudget(limit) : undefined;
  }

  constructor(limit: number) {
    this.limit = limit;
    this.reserve = Math.max(16, Math.floor(limit / 8));
    this.#counted = descriptorsInUse(limit);
    this.#countedAt = Date.now();
  }

  /** For each accepted socket (its descriptor already open). */
  accepted(): BudgetVerdict {
    this.#since++;
    const ceiling = this.limit - this.reserve;
    const nearLimit = this.#counted + this.#since > ceiling;
    if (this.#since * 2 >= this.reserve || (nearLimit && Date.now() - this.#countedAt >= RECOUNT_NEAR_LIMIT_MS)) {
      this.#counted = descriptorsInUse(this.limit);
      this.#countedAt = Date.now();
      this.#since = 0;
    }
    const inUse = this.#counted + this.#since;
    if (inUse <= ceiling) return { admit: true, inUse };
    // Closed at once: its descriptor is free again.
    if (this.#since > 0) this.#since--;
    else this.#counted--;
    return { admit: false, inUse };
  }
}
