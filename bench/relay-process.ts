/**
 * A TCP relay that delays each direction by DELAY_MS, standing for the
 * network between a laptop and a remote API server (RTT = 2 × DELAY_MS).
 *
 *   node --import tsx bench/relay-process.ts TARGET_HOST:PORT DELAY_MS
 *
 * Listens on 127.0.0.1:0 and prints `{"port":N}`. Every chunk is forwarded
 * DELAY_MS after it arrived, in order; bandwidth is not limited, only
 * buffered: a direction holding more than WINDOW bytes pauses its reader (a
 * bandwidth-delay product of 16 MiB per RTT/2 is far above what the machine
 * moves). Half-close and resets pass through. Exits when stdin closes (the
 * benchmark runner went away) or on SIGTERM.
 */
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

const WINDOW = 16 * 1024 * 1024;

/** One direction: `from`'s bytes reach `to` DELAY_MS later. */
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
        to.end();
        continue;
      }
      queued -= chunk.length;
      to.write(chunk);
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

function main(): void {
  const [target, delayText] = process.argv.slice(2);
  const m = /^(.+):(\d+)$/.exec(target ?? '');
  const delayMs = Number(delayText);
  if (!m || !Number.isFinite(delayMs)) throw new Error('usage: relay-process.ts HOST:PORT DELAY_MS');
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = connect({ host: m[1]!, port: Number(m[2]), allowHalfOpen: true, noDelay: true });
    delayed(client, upstream, delayMs);
    delayed(upstream, client, delayMs);
    const kill = (): void => {
      setTimeout(() => {
        client.destroy();
        upstream.destroy();
      }, delayMs);
    };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

main();
