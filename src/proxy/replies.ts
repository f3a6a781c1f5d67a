/**
 * The one place that decides what a client is told when a target cannot be
 * reached: a KubesocksError code becomes a SOCKS5 reply (RFC 1928 §6), a
 * SOCKS4 reply (SOCKS4 protocol, "CD" field) and an HTTP status.
 *
 * The SOCKS replies are coarse, so the choice is "the reply a client is most
 * likely to explain correctly to its user": a refused port looks like a
 * refused port (05), a missing service like an unreachable host (04), RBAC
 * like a ruleset (02). The full reason always goes to the log and, for HTTP,
 * into the one-line body.
 */
import { STATUS_CODES } from 'node:http';
import { ERROR_CODES, type ErrorCode, type KubesocksError } from '../errors.js';

/** SOCKS5 reply field values, RFC 1928 §6. */
export const SOCKS5_REPLY = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED_BY_RULESET: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

/**
 * SOCKS4 reply codes ("CD" in the reply), from "SOCKS: A protocol for TCP
 * proxy across firewalls" (https://www.openssh.com/txt/socks4.protocol).
 * SOCKS4 has a single failure code that means anything; 92/93 are about identd.
 */
export const SOCKS4_REPLY = {
  GRANTED: 0x5a,
  REJECTED_OR_FAILED: 0x5b,
  IDENTD_UNREACHABLE: 0x5c,
  IDENTD_MISMATCH: 0x5d,
} as const;

export interface FailureReply {
  /** RFC 1928 REP field. */
  socks5: number;
  /** SOCKS4 CD field. */
  socks4: number;
  /** Status line for HTTP CONNECT and forwarded requests. */
  http: number;
}

const refused: FailureReply = { socks5: SOCKS5_REPLY.CONNECTION_REFUSED, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 502 };
const unreachable: FailureReply = { socks5: SOCKS5_REPLY.HOST_UNREACHABLE, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 502 };
const unavailable: FailureReply = { socks5: SOCKS5_REPLY.HOST_UNREACHABLE, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 503 };
const denied: FailureReply = { socks5: SOCKS5_REPLY.NOT_ALLOWED_BY_RULESET, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 403 };
const timedOut: FailureReply = { socks5: SOCKS5_REPLY.TTL_EXPIRED, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 504 };
const badRequest: FailureReply = { socks5: SOCKS5_REPLY.HOST_UNREACHABLE, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 400 };
const general: FailureReply = { socks5: SOCKS5_REPLY.GENERAL_FAILURE, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 502 };

/**
 * Every error code and what each protocol answers. Typed over all codes so a
 * new code cannot be added without deciding its replies here.
 */
export const FAILURE_REPLIES: Readonly<Record<ErrorCode, FailureReply>> = {
  POD_REFUSED: refused,
  NOT_FOUND: unreachable,
  NO_READY_ENDPOINTS: unavailable,
  NOT_FORWARDABLE: unreachable,
  POD_NOT_RUNNING: unavailable,
  NO_SUCH_PORT: unreachable,
  POD_GONE: unreachable,
  FORBIDDEN: denied,
  DIRECT_DENIED: denied,
  UNAUTHORIZED: denied,
  PROXY_AUTH: { socks5: SOCKS5_REPLY.NOT_ALLOWED_BY_RULESET, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 407 },
  TIMEOUT: timedOut,
  BAD_TARGET: badRequest,
  PORTFORWARD_FAILED: general,
  CONNECTION_LOST: general,
  STREAM_RESET: general,
  UPGRADE_FAILED: general,
  PROTOCOL_ERROR: general,
  DIRECT_FAILED: general,
  CONFIG: general,
  API_UNREACHABLE: general,
  CLOSED: general,
  LISTEN_FAILED: general,
  INTERNAL: general,
  OVERLOADED: unavailable,
  NOT_IMPLEMENTED: { socks5: SOCKS5_REPLY.GENERAL_FAILURE, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 501 },
};

const networkUnreachable: FailureReply = { socks5: SOCKS5_REPLY.NETWORK_UNREACHABLE, socks4: SOCKS4_REPLY.REJECTED_OR_FAILED, http: 502 };

/**
 * A direct connection's system error has its own SOCKS5 reply (RFC 1928 gives
 * refused, host and network unreachable), so a client can tell "nothing
 * listens there" from "kubesocks failed".
 */
const DIRECT_FAILURE_REPLIES: Readonly<Record<string, FailureReply>> = {
  ECONNREFUSED: refused,
  EHOSTUNREACH: unreachable,
  ENETUNREACH: networkUnreachable,
};

/** What to answer for `err`; codes not in the table (never expected) get the general failure. */
export function failureReply(err: Pick<KubesocksError, 'code'> & { cause?: unknown }): FailureReply {
  if (err.code === 'DIRECT_FAILED') {
    const systemCode = (err.cause as NodeJS.ErrnoException | undefined)?.code;
    if (systemCode && Object.hasOwn(DIRECT_FAILURE_REPLIES, systemCode)) return DIRECT_FAILURE_REPLIES[systemCode]!;
  }
  return Object.hasOwn(FAILURE_REPLIES, err.code) ? FAILURE_REPLIES[err.code] : general;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0').toUpperCase()}`;

const SOCKS5_REPLY_NAMES: Readonly<Record<number, string>> = {
  [SOCKS5_REPLY.GENERAL_FAILURE]: 'general failure',
  [SOCKS5_REPLY.NOT_ALLOWED_BY_RULESET]: 'not allowed by ruleset',
  [SOCKS5_REPLY.NETWORK_UNREACHABLE]: 'network unreachable',
  [SOCKS5_REPLY.HOST_UNREACHABLE]: 'host unreachable',
  [SOCKS5_REPLY.CONNECTION_REFUSED]: 'connection refused',
  [SOCKS5_REPLY.TTL_EXPIRED]: 'TTL expired',
  [SOCKS5_REPLY.COMMAND_NOT_SUPPORTED]: 'command not supported',
  [SOCKS5_REPLY.ADDRESS_TYPE_NOT_SUPPORTED]: 'address type not supported',
};

/**
 * The table as Markdown, for the README: one row per error code, plus the
 * answers the handshakes themselves give (those are not error codes).
 */
export function renderFailureRepliesMarkdown(): string {
  const rows = [
    '| code | meaning | SOCKS5 reply | SOCKS4 reply | HTTP status |',
    '|---|---|---|---|---|',
  ];
  const socks5Name = (reply: number): string => `${hex(reply)} ${SOCKS5_REPLY_NAMES[reply] ?? ''}`;
  for (const code of Object.keys(FAILURE_REPLIES) as ErrorCode[]) {
    const r = FAILURE_REPLIES[code];
    const socks5 =
      code === 'DIRECT_FAILED'
        ? `${Object.entries(DIRECT_FAILURE_REPLIES)
            .map(([systemCode, reply]) => `${socks5Name(reply.socks5)} (${systemCode}), `)
            .join('')}else ${socks5Name(r.socks5)}`
        : socks5Name(r.socks5);
    rows.push(`| \`${code}\` | ${ERROR_CODES[code]} | ${socks5} | ${hex(r.socks4)} | ${r.http} ${STATUS_CODES[r.http] ?? ''} |`);
  }
  rows.push(
    `| — | SOCKS5 BIND or UDP ASSOCIATE | ${hex(SOCKS5_REPLY.COMMAND_NOT_SUPPORTED)} command not supported | ${hex(SOCKS4_REPLY.REJECTED_OR_FAILED)} | — |`,
    `| — | unknown SOCKS5 address type | ${hex(SOCKS5_REPLY.ADDRESS_TYPE_NOT_SUPPORTED)} address type not supported | — | — |`,
    `| — | proxy credentials missing or wrong | method 0xFF or RFC 1929 status 0x01 | ${hex(SOCKS4_REPLY.REJECTED_OR_FAILED)} (SOCKS4 carries no password) | 407 ${STATUS_CODES[407]} |`,
  );
  return `${rows.join('\n')}\n`;
}
