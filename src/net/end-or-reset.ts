/**
 * Whether a TCP socket's 'end' was a FIN or a reset.
 *
 * libuv (1.46 in Node 20; changed upstream by libuv/libuv#4997) reports an
 * RST that arrives while bytes are still unread as EOF: the reset makes the
 * socket hang up (POLLHUP), and a short read with POLLHUP is taken for the
 * end without reading on to the ECONNRESET behind it (libuv/libuv#2319).
 * Node then emits 'end', exactly as for a FIN. Relayed as it is, a peer's
 * reset midway would reach the other side as a clean end: the truncation
 * that kubesocks promises never to hide.
 *
 * The kernel knows: a zero-length write fails with ECONNRESET on a reset
 * connection, and succeeds (sending nothing) on one that got a FIN. The
 * socket must allow half-open connections (Node's default answers a FIN
 * with its own and turns later writes into a local EPIPE) and must not have
 * ended its own writable side; otherwise the end is taken as it came.
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const EMPTY = Buffer.alloc(0);

/**
 * Calls `onFin` once `stream`'s 'end' is known to be a FIN. After a reset
 * `onFin` is never called: the probe's write error destroys the stream with
 * ECONNRESET, and its 'error' reaches the stream's owner like any reset.
 * Streams that are no TCP socket are not probed (their end is their own).
 */
export function confirmFin(stream: Duplex, onFin: () => void): void {
  if (!(stream instanceof Socket) || !stream.allowHalfOpen || stream.writableEnded || stream.destroyed) {
    onFin();
    return;
  }
  stream.write(EMPTY, (error) => {
    if (!error) onFin();
  });
}
