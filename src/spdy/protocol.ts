/**
 * SPDY/3.1 wire constants (SPDY Protocol draft 3.1, section 2).
 *
 * Control frame:                         Data frame:
 * +----------------------------------+   +----------------------------------+
 * |C| Version(15bits) | Type(16bits)  |   |C|       Stream-ID (31bits)       |
 * +----------------------------------+   +----------------------------------+
 * | Flags (8)  |  Length (24 bits)   |   | Flags (8)  |  Length (24 bits)   |
 * +----------------------------------+   +----------------------------------+
 * |               Data               |   |               Data               |
 */

export const SPDY_VERSION = 3;
export const FRAME_HEADER_BYTES = 8;
export const MAX_FRAME_PAYLOAD = 0xffffff;
export const MAX_STREAM_ID = 0x7fffffff;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL on SYN_STREAM (never used by port-forward). */
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes (section 2.4.2). */
export const RstCode = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

const RST_NAMES = new Map<number, string>(Object.entries(RstCode).map(([name, code]) => [code, name]));

export function rstCodeName(code: number): string {
  return RST_NAMES.get(code) ?? `status ${code}`;
}

/** GOAWAY status codes (section 2.6.6). */
export const GoawayCode = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** A name/value header block, names lower-case, one value per name (values may hold NUL-separated lists). */
export type SpdyHeaders = Record<string, string>;
