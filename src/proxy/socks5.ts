/**
 * SOCKS Protocol Version 5 (RFC 1928, https://www.rfc-editor.org/rfc/rfc1928)
 * with Username/Password Authentication (RFC 1929,
 * https://www.rfc-editor.org/rfc/rfc1929), as a state machine over an
 * accumulating buffer:
 *
 *   greeting ──(method 00)──────────────▶ request ──▶ done (connect)
 *      │     ──(method 02)──▶ auth ──ok──▶    │
 *      └──────────── any error ───────────────┴────▶ failed (reply, close)
 *
 * Only CONNECT is supported: port-forward carries TCP streams, so BIND and
 * UDP ASSOCIATE are answered with 07 (command not supported).
 */
import { KubesocksError } from '../errors.js';
import { formatIPv4, formatIPv6, isValidPort, stripTrailingDot } from '../net/address.js';
import { hostProblem } from './wire-text.js';
import { admit, type CredentialChecker } from './auth.js';
import { MORE, type HandshakeOutcome, type HandshakeStep, type SocksHandshake } from './handshake.js';
import { failureReply, SOCKS5_REPLY } from './replies.js';
import { isIP } from 'node:net';

export const SOCKS5_VERSION = 0x05;

/** RFC 1928 §3: METHOD values. */
export const SOCKS5_METHOD = {
  NO_AUTH: 0x00,
  GSSAPI: 0x01,
  USERNAME_PASSWORD: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

/** RFC 1928 §4: CMD values. */
export const SOCKS5_COMMAND = {
  CONNECT: 0x01,
  BIND: 0x02,
  UDP_ASSOCIATE: 0x03,
} as const;

/** RFC 1928 §4/§5: ATYP values. */
export const SOCKS5_ATYP = {
  IPV4: 0x01,
  DOMAIN: 0x03,
  IPV6: 0x04,
} as const;

/** RFC 1929 §2: the sub-negotiation has its own version and status bytes. */
export const USERPASS_VERSION = 0x01;
export const USERPASS_STATUS = { SUCCESS: 0x00, FAILURE: 0x01 } as const;

type State = 'greeting' | 'auth' | 'request' | 'done' | 'failed';

export interface Socks5Options {
  /** When set, only username/password (RFC 1929) is accepted, and it must match. */
  checker?: CredentialChecker | undefined;
}

/**
 * A reply (RFC 1928 §6). BND.ADDR/BND.PORT would be the address the proxy
 * used towards the target; a port-forward stream has none, so it is
 * 0.0.0.0:0, which clients ignore for CONNECT.
 *
 *   +----+-----+-------+------+----------+----------+
 *   |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
 *   +----+-----+-------+------+----------+----------+
 *   | 1  |  1  | X'00' |  1   | Variable |    2     |
 *   +----+-----+-------+------+----------+----------+
 */
export function socks5Reply(rep: number): Buffer {
  return Buffer.from([SOCKS5_VERSION, rep, 0x00, SOCKS5_ATYP.IPV4, 0, 0, 0, 0, 0, 0]);
}

export class Socks5Handshake implements SocksHandshake {
  readonly protocol = 'socks5';
  #state: State = 'greeting';
  #buf: Buffer = Buffer.alloc(0);
  readonly #checker: CredentialChecker | undefined;
  /** What the RFC 1929 username selected (see admit()). */
  #selector: string | undefined;

  constructor(options: Socks5Options = {}) {
    this.#checker = options.checker;
  }

  get state(): State {
    return this.#state;
  }

  feed(chunk: Buffer): HandshakeStep {
    if (this.#state === 'done' || this.#state === 'failed') {
      throw new Error(`SOCKS5 handshake fed after it was ${this.#state}`);
    }
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const send: Buffer[] = [];
    for (;;) {
      const outcome = this.#step(send);
      if (outcome !== null) return { send, outcome };
    }
  }

  successReply(): Buffer {
    return socks5Reply(SOCKS5_REPLY.SUCCEEDED);
  }

  failureReply(err: KubesocksError): Buffer {
    return socks5Reply(failureReply(err).socks5);
  }

  /** Parses one message of the current state; null means "state advanced, go on". */
  #step(send: Buffer[]): HandshakeOutcome | null {
    switch (this.#state) {
      case 'greeting':
        return this.#greeting(send);
      case 'auth':
        return this.#auth(send);
      case 'request':
        return this.#request();
      default:
        throw new Error(`unreachable SOCKS5 state ${this.#state}`);
    }
  }

  /**
   * RFC 1928 §3, version identifier/method selection:
   *
   *   +----+----------+----------+
   *   |VER | NMETHODS | METHODS  |
   *   +----+----------+----------+
   *   | 1  |    1     | 1 to 255 |
   *   +----+----------+----------+
   */
  #greeting(send: Buffer[]): HandshakeOutcome | null {
    const buf = this.#buf;
    if (buf.length < 2) return MORE;
    if (buf[0] !== SOCKS5_VERSION) {
      // No reply is defined for a wrong version at this stage; just close.
      return this.#fail(null, new KubesocksError('PROTOCOL_ERROR', `SOCKS5 greeting with version ${buf[0]}`));
    }
    const nmethods = buf[1] ?? 0;
    if (buf.length < 2 + nmethods) return MORE;
    const methods = buf.subarray(2, 2 + nmethods);
    this.#consume(2 + nmethods);
    const method = this.#chooseMethod(methods);
    const selection = Buffer.from([SOCKS5_VERSION, method]);
    if (method === SOCKS5_METHOD.NO_ACCEPTABLE) {
      // RFC 1928 §3: "the client MUST close the connection" — we close too.
      const err = this.#checker
        ? new KubesocksError('PROXY_AUTH', 'the SOCKS5 client offered no username/password authentication, which this proxy requires')
        : new KubesocksError('PROTOCOL_ERROR', 'the SOCKS5 client offered no acceptable authentication method');
      return this.#fail(selection, err);
    }
    send.push(selection);
    this.#state = method === SOCKS5_METHOD.USERNAME_PASSWORD ? 'auth' : 'request';
    return null;
  }

  /**
   * With credentials configured only username/password is acceptable.
   * Without, username/password is still preferred when offered: clients
   * offer it only when the user configured a username, and that username
   * selects a context (see admit()); otherwise "no auth".
   */
  #chooseMethod(methods: Buffer): number {
    if (methods.includes(SOCKS5_METHOD.USERNAME_PASSWORD)) return SOCKS5_METHOD.USERNAME_PASSWORD;
    if (this.#checker) return SOCKS5_METHOD.NO_ACCEPTABLE;
    if (methods.includes(SOCKS5_METHOD.NO_AUTH)) return SOCKS5_METHOD.NO_AUTH;
    return SOCKS5_METHOD.NO_ACCEPTABLE;
  }

  /**
   * RFC 1929 §2, username/password request:
   *
   *   +----+------+----------+------+----------+
   *   |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
   *   +----+------+----------+------+----------+
   *   | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
   *   +----+------+----------+------+----------+
   *
   * Response: VER (0x01) STATUS (0x00 success; anything else and the
   * connection MUST be closed).
   */
  #auth(send: Buffer[]): HandshakeOutcome | null {
    const buf = this.#buf;
    if (buf.length < 2) return MORE;
    const failure = Buffer.from([USERPASS_VERSION, USERPASS_STATUS.FAILURE]);
    if (buf[0] !== USERPASS_VERSION) {
      return this.#fail(failure, new KubesocksError('PROTOCOL_ERROR', `SOCKS5 username/password version ${buf[0]}`));
    }
    const ulen = buf[1] ?? 0;
    if (buf.length < 3 + ulen) return MORE;
    const plen = buf[2 + ulen] ?? 0;
    if (buf.length < 3 + ulen + plen) return MORE;
    const username = buf.subarray(2, 2 + ulen);
    const password = buf.subarray(3 + ulen, 3 + ulen + plen);
    const { ok, selector } = admit(this.#checker, username, password);
    this.#selector = selector;
    this.#consume(3 + ulen + plen);
    if (!ok) return this.#fail(failure, new KubesocksError('PROXY_AUTH', 'wrong proxy username or password (SOCKS5)'), true);
    send.push(Buffer.from([USERPASS_VERSION, USERPASS_STATUS.SUCCESS]));
    this.#state = 'request';
    return null;
  }

  /**
   * RFC 1928 §4, the request:
   *
   *   +----+-----+-------+------+----------+----------+
   *   |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
   *   +----+-----+-------+------+----------+----------+
   *   | 1  |  1  | X'00' |  1   | Variable |    2     |
   *   +----+-----+-------+------+----------+----------+
   *
   * DST.ADDR (§5): 4 bytes for IPv4, 16 for IPv6, or a length byte and that
   * many bytes of domain name (no terminating NUL).
   */
  #request(): HandshakeOutcome | null {
    const buf = this.#buf;
    if (buf.length < 4) return MORE;
    if (buf[0] !== SOCKS5_VERSION) {
      return this.#fail(socks5Reply(SOCKS5_REPLY.GENERAL_FAILURE), new KubesocksError('PROTOCOL_ERROR', `SOCKS5 request with version ${buf[0]}`));
    }
    const cmd = buf[1];
    if (cmd !== SOCKS5_COMMAND.CONNECT) {
      const what = cmd === SOCKS5_COMMAND.BIND ? 'BIND' : cmd === SOCKS5_COMMAND.UDP_ASSOCIATE ? 'UDP ASSOCIATE' : `command ${cmd}`;
      return this.#fail(
        socks5Reply(SOCKS5_REPLY.COMMAND_NOT_SUPPORTED),
        new KubesocksError('PROTOCOL_ERROR', `SOCKS5 ${what} is not supported: port-forward carries TCP connections only`),
      );
    }
    const atyp = buf[3];
    let addrEnd: number;
    let host: string;
    switch (atyp) {
      case SOCKS5_ATYP.IPV4:
        addrEnd = 4 + 4;
        if (buf.length < addrEnd + 2) return MORE;
        host = formatIPv4(buf.subarray(4, addrEnd));
        break;
      case SOCKS5_ATYP.IPV6:
        addrEnd = 4 + 16;
        if (buf.length < addrEnd + 2) return MORE;
        host = formatIPv6(buf.subarray(4, addrEnd));
        break;
      case SOCKS5_ATYP.DOMAIN: {
        if (buf.length < 5) return MORE;
        addrEnd = 5 + (buf[4] ?? 0);
        if (buf.length < addrEnd + 2) return MORE;
        host = normalizeDomain(buf.subarray(5, addrEnd).toString('latin1'));
        break;
      }
      default:
        return this.#fail(
          socks5Reply(SOCKS5_REPLY.ADDRESS_TYPE_NOT_SUPPORTED),
          new KubesocksError('BAD_TARGET', `SOCKS5 address type ${atyp} is not supported`),
        );
    }
    const port = buf.readUInt16BE(addrEnd);
    this.#consume(addrEnd + 2);
    const problem = hostProblem(host);
    if (problem) return this.#badTarget(`SOCKS5 request refused: ${problem}`);
    if (!isValidPort(port)) return this.#badTarget(`SOCKS5 request for port ${port}`);
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    this.#state = 'done';
    return { type: 'connect', target: this.#selector === undefined ? { host, port } : { host, port, selector: this.#selector }, rest };
  }

  #badTarget(message: string): HandshakeOutcome {
    const err = new KubesocksError('BAD_TARGET', message);
    return this.#fail(this.failureReply(err), err);
  }

  #fail(reply: Buffer | null, error: KubesocksError, wrongCredentials = false): HandshakeOutcome {
    this.#state = 'failed';
    this.#buf = Buffer.alloc(0);
    return wrongCredentials ? { type: 'fail', reply, error, wrongCredentials } : { type: 'fail', reply, error };
  }

  #consume(n: number): void {
    this.#buf = this.#buf.subarray(n);
  }
}

/** A domain as sent: no trailing dot; `[::1]` (some clients bracket IPv6) without brackets. */
function normalizeDomain(name: string): string {
  const bracketed = /^\[(.*)\]$/.exec(name);
  if (bracketed?.[1] !== undefined && isIP(bracketed[1]) === 6) return bracketed[1];
  return stripTrailingDot(name);
}
