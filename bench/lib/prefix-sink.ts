/**
 * The upload benchmark's sink protocol: the client sends `COUNT\n`, then
 * COUNT bytes; the sink answers `BYTES SHA256HEX\n` after COUNT bytes, without
 * waiting for a FIN (the runtime does not pass half-close to the pod).
 *
 * The simulator's built-in `sink` is meant to speak it; probeSinkPrefix() tells
 * whether the one in this tree does. Where it does not yet, the simulator
 * process falls back to startPrefixSink() here and the results say so.
 */
import { createHash } from 'node:crypto';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

export interface Address {
  host: string;
  port: number;
}

/** True if the sink at `address` answers `5 SHA` to `5\nhello` before any FIN. */
export function probeSinkPrefix(address: Address, timeoutMs = 500): Promise<boolean> {
  const expected = `5 ${createHash('sha256').update('hello').digest('hex')}`;
  return new Promise((resolve) => {
    const socket = connect(address.port, address.host);
    let text = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl !== -1) done(text.slice(0, nl).trim() === expected);
    });
    socket.on('connect', () => socket.write('5\nhello'));
  });
}

function handle(socket: Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const hash = createHash('sha256');
  let head: Buffer | null = Buffer.alloc(0);
  let left = -1; // -1: no count line (read to EOF)
  let bytes = 0;
  const reply = (): void => {
    socket.end(`${bytes} ${hash.digest('hex')}\n`);
  };
  const take = (chunk: Buffer): void => {
    if (left === -1) {
      bytes += chunk.length;
      hash.update(chunk);
      return;
    }
    const n = Math.min(left, chunk.length);
    if (n > 0) {
      hash.update(n === chunk.length ? chunk : chunk.subarray(0, n));
      bytes += n;
      left -= n;
    }
    if (left === 0) {
      left = -2; // answered; the rest is dropped
      reply();
    }
  };
  socket.on('data', (chunk: Buffer) => {
    if (left === -2) return;
    if (head === null) return take(chunk);
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(0x0a);
    if (nl === -1 && head.length <= 32) return;
    const line = nl === -1 ? '' : head.subarray(0, nl).toString('latin1').trim();
    const rest = head;
    head = null;
    if (/^\d+$/.test(line)) {
      left = Number(line);
      take(rest.subarray(nl + 1));
    } else {
      take(rest);
    }
  });
  socket.on('end', () => {
    if (left === -2) return;
    if (head !== null) take(head);
    reply();
  });
}

/** A sink that speaks the prefix protocol, on 127.0.0.1:0. */
export async function startPrefixSink(): Promise<{ address: Address; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: { host: '127.0.0.1', port },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
