/**
 * Drives a SOCKS handshake (SOCKS5 or SOCKS4) on a client socket: feeds it
 * the bytes as they arrive, sends its replies, and hands the request to
 * openTunnel with the protocol's success and failure replies.
 */
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import type { ClientConnection } from './client-connection.js';
import type { SocksHandshake } from './handshake.js';
import { openTunnel } from './connect-and-relay.js';

const debug = debuglog('kubesocks:proxy');

/** Serves one SOCKS client whose first bytes (`first`) were already read. */
export function serveSocks(conn: ClientConnection, handshake: SocksHandshake, first: Buffer): void {
  const { socket } = conn;
  conn.protocol = handshake.protocol;

  const stop = (): void => {
    socket.off('data', onData);
    socket.off('end', onGone);
    socket.off('close', onGone);
  };

  const onData = conn.guard((chunk: Buffer) => {
    const { send, outcome } = handshake.feed(chunk);
    for (const bytes of send) socket.write(bytes);
    if (outcome.type === 'more') return;
    stop();
    if (outcome.type === 'fail') {
      debug('%s %s handshake failed: %s', conn.client, handshake.protocol, outcome.error.message);
      let { error } = outcome;
      if (outcome.wrongCredentials) {
        // Answered after its address's delay, still in its handshake slot; not read meanwhile.
        socket.pause();
        error = conn.ctx.wrongCredentials.answer(conn, { presented: true, error, answer: () => conn.endWith(outcome.reply), inHandshake: true });
      } else {
        conn.endWith(outcome.reply);
      }
      conn.report({ target: null, error });
      return;
    }
    conn.endHandshake();
    const replies = { protocol: handshake.protocol, success: () => handshake.successReply(), failure: (e: KubesocksError) => handshake.failureReply(e) };
    openTunnel(conn, outcome.target, outcome.rest, replies).catch((err: unknown) => {
      conn.ctx.reportError(asKubesocksError(err, 'INTERNAL'));
      socket.destroy();
    });
  });

  // A FIN mid-handshake would otherwise leave a half-open socket behind (allowHalfOpen).
  const onGone = conn.guard(() => {
    stop();
    conn.report({ target: null, error: new KubesocksError('CLOSED', `the client closed the connection during the ${handshake.protocol} handshake`) });
    socket.destroy();
  });

  socket.on('data', onData);
  socket.on('end', onGone);
  socket.on('close', onGone);
  onData(first);
}
