/**
 * Routing a new connection on its first byte, as httpolyglot does: 0x05 is
 * SOCKS5 (RFC 1928 §3, VER), 0x04 is SOCKS4/4a (VN), anything else is HTTP
 * (a method name starts with a letter).
 */
import type { ClientConnection } from './client-connection.js';

/** First bytes that select a protocol. */
const FIRST_BYTE = { SOCKS5: 0x05, SOCKS4: 0x04 } as const;

/** Who serves a connection once its first bytes (`first`, already read) are known. */
export interface Fronts {
  socks5(conn: ClientConnection, first: Buffer): void;
  socks4(conn: ClientConnection, first: Buffer): void;
  http(conn: ClientConnection, first: Buffer): void;
}

/**
 * Waits for the first bytes (in paused mode, so nothing is lost) and hands
 * the socket to the front its first byte names. `onFirstBytes` is told
 * first (the admission: the client is no longer silent).
 */
export function sniff(conn: ClientConnection, fronts: Fronts, onFirstBytes: () => void = () => {}): void {
  const { socket } = conn;
  const onReadable = conn.guard(() => {
    const first = socket.read() as Buffer | null;
    if (first === null || first.length === 0) return;
    onFirstBytes();
    stop();
    const byte = first[0];
    if (byte === FIRST_BYTE.SOCKS5) fronts.socks5(conn, first);
    else if (byte === FIRST_BYTE.SOCKS4) fronts.socks4(conn, first);
    else fronts.http(conn, first);
  });
  // Nothing sent before FIN or close: nothing to answer.
  const onGone = (): void => {
    stop();
    socket.destroy();
  };
  const stop = (): void => {
    socket.off('readable', onReadable);
    socket.off('end', onGone);
    socket.off('close', onGone);
  };
  socket.on('readable', onReadable);
  socket.on('end', onGone);
  socket.on('close', onGone);
}
