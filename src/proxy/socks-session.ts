/**
 * Drives a SOCKS handshake (SOCKS5 or SOCKS4) on a client socket: feeds it
 * the bytes as they arrive, sends its replies, asks the Connector for the
 * requested target, answers success or the failure's reply, and relays.
 */
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { formatTarget } from './address.js';
import type { ClientConnection } from './connection.js';
import type { SocksHandshake } from './handshake.js';
import { relay } from './relay.js';
import type { ProxyTarget } from './types.js';

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
      conn.report({ target: null, error: outcome.error });
      conn.endWith(outcome.reply);
      return;
    }
    conn.endHandshake();
    connectAndRelay(conn, handshake, outcome.target, outcome.rest).catch((err: unknown) => {
      conn.ctx.reportError(asKubesocksError(err, 'PROTOCOL_ERROR'));
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

async function connectAndRelay(conn: ClientConnection, handshake: SocksHandshake, target: ProxyTarget, rest: Buffer): Promise<void> {
  const { socket } = conn;
  const targetText = formatTarget(target);
  const held = conn.hold(rest);
  debug('%s %s CONNECT %s', conn.client, handshake.protocol, targetText);
  let connected;
  try {
    connected = await conn.open(target);
  } catch (err) {
    held.release();
    const error = asKubesocksError(err);
    debug('%s %s %s failed: %s %s', conn.client, handshake.protocol, targetText, error.code, error.message);
    conn.report({ target: targetText, error });
    if (error.code === 'CLOSED') socket.destroy();
    else conn.endWith(handshake.failureReply(error));
    return;
  }
  const head = held.release();
  const { stream, via } = connected;
  socket.write(handshake.successReply());
  relay(socket, stream, head, (result) => {
    debug('%s %s %s via %s closed (%d up, %d down)', conn.client, handshake.protocol, targetText, via, result.bytesUp, result.bytesDown);
    conn.report({ target: targetText, via, ...result });
  });
}
