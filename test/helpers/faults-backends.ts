/**
 * A real local HTTP server for the fault suite to stand behind simulated
 * pods (a scenario port's `backend: "127.0.0.1:PORT"`): large downloads that
 * honour backpressure, and a count of the connections it has open, so a
 * test can see that cancelled clients leave nothing behind on the pod side.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sourceBytes } from '../../src/sim/backends.js';

export interface FileServer {
  port: number;
  /** Connections open now. */
  readonly openConnections: number;
  /** Requests served since start (completed or not). */
  readonly requests: number;
  close(): Promise<void>;
}

const CHUNK = sourceBytes(0, 256 * 1024);

/**
 * `GET /big?n=BYTES` answers BYTES of the source pattern (Content-Length
 * set), written as the client reads; any other path answers a short line.
 */
export async function startFileServer(): Promise<FileServer> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    req.resume();
    if (url.pathname !== '/big') {
      const body = `file server path ${url.pathname}\n`;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const total = Number(url.searchParams.get('n') ?? '0');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
    let left = total;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.once('close', () => {
      left = 0;
      res.off('drain', pump);
    });
    pump();
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    get openConnections() {
      return sockets.size;
    },
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
