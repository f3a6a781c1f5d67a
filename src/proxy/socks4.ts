/**
 * SOCKS4 ("SOCKS: A protocol for TCP proxy across firewalls",
 * https://www.openssh.com/txt/socks4.protocol) and its 4a extension
 * (https://www.openssh.com/txt/socks4a.protocol), where the client sends a
 * host name for the proxy to resolve — the form that reaches cluster names.
 *
 *   request ──▶ done (connect)
 *      └──────▶ failed (reply 0x5B, close)
 *
 * SOCKS4 has no password, so when the proxy requires credentials every
 * SOCKS4 request is refused.
 */
import { KubesocksError } from '../errors.js';
import { formatIPv4, isValidPort, stripTrailingDot } from '../net/address.js';
import { hostProblem } from './wire-text.js';
import { MORE, type HandshakeOutcome, type HandshakeStep, type SocksHandshake } from './handshake.js';
import { failureReply, SOCKS4_REPLY } from './replies.js';

export const SOCKS4_VERSION = 0x04;
/** The reply's VN field is 0, not 4. */
export const SOCKS4_REPLY_VERSION = 0x00;

/** CD values in a request. */
export const SOCKS4_COMMAND = {
  CONNECT: 0x01,
  BIND: 0x02,
} as const;

/** The fixed part: VN CD DSTPORT(2) DSTIP(4). */
const FIXED_BYTES = 8;
/** USERID and the 4a host name are NUL-terminated; refuse to buffer more than this for either. */
export const SOCKS4_MAX_FIELD_BYTES = 255;

type State = 'request' | 'done' | 'failed';

export interface Socks4Options {
  /** Credentials are required: SOCKS4 is refused (it cannot carry a password). */
  requireCredentials?: boolean;
}

/**
 * The reply. DSTPORT and DSTIP "are ignored" for CONNECT, so they are zero.
 *
 *   +----+----+----+----+----+----+----+----+
 *   | VN | CD | DSTPORT |      DSTIP        |
 *   +----+----+----+----+----+----+----+----+
 *      1    1      2              4
 */
export function socks4Reply(cd: number): Buffer {
  return Buffer.from([SOCKS4_REPLY_VERSION, cd, 0, 0, 0, 0, 0, 0]);
}

export class Socks4Handshake implements SocksHandshake {
  readonly protocol = 'socks4';
  #state: State = 'request';
  #buf: Buffer = Buffer.alloc(0);
  readonly #requireCredentials: boolean;

  constructor(options: Socks4Options = {}) {
    this.#requireCredentials = options.requireCredentials ?? false;
  }

  get state(): State {
    return this.#state;
  }

  feed(chunk: Buffer): HandshakeStep {
    if (this.#state !== 'request') throw new Error(`SOCKS4 handshake fed after it was ${this.#state}`);
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    return { send: [], outcome: this.#request() };
  }

  successReply(): Buffer {
    return socks4Reply(SOCKS4_REPLY.GRANTED);
  }

  failureReply(err: KubesocksError): Buffer {
    return socks4Reply(failureReply(err).socks4);
  }

  /**
   * The request:
   *
   *   +----+----+----+----+----+----+----+----+----+----+....+----+
   *   | VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|
   *   +----+----+----+----+----+----+----+----+----+----+....+----+
   *      1    1      2              4           variable       1
   *
   * SOCKS4a: DSTIP is 0.0.0.x with x non-zero, and the host name follows the
   * USERID's NUL, itself NUL-terminated.
   */
  #request(): HandshakeOutcome {
    const buf = this.#buf;
    if (buf.length < FIXED_BYTES) return MORE;
    if (buf[0] !== SOCKS4_VERSION) return this.#fail(new KubesocksError('PROTOCOL_ERROR', `SOCKS4 request with version ${buf[0]}`));
    if (this.#requireCredentials) {
      return this.#fail(
        new KubesocksError('PROXY_AUTH', 'SOCKS4 cannot carry the password this proxy requires; use SOCKS5 with a username and password'),
      );
    }
    const cd = buf[1];
    if (cd !== SOCKS4_COMMAND.CONNECT) {
      const what = cd === SOCKS4_COMMAND.BIND ? 'BIND' : `command ${cd}`;
      return this.#fail(new KubesocksError('PROTOCOL_ERROR', `SOCKS4 ${what} is not supported: port-forward carries TCP connections only`));
    }
    const port = buf.readUInt16BE(2);
    const ip = buf.subarray(4, 8);
    const userEnd = this.#findNul(FIXED_BYTES);
    if (userEnd === 'more') return MORE;
    if (userEnd === 'too-long') return this.#fail(new KubesocksError('PROTOCOL_ERROR', 'SOCKS4 user id too long'));
    let host: string;
    let end: number;
    // 0.0.0.x, x != 0: "the client cannot resolve the destination host's domain name" (4a).
    const isSocks4a = ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0;
    if (isSocks4a) {
      const hostEnd = this.#findNul(userEnd + 1);
      if (hostEnd === 'more') return MORE;
      if (hostEnd === 'too-long') return this.#badTarget('SOCKS4a host name too long');
      host = stripTrailingDot(buf.subarray(userEnd + 1, hostEnd).toString('latin1'));
      end = hostEnd + 1;
    } else {
      host = formatIPv4(ip);
      end = userEnd + 1;
    }
    const rest = buf.subarray(end);
    this.#buf = Buffer.alloc(0);
    const problem = hostProblem(host);
    if (problem) return this.#badTarget(`SOCKS4 request refused: ${problem}`);
    if (!isValidPort(port)) return this.#badTarget(`SOCKS4 request for port ${port}`);
    this.#state = 'done';
    return { type: 'connect', target: { host, port }, rest };
  }

  /** Index of the NUL ending a field that starts at `from`, bounded by SOCKS4_MAX_FIELD_BYTES. */
  #findNul(from: number): number | 'more' | 'too-long' {
    const limit = from + SOCKS4_MAX_FIELD_BYTES + 1;
    const nul = this.#buf.subarray(0, limit).indexOf(0x00, from);
    if (nul >= 0) return nul;
    return this.#buf.length >= limit ? 'too-long' : 'more';
  }

  #badTarget(message: string): HandshakeOutcome {
    return this.#fail(new KubesocksError('BAD_TARGET', message));
  }

  #fail(error: KubesocksError): HandshakeOutcome {
    this.#state = 'failed';
    this.#buf = Buffer.alloc(0);
    return { type: 'fail', reply: this.failureReply(error), error };
  }
}
