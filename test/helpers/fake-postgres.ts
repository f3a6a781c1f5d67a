/**
 * Just enough of the PostgreSQL v3 wire protocol to let node-postgres
 * connect and run one simple query: trust auth, and every query answers one
 * text column `version` = `PostgreSQL 16.0 (fake, pod POD)`.
 */
import * as net from 'node:net';

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const int16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

export async function startFakePostgres(pod: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!started) {
          if (buffer.length < 4 || buffer.length < buffer.readInt32BE(0)) return;
          buffer = buffer.subarray(buffer.readInt32BE(0));
          started = true;
          socket.write(Buffer.concat([message('R', int32(0)), message('S', Buffer.concat([cstring('server_version'), cstring('16.0')])), message('Z', Buffer.from('I'))]));
          continue;
        }
        if (buffer.length < 5 || buffer.length < 1 + buffer.readInt32BE(1)) return;
        const type = String.fromCharCode(buffer[0]!);
        buffer = buffer.subarray(1 + buffer.readInt32BE(1));
        if (type === 'X') return void socket.end();
        if (type !== 'Q') continue;
        const value = Buffer.from(`PostgreSQL 16.0 (fake, pod ${pod})`);
        const field = Buffer.concat([cstring('version'), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)]);
        socket.write(
          Buffer.concat([
            message('T', Buffer.concat([int16(1), field])),
            message('D', Buffer.concat([int16(1), int32(value.length), value])),
            message('C', cstring('SELECT 1')),
            message('Z', Buffer.from('I')),
          ]),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
