/**
 * A backend nobody here controls: a raw TCP server that answers every
 * connection with canned bytes (framing violations, an unasked-for 101, a
 * body cut short), then does what `after` says.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { listenLocal } from './proxy-fixtures.js';

export interface HostileReply {
  /** Bytes sent once the request's headers arrived (a function: drawn per connection). */
  bytes: string | Buffer | (() => string | Buffer);
  /** `close`: end the connection after the bytes; `hold`: keep it open and silent. */
  after: 'close' | 'hold' | (() => 'close' | 'hold');
}

export async function startHostileBackend(reply: HostileReply): Promise<{ port: number; requests: string[]; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      requests.push(head);
      socket.write(typeof reply.bytes === 'function' ? reply.bytes() : reply.bytes);
      if ((typeof reply.after === 'function' ? reply.after() : reply.after) === 'close') socket.end();
    };
    socket.on('data', onData);
  });
  const port = await listenLocal(server);
  return {
    port,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
