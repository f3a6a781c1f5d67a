/**
 * The benchmark's client side: opening a connection by each route (plain
 * TCP, SOCKS5, HTTP CONNECT, the dialer API) and the transfers run over it
 * (download from `source`, upload to `sink`, echo). Every transfer checks
 * SHA-256 and length, and every wait has a deadline.
 */
import { createHash } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dialer } from '../../src/dialer/dialer.js';
import { expectedSourceDigest, sourceBytes } from '../../src/sim/backends.js';

export interface Address {
  host: string;
  port: number;
}

/** How a connection reaches its target. */
export type Route =
  | { kind: 'tcp'; address: Address }
  | { kind: 'socks5'; proxy: Address; host: string; port: number }
  | { kind: 'http'; proxy: Address; host: string; port: number }
  | { kind: 'dialer'; dialer: Dialer; host: string; port: number };

export class BenchError extends Error {
  override name = 'BenchError';
}

function tcp(address: Address, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: address.host, port: address.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new BenchError(`connect to ${address.host}:${address.port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
  });
}

/**
 * Reads a protocol head: calls `length(bufferSoFar)` until it returns the
 * head's length (>= 0), then puts any bytes past the head back. The stream is
 * left paused; whoever reads next attaches a listener and calls resume().
 */
export function readHead(stream: Duplex, length: (buf: Buffer) => number, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new BenchError(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('error', fail);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
    };
    const fail = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onEnd = (): void => fail(new BenchError(`${what}: the connection closed (${buf.length} bytes read: ${JSON.stringify(buf.toString('latin1').slice(0, 200))})`));
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const n = length(buf);
      if (n < 0) return;
      cleanup();
      stream.pause();
      if (buf.length > n) stream.unshift(buf.subarray(n));
      resolve(buf.subarray(0, n));
    };
    stream.on('data', onData);
    stream.once('error', fail);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.resume();
  });
}

const SOCKS5_REPLIES: Record<number, string> = {
  1: 'general failure',
  2: 'not allowed',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

async function socks5(socket: Socket, host: string, port: number, timeoutMs: number): Promise<void> {
  socket.write(Buffer.from([5, 1, 0]));
  const method = await readHead(socket, (b) => (b.length >= 2 ? 2 : -1), timeoutMs, 'SOCKS5 greeting');
  if (method[0] !== 5 || method[1] !== 0) throw new BenchError(`SOCKS5: the proxy chose method ${method[1]}`);
  const name = Buffer.from(host, 'latin1');
  socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
  const reply = await readHead(
    socket,
    (b) => {
      if (b.length < 5) return -1;
      const atyp = b[3];
      const addr = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + b[4]! : 0;
      const total = 4 + addr + 2;
      return b.length >= total ? total : -1;
    },
    timeoutMs,
    `SOCKS5 CONNECT ${host}:${port}`,
  );
  if (reply[1] !== 0) throw new BenchError(`SOCKS5 CONNECT ${host}:${port}: reply ${reply[1]} (${SOCKS5_REPLIES[reply[1]!] ?? '?'})`);
}

async function httpConnect(socket: Socket, host: string, port: number, timeoutMs: number): Promise<void> {
  socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  const head = await readHead(
    socket,
    (b) => {
      const i = b.indexOf('\r\n\r\n');
      return i === -1 ? -1 : i + 4;
    },
    timeoutMs,
    `CONNECT ${host}:${port}`,
  );
  const status = head.toString('latin1').split('\r\n')[0] ?? '';
  if (!/^HTTP\/1\.[01] 200\b/.test(status)) throw new BenchError(`CONNECT ${host}:${port}: ${status}`);
}

/** Opens a connection by `route`; resolves once it is ready to carry bytes. */
export async function open(route: Route, timeoutMs = 30_000): Promise<Duplex> {
  switch (route.kind) {
    case 'tcp':
      return tcp(route.address, timeoutMs);
    case 'dialer': {
      const socket = await route.dialer.connect(`${route.host}:${route.port}`, { signal: AbortSignal.timeout(timeoutMs) });
      return socket;
    }
    case 'socks5':
    case 'http': {
      const socket = await tcp(route.proxy, timeoutMs);
      try {
        if (route.kind === 'socks5') await socks5(socket, route.host, route.port, timeoutMs);
        else await httpConnect(socket, route.host, route.port, timeoutMs);
      } catch (error) {
        socket.destroy();
        throw error;
      }
      return socket;
    }
  }
}

/** Runs `body` with a deadline; on timeout destroys `stream` and rejects. */
function withDeadline<T>(stream: Duplex, timeoutMs: number, what: string, body: (resolve: (v: T) => void, reject: (e: Error) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => finish(new BenchError(`${what}: not done within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    const onError = (error: Error): void => finish(error);
    const onClose = (): void => finish(new BenchError(`${what}: the connection closed early`));
    const finish = (error: Error | null, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('error', onError);
      stream.off('close', onClose);
      if (error) {
        stream.destroy();
        reject(error);
      } else resolve(value as T);
    };
    stream.on('error', onError);
    stream.on('close', onClose);
    body(
      (v) => finish(null, v),
      (e) => finish(e),
    );
  });
}

export interface TransferResult {
  bytes: number;
  seconds: number;
  /** SHA-256 of what arrived (download) or what the sink reported (upload). */
  digest: string;
}

/** Sends `COUNT\n` to a `source` backend and reads exactly COUNT bytes, hashing them. Destroys the stream after. */
export async function download(stream: Duplex, count: number, timeoutMs: number): Promise<TransferResult> {
  const expected = expectedSourceDigest(count);
  const hash = createHash('sha256');
  let got = 0;
  const t0 = performance.now();
  const seconds = await withDeadline<number>(stream, timeoutMs, `download of ${count} bytes`, (resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got > count) return reject(new BenchError(`download: ${got} bytes arrived, ${count} expected`));
      hash.update(chunk);
      if (got === count) resolve((performance.now() - t0) / 1000);
    });
    stream.once('end', () => reject(new BenchError(`download: the stream ended after ${got} of ${count} bytes`)));
    stream.write(`${count}\n`);
    stream.resume();
  });
  stream.destroy();
  const digest = hash.digest('hex');
  if (digest !== expected) throw new BenchError(`download: SHA-256 ${digest} != expected ${expected}`);
  return { bytes: count, seconds, digest };
}

/** 1 MiB of the source pattern: consecutive writes of it continue the pattern. */
let patternChunk: Buffer | undefined;
export function patternMiB(): Buffer {
  patternChunk ??= sourceBytes(0, 1024 * 1024);
  return patternChunk;
}

/**
 * Sends `COUNT\n` and COUNT bytes of the source pattern to a `sink` backend,
 * then reads its `BYTES SHA256HEX` line (sent without waiting for a FIN).
 */
export async function upload(stream: Duplex, count: number, timeoutMs: number): Promise<TransferResult> {
  const expected = expectedSourceDigest(count);
  const chunk = patternMiB();
  let line = '';
  const t0 = performance.now();
  const seconds = await withDeadline<number>(stream, timeoutMs, `upload of ${count} bytes`, (resolve, reject) => {
    stream.on('data', (data: Buffer) => {
      line += data.toString('latin1');
      if (line.includes('\n')) resolve((performance.now() - t0) / 1000);
      else if (line.length > 200) reject(new BenchError(`upload: unexpected answer ${JSON.stringify(line)}`));
    });
    stream.once('end', () => {
      if (!line.includes('\n')) reject(new BenchError(`upload: the stream ended without the sink's answer (got ${JSON.stringify(line)})`));
    });
    stream.resume();
    let left = count;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          stream.once('drain', pump);
          return;
        }
      }
    };
    stream.write(`${count}\n`);
    pump();
  });
  stream.destroy();
  const [bytesText, digest = ''] = line.trim().split(' ');
  if (Number(bytesText) !== count) throw new BenchError(`upload: the sink counted ${bytesText} bytes, ${count} sent`);
  if (digest !== expected) throw new BenchError(`upload: the sink's SHA-256 ${digest} != expected ${expected}`);
  return { bytes: count, seconds, digest };
}

/** Writes one byte and waits for it to come back; resolves with the round trip in ms. */
export function echoByte(stream: Duplex, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  return withDeadline<number>(stream, timeoutMs, 'one-byte echo', (resolve, reject) => {
    const onData = (data: Buffer): void => {
      stream.off('data', onData);
      stream.pause();
      if (data.length !== 1 || data[0] !== 0x2a) reject(new BenchError(`echo: got ${JSON.stringify(data.toString('latin1'))}`));
      else resolve(performance.now() - t0);
    };
    stream.on('data', onData);
    stream.write(Buffer.from([0x2a]));
    stream.resume();
  });
}

/** Writes `data` to an echo backend and reads as many bytes back; checks their SHA-256 against `digest`. */
export async function echoBulk(stream: Duplex, data: Buffer, digest: string, timeoutMs: number): Promise<void> {
  const hash = createHash('sha256');
  let got = 0;
  await withDeadline<void>(stream, timeoutMs, `echo of ${data.length} bytes`, (resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got > data.length) return reject(new BenchError(`echo: ${got} bytes came back, ${data.length} sent`));
      hash.update(chunk);
      if (got === data.length) resolve();
    });
    stream.resume();
    stream.write(data);
  });
  stream.destroy();
  const actual = hash.digest('hex');
  if (actual !== digest) throw new BenchError(`echo: SHA-256 of the bytes back ${actual} != sent ${digest}`);
}
