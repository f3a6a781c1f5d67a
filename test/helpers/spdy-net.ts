/**
 * Loopback plumbing for the SPDY tests: real TCP sockets on 127.0.0.1, an
 * echo "pod", byte pumps with backpressure, and small waiting helpers.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';

export interface Listener {
  server: net.Server;
  port: number;
  /** Every socket the server accepted (destroyed by close()). */
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1, port 0. */
export async function listen(onConnection: (socket: net.Socket) => void): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as net.AddressInfo;
  return {
    server,
    port: address.port,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

export interface TcpPair {
  client: net.Socket;
  server: net.Socket;
  close(): Promise<void>;
}

/** Two ends of one real loopback TCP connection. */
export async function tcpPair(): Promise<TcpPair> {
  let accepted!: (socket: net.Socket) => void;
  const serverSide = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const listener = await listen((socket) => accepted(socket));
  const client = await connect(listener.port);
  const server = await serverSide;
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await listener.close();
    },
  };
}

export interface EchoServer extends Listener {
  host: string;
  /** When each accepted socket saw the client's FIN (ms since epoch), in accept order. */
  endTimes: number[];
  /** How many connections the pod app accepted. */
  accepted(): number;
}

/** A pod app that echoes every byte back and ends when the peer ends. */
export async function echoServer(): Promise<EchoServer> {
  const endTimes: number[] = [];
  let accepted = 0;
  const listener = await listen((socket) => {
    const index = accepted++;
    socket.on('error', () => {});
    socket.on('end', () => (endTimes[index] = Date.now()));
    socket.pipe(socket);
  });
  return Object.assign(listener, { host: '127.0.0.1', endTimes, accepted: () => accepted });
}

/** Deterministic pseudo-random bytes (xorshift32), different per seed. */
export function patternBuffer(size: number, seed = 1): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= size) buffer.writeUInt32LE(x, i);
    else for (let j = i; j < size; j++) buffer[j] = (x >>> (8 * (j - i))) & 0xff;
  }
  return buffer;
}

export interface PumpResult {
  bytes: number;
  sha256: string;
}

/**
 * Writes `total` bytes (the pattern buffer repeated) honouring backpressure,
 * then ends the stream unless told not to. Resolves with what was written.
 */
export async function pump(stream: Writable, total: number, options: { seed?: number; chunk?: number; end?: boolean } = {}): Promise<PumpResult> {
  const block = patternBuffer(options.chunk ?? 256 * 1024, options.seed ?? 7);
  const hash = createHash('sha256');
  let written = 0;
  while (written < total) {
    const piece = block.subarray(0, Math.min(block.length, total - written));
    hash.update(piece);
    written += piece.length;
    if (!stream.write(piece)) {
      const drained = await new Promise<boolean>((resolve) => {
        const onDrain = (): void => done(true);
        const onClose = (): void => done(false);
        const done = (ok: boolean): void => {
          stream.off('drain', onDrain);
          stream.off('close', onClose);
          resolve(ok);
        };
        stream.on('drain', onDrain);
        stream.on('close', onClose);
      });
      if (!drained) throw new Error(`stream closed after ${written} bytes`);
    }
  }
  if (options.end !== false) stream.end();
  return { bytes: written, sha256: hash.digest('hex') };
}

/** Reads a stream to its end; resolves with the byte count and hash (rejects on 'error'). */
export function drain(stream: Readable): Promise<PumpResult> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    stream.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    stream.once('error', reject);
  });
}

/** Reads a stream to its end and returns the bytes. */
export function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Reads from a duplex until at least `bytes` arrived. */
export function readBytes(stream: Duplex, bytes: number, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`timed out after ${have} of ${bytes} bytes`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= bytes) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
  });
}

/** Polls `predicate` until true; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects when `promise` does not settle in time. */
export function within<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}
