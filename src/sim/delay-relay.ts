/**
 * A TCP relay that delays each direction by `delayMs`: the network between a
 * laptop and a remote API server (round trip = 2 × delayMs), for the
 * benchmark's `--rtt` and for tests that count round trips.
 *
 * Every chunk is forwarded `delayMs` after it arrived, in order. Bandwidth is
 * not limited, only buffered: a direction holding more than WINDOW bytes
 * pauses its reader. Half-close passes through; an error on one side
 * destroys both after the delay.
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

const WINDOW = 16 * 1024 * 1024;

export interface DelayRelay {
  /** 127.0.0.1 port to connect to instead of the target. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** One direction: `from`'s bytes reach `to` delayMs later. */
function delayed(from: Socket, to: Socket, delayMs: number): void {
  const queue: Array<{ due: number; chunk: Buffer | null }> = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now + 0.5) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        if (!to.destroyed) to.end();
        continue;
      }
      queued -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (queued < WINDOW && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
  };
  const push = (chunk: Buffer | null): void => {
    queue.push({ due: performance.now() + delayMs, chunk });
    if (chunk) queued += chunk.length;
    if (queued >= WINDOW) from.pause();
    timer ??= setTimeout(flush, delayMs);
  };
  from.on('data', (chunk: Buffer) => push(chunk));
  from.on('end', () => push(null));
}

export async function startDelayRelay(target: { host: string; port: number }, delayMs: number): Promise<DelayRelay> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    connections++;
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    delayed(client, upstream, delayMs);
    delayed(upstream, client, delayMs);
    const kill = (): void => {
      setTimeout(() => {
        client.destroy();
        upstream.destroy();
      }, delayMs).unref();
    };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
