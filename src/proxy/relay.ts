/**
 * Joins a client socket and a destination stream once a handshake is done,
 * the way ws's `lib/stream.js` joins a socket and a message channel:
 *
 * - bytes flow both ways with `pipe`, which honours backpressure (a slow
 *   reader pauses the writer's source);
 * - half-close is kept: the client's FIN ends the destination's writable
 *   side and the destination's end ends the client socket, each on its own
 *   (the server socket is created with `allowHalfOpen: true`);
 * - an error or premature close on either side destroys both;
 * - teardown happens exactly once, removing every listener added here.
 *
 * After teardown none of our listeners remain, except that a stream left
 * with no 'error' listener at all gets a no-op one: a destroyed stream can
 * still report a late error, and an unheard 'error' would end the process.
 * (ClientConnection gives every stream a listener of its own; other users
 * of relay, like `kubesocks forward`, may not.)
 */
import type { Socket } from 'node:net';
import { finished, type Duplex } from 'node:stream';
import { asKubesocksError, type KubesocksError } from '../errors.js';

const noop = (): void => {};

/**
 * The highWaterMark for client sockets that relay() writes to: lets one
 * event-loop turn's worth of tunnel data be corked into one writev (see
 * below). Measured (bench, SOCKS5 1 GiB): 16 KiB (Node's default) ~2.5 CPU
 * s/GiB down, 64 KiB ~3.5 (a pause and resume of the tunnel per 64 KiB
 * read), 256 KiB ~1.7, kubectl's figure; 1 MiB gained nothing more. The
 * price: 1,000 sockets all held back at once buffer up to 256 KiB each.
 */
export const CLIENT_SOCKET_BUFFER = 256 * 1024;

export interface RelayResult {
  /** Bytes from the client to the destination (including `head`). */
  bytesUp: number;
  /** Bytes from the destination to the client. */
  bytesDown: number;
  /** Why the destination side failed; absent when both sides ended cleanly or the client went away. */
  error?: KubesocksError;
}

/**
 * Starts relaying. `head` are bytes the client sent before the relay began
 * (after a SOCKS request or a CONNECT head); they are written first.
 * `done` is called once, after both sides are torn down.
 */
export function relay(client: Duplex, upstream: Duplex, head: Buffer, done: (result: RelayResult) => void): void {
  let bytesUp = head.length;
  let bytesDown = 0;
  let clientDone = false;
  let upstreamDone = false;
  let over = false;

  const countUp = (chunk: Buffer): void => {
    bytesUp += chunk.length;
  };
  // The TLS socket hands the tunnel's bytes over in ≤16 KiB pieces, each in
  // its own callback, and one event-loop turn reads many. Corking the client
  // socket until the turn ends (setImmediate; a nextTick fires after every
  // piece) sends them in one writev instead of a write syscall each. It only
  // pays with a client socket buffer well above 16 KiB (CLIENT_SOCKET_BUFFER),
  // or pipe pauses the tunnel after the first piece. Runs before pipe's own
  // 'data' handler.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    client.uncork();
  };
  const countDown = (chunk: Buffer): void => {
    bytesDown += chunk.length;
    if (!corked) {
      corked = true;
      client.cork();
      setImmediate(uncork);
    }
  };

  const teardown = (error?: KubesocksError): void => {
    if (over) return;
    over = true;
    stopClient();
    stopUpstream();
    client.off('data', countUp);
    upstream.off('data', countDown);
    client.unpipe(upstream);
    upstream.unpipe(client);
    for (const stream of [client, upstream]) if (stream.listenerCount('error') === 0) stream.on('error', noop);
    // A destination that failed midway must not look like one that finished:
    // the client gets a reset (ECONNRESET), not a FIN it could take for the
    // end of the data (EOF-delimited protocols would keep a truncated body).
    if (error && !clientDone && typeof (client as Socket).resetAndDestroy === 'function') (client as Socket).resetAndDestroy();
    else client.destroy();
    upstream.destroy();
    done(error ? { bytesUp, bytesDown, error } : { bytesUp, bytesDown });
  };

  // `finished` calls back once a stream has both ended and finished, or
  // failed / closed early (ERR_STREAM_PREMATURE_CLOSE).
  const stopClient = finished(client, (err) => {
    clientDone = true;
    // The client going away (reset, close without FIN) is not a failure of the destination.
    if (err) teardown();
    else if (upstreamDone) teardown();
  });
  const stopUpstream = finished(upstream, (err) => {
    upstreamDone = true;
    if (err) teardown(asKubesocksError(err, 'CONNECTION_LOST'));
    else if (clientDone) teardown();
  });

  if (head.length > 0) upstream.write(head);
  client.on('data', countUp);
  upstream.on('data', countDown);
  client.pipe(upstream);
  upstream.pipe(client);
}
