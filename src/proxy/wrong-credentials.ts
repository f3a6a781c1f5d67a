/**
 * Answering a client whose proxy credentials are wrong, after the delay
 * AuthThrottle sets for its address (SOCKS5 RFC 1929 status 01, HTTP 407,
 * the status pages' 401).
 *
 * - Only a guess is counted and delayed: a request that presented no
 *   credentials at all is the challenge round trip every browser and
 *   `curl --proxy-anyauth` makes first, and is answered at once.
 * - A right password is never delayed: the fronts answer successes at once,
 *   whatever this address's count.
 * - While an answer waits it keeps a handshake slot (admission.ts): a SOCKS5
 *   client is answered before its handshake ends, so it still holds its own;
 *   an HTTP request's handshake ended with its head, so one is taken for the
 *   wait. So delayed clients are among the `maxHandshakes` sockets the proxy
 *   holds at once, and a flood of them waits unread (one file descriptor
 *   each) instead of growing memory. The cost: if a flood fills every slot
 *   with delayed failures, a new client waits for a slot (first come, first
 *   served; slots turn over within `maxDelayMs`); it is never refused.
 *   Answering early to make room would hand a parallel attacker its answers
 *   at full speed.
 * - A client that leaves while it waits is not answered; its slot is freed.
 * - The limit of this design: as a right password is answered at once, a
 *   guesser that stops waiting after a few milliseconds knows its guess was
 *   wrong without the answer. This slows guessers that wait for answers;
 *   docs/security.md#credentials has the figures of both kinds.
 */
import type { ClientConnection } from './client-connection.js';
import { OVERFLOW_KEY, type AuthThrottle, type FailureVerdict } from './auth-throttle.js';
import { KubesocksError } from '../errors.js';

/** Kept between a delayed SOCKS5 answer and the handshake deadline, so the client gets the answer, not a timeout. */
const DEADLINE_MARGIN_MS = 100;

/** A refused request, as a front hands it over. */
export interface AuthFailure {
  /** The client presented credentials (a username and password, a Proxy-Authorization or Authorization header). */
  presented: boolean;
  /** What to report (PROXY_AUTH). */
  error: KubesocksError;
  /** Sends the refusal (RFC 1929 status 01, 407, 401). */
  answer: () => void;
  /** The socket is still in its handshake and holds its own slot (SOCKS5); otherwise one is held for the wait. */
  inHandshake: boolean;
}

export class WrongCredentials {
  readonly #throttle: AuthThrottle;
  readonly #holdSlot: () => () => void;

  /** `holdSlot` takes a handshake slot and returns its release (Admission.hold). */
  constructor(throttle: AuthThrottle, holdSlot: () => () => void) {
    this.#throttle = throttle;
    this.#holdSlot = holdSlot;
  }

  /**
   * Runs `answer` at once when the client presented no credentials;
   * otherwise counts a failure of its address and runs `answer` after the
   * throttle's delay. Returns the error to report (the one given, saying
   * the delay when there is one).
   */
  answer(conn: ClientConnection, failure: AuthFailure): KubesocksError {
    const { presented, error, answer, inHandshake } = failure;
    if (!presented) {
      answer();
      return error;
    }
    const verdict = this.#throttle.failed(clientAddress(conn.client));
    let delayMs = verdict.delayMs;
    if (inHandshake) {
      const left = conn.acceptedAt + conn.ctx.handshakeTimeoutMs - Date.now() - DEADLINE_MARGIN_MS;
      delayMs = Math.max(0, Math.min(delayMs, left));
    }
    if (delayMs === 0 || conn.socket.destroyed) {
      answer();
      return error;
    }
    this.#wait(conn, delayMs, answer, inHandshake);
    return new KubesocksError(error.code, `${error.message}; answered after ${delayMs} ms (${this.#describe(verdict)})`);
  }

  #wait(conn: ClientConnection, delayMs: number, answer: () => void, inHandshake: boolean): void {
    const release = inHandshake ? noop : this.#holdSlot();
    const done = (): void => {
      clearTimeout(timer);
      conn.socket.off('close', done);
      release();
    };
    const timer = setTimeout(
      conn.guard(() => {
        done();
        answer();
      }),
      delayMs,
    );
    conn.socket.once('close', done);
  }

  #describe(verdict: FailureVerdict): string {
    const window = `in ${Math.round(this.#throttle.windowMs / 1000)} s`;
    if (verdict.key === OVERFLOW_KEY) return `${verdict.failures} failed logins ${window} from addresses beyond those counted one by one`;
    return `${verdict.failures} failed logins ${window} from ${verdict.key}`;
  }
}

/** The address part of `ip:port` / `[ipv6]:port`. */
function clientAddress(client: string): string {
  return client.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

function noop(): void {}
