/**
 * The end of every tunnelling handshake (SOCKS5, SOCKS4, HTTP CONNECT): ask
 * the Connector for the target while holding the client's early bytes,
 * answer with the protocol's success or failure reply, and relay.
 */
import { debuglog } from 'node:util';
import { asKubesocksError, type KubesocksError } from '../errors.js';
import { formatTarget } from '../net/address.js';
import { relay } from '../net/relay.js';
import type { ProxyTarget } from '../net/connector.js';
import type { OpenConnection } from '../observe/observer.js';
import type { ClientConnection } from './client-connection.js';

const debug = debuglog('kubesocks:proxy');

export interface TunnelReplies {
  /** For the log: `socks5`, `socks4`, `http`. */
  protocol: string;
  success(): Buffer | string;
  failure(error: KubesocksError): Buffer | string;
}

/** Connects `conn` to `target` and relays; `early` are bytes the client sent after its request. */
export async function openTunnel(conn: ClientConnection, target: ProxyTarget, early: Buffer, replies: TunnelReplies): Promise<void> {
  const { socket } = conn;
  const targetText = formatTarget(target);
  const held = conn.hold(early);
  debug('%s %s CONNECT %s', conn.client, replies.protocol, targetText);
  let connected;
  try {
    connected = await conn.open(target);
  } catch (err) {
    held.release();
    const error = asKubesocksError(err);
    debug('%s %s CONNECT %s failed: %s %s', conn.client, replies.protocol, targetText, error.code, error.message);
    conn.report({ target: targetText, error });
    if (error.code === 'CLOSED') socket.destroy();
    else conn.endWith(replies.failure(error));
    return;
  }
  const head = held.release();
  const { stream, via } = connected;
  socket.write(replies.success());
  const startedAt = Date.now();
  let open: OpenConnection | undefined;
  const counts = relay(socket, stream, head, (result) => {
    open?.close();
    debug('%s %s CONNECT %s via %s closed (%d up, %d down)', conn.client, replies.protocol, targetText, via, result.bytesUp, result.bytesDown);
    conn.report({ target: targetText, via, ...result });
  });
  open = conn.ctx.observer.opened({ client: conn.client, protocol: conn.protocol, target: targetText, via, pod: connected.pod, startedAt, counts });
}
