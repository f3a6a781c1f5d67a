/**
 * Joins a client socket and a destination stream once a handshake is done,
 * the way ws's `lib/stream.js` joins a socket and a message channel:
 *
 * - bytes flow up with `pipe` and down with a corked pump (see below), both
 *   honouring backpressure (a slow reader pauses the writer's source);
 * - half-close is kept: the client's FIN ends the destination's writable
 *   side and the destination's end ends the client socket, each on its own
 *   (the server socket is created with `allowHalfOpen: true`); an 'end'
 *   from a TCP socket is first checked to be a FIN, not a reset that Node
 *   reports as an end (see end-or-reset.ts);
 * - an error or premature close on either side destroys both;
 * - how the client socket goes depends on what the destination did, never
 *   on which side's callback came first: a destination that failed before
 *   its end resets the client (RST); one that ended cleanly gives the
 *   client every byte, then the FIN, even if its writable side fails later;
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
import { confirmFin } from './end-or-reset.js';

const noop = (): void => {};

export interface RelayResult {
  /** Bytes from the client to the destination (including `head`). */
  bytesUp: number;
  /** Bytes from the destination to the client. */
  bytesDown: number;
  /** Why the destination side failed; absent when both sides ended cleanly or the client went away. */
  error?: KubesocksError;
}

/** Bytes relayed so far, updated as they flow. */
export interface RelayCounts {
  bytesUp: number;
  bytesDown: number;
}

/**
 * Starts relaying. `head` are bytes the client sent before the relay began
 * (after a SOCKS request or a CONNECT head); they are written first.
 * `done` is called once, after both sides are torn down. Returns the live byte counts.
 */
export function relay(client: Duplex, upstream: Duplex, head: Buffer, done: (result: RelayResult) => void): RelayCounts {
  // An object rather than two locals: the status page reads an open relay's counts.
  const counts: RelayCounts = { bytesUp: head.length, bytesDown: 0 };
  let clientDone = false;
  let upstreamDone = false;
  /** The destination's end is confirmed clean: only then does the client get a FIN. */
  let upstreamEndedCleanly = false;
  let over = false;

  const countUp = (chunk: Buffer): void => {
    counts.bytesUp += chunk.length;
  };
  // Down, by hand rather than pipe: the TLS socket hands the tunnel's bytes
  // over in ≤16 KiB pieces, each in its own callback, and one event-loop
  // turn reads many. They are written corked and leave in one writev when
  // the turn ends (a nextTick would fire after every piece). Only bytes the
  // kernel did not take then (the client reads slower than the pod sends)
  // pause the tunnel until 'drain'; pipe would pause it within the turn, as
  // soon as the corked pieces pass the socket's 16 KiB highWaterMark, and
  // that pause reaches the whole SPDY connection. Measured (1 GiB SOCKS5
  // download): pipe with per-tick cork ~2.5 CPU s/GiB; pipe with a 256 KiB
  // socket buffer ~1.5 but ~0.25 MiB more per busy socket; this ~1.3, with
  // Node's buffers; kubectl ~1.3.
  let flushScheduled = false;
  const resumeUpstream = (): void => {
    if (!over) upstream.resume();
  };
  const flush = (): void => {
    flushScheduled = false;
    client.uncork();
    if (!over && client.writableNeedDrain && client.writableLength > 0) {
      upstream.pause();
      client.once('drain', resumeUpstream);
    }
  };
  const onDownData = (chunk: Buffer): void => {
    counts.bytesDown += chunk.length;
    if (!flushScheduled) {
      flushScheduled = true;
      client.cork();
      setImmediate(flush);
    }
    client.write(chunk);
  };
  const onDownEnd = (): void => {
    confirmFin(upstream, () => {
      if (over) return;
      upstreamEndedCleanly = true;
      client.end();
    });
  };
  // The client's FIN ends the way to the destination; a reset that Node
  // reported as an end fails the client instead (and so resets the destination).
  const onUpEnd = (): void => {
    confirmFin(client, () => {
      if (!over) upstream.end();
    });
  };

  const teardown = (error?: KubesocksError): void => {
    if (over) return;
    over = true;
    stopClient();
    stopUpstream();
    client.off('data', countUp);
    upstream.off('data', onDownData);
    upstream.off('end', onDownEnd);
    client.off('end', onUpEnd);
    client.off('drain', resumeUpstream);
    client.unpipe(upstream);
    for (const stream of [client, upstream]) if (stream.listenerCount('error') === 0) stream.on('error', noop);
    closeClient(error !== undefined);
    upstream.destroy();
    const { bytesUp, bytesDown } = counts;
    done(error ? { bytesUp, bytesDown, error } : { bytesUp, bytesDown });
  };

  /**
   * Decided from the destination's state, not from which callback came
   * first. A destination that failed before its end (an error, a reset, a
   * close without FIN) must not look like one that finished: the client gets
   * a reset (ECONNRESET), not a FIN it could take for the end of the data
   * (EOF-delimited protocols would keep a truncated body). end() is only
   * ever called after the destination's clean end, so the reset never comes
   * after a FIN. A destination that ended cleanly and failed afterwards (its
   * writable side: the pod side closed while the client still sends) leaves
   * a complete download: the FIN goes out after the last byte (destroying
   * now would drop the bytes still queued, and a reset would drop the ones
   * the kernel has not sent yet).
   */
  const closeClient = (upstreamFailed: boolean): void => {
    if (client.destroyed) return; // the client went away
    if (upstreamFailed && !upstreamEndedCleanly) {
      if (typeof (client as Socket).resetAndDestroy === 'function') (client as Socket).resetAndDestroy();
      else client.destroy();
    } else if (client.writableEnded && !client.writableFinished) {
      client.once('finish', () => client.destroy());
    } else {
      client.destroy();
    }
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
  client.pipe(upstream, { end: false });
  // The client may have sent its FIN with its request (ended before the relay began), as pipe() would see.
  if (client.readableEnded) process.nextTick(onUpEnd);
  else client.on('end', onUpEnd);
  upstream.on('end', onDownEnd);
  upstream.on('data', onDownData);
  return counts;
}
