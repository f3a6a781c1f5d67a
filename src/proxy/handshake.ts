/**
 * The shape shared by the SOCKS5 and SOCKS4 handshake parsers: pure state
 * machines that are fed whatever bytes arrive (one byte at a time or the
 * whole handshake plus payload in one packet) and say what to send and what
 * to do next. They never touch a socket, so they can be tested byte by byte.
 */
import type { KubesocksError } from '../errors.js';
import type { ProxyTarget } from '../net/connector.js';

export type HandshakeOutcome =
  /** The message so far is incomplete: feed more bytes. */
  | { type: 'more' }
  /** The client asked for `target`; `rest` are bytes that followed the request (payload). */
  | { type: 'connect'; target: ProxyTarget; rest: Buffer }
  /**
   * The handshake failed: send `reply` (when not null), then close.
   * `wrongCredentials`: the client presented a username and password that
   * do not match (a guess; its answer is slowed, see wrong-credentials.ts).
   */
  | { type: 'fail'; reply: Buffer | null; error: KubesocksError; wrongCredentials?: true };

export interface HandshakeStep {
  /** Bytes to write to the client now, in order (method selection, auth status). */
  send: Buffer[];
  outcome: HandshakeOutcome;
}

export interface SocksHandshake {
  readonly protocol: 'socks5' | 'socks4';
  /**
   * Consumes the next bytes from the client. Must not be called again once
   * an outcome other than `more` was returned (it throws: a terminal state is
   * never left).
   */
  feed(chunk: Buffer): HandshakeStep;
  /** The reply that tells the client its CONNECT succeeded. */
  successReply(): Buffer;
  /** The reply for a Connector failure. */
  failureReply(err: KubesocksError): Buffer;
}

export const MORE: HandshakeOutcome = Object.freeze({ type: 'more' });
