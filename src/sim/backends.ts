/**
 * Built-in backends: the programs that "listen inside" simulated pods. Each is
 * a real TCP server on 127.0.0.1:0, so the kubelet dials it as containerd
 * dials localhost:PORT in a pod's network namespace.
 *
 * - `http`: HTTP/1.1 keep-alive; every request gets `pod NAME path PATH\n`.
 * - `echo`: echoes bytes; after the client's FIN, ends once all is written back.
 * - `source`: reads `COUNT\n`, writes COUNT bytes of a fixed pattern, ends.
 * - `sink`: hashes what it reads and answers `BYTES SHA256HEX\n`, then ends.
 *   With a length prefix — a first line of 1–16 ASCII digits and LF, e.g.
 *   `1048576\n`, worth at most 2^53−1 — it answers as soon as that many more
 *   bytes arrived, without waiting for the client's FIN: port-forward does
 *   not carry half-close to the pod (the runtime closes the pod socket ≤ 1 s
 *   after the client's FIN), so a FIN-triggered answer never makes it back.
 *   Without one (the first bytes are not such a line) it answers at EOF, the
 *   prefix-less bytes all counted. Bytes past COUNT are read and dropped; a
 *   FIN before COUNT bytes gets the answer for what did arrive.
 *
 * Tests and benchmarks start them standalone with startBackend().
 */
import { createHash } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { BuiltinBackend } from './types.js';

export type BuiltinServerKind = Exclude<BuiltinBackend, 'closed'>;

export interface RunningBackend {
  address: { host: string; port: number };
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// The source pattern

/** The source backend repeats one 64 KiB block; byte i of a stream is block[i % SOURCE_BLOCK_SIZE]. */
export const SOURCE_BLOCK_SIZE = 64 * 1024;

let block: Buffer | undefined;

/** The 64 KiB block the source pattern repeats: SHA-256 in counter mode, so it does not compress. */
export function sourceBlock(): Buffer {
  if (!block) {
    const b = Buffer.alloc(SOURCE_BLOCK_SIZE);
    for (let i = 0; i < SOURCE_BLOCK_SIZE / 32; i++) {
      createHash('sha256').update(`kubesocks-source-${i}`).digest().copy(b, i * 32);
    }
    block = b;
  }
  return block;
}

/** Writes are made of whole blocks: 16 of them (1 MiB), so a 1 GiB stream is 1024 writes. */
const WRITE_BLOCKS = 16;
let writeBuffer: Buffer | undefined;

function sourceWriteBuffer(): Buffer {
  writeBuffer ??= Buffer.concat(Array.from({ length: WRITE_BLOCKS }, () => sourceBlock()));
  return writeBuffer;
}

/** Bytes [offset, offset + length) of the source pattern (for tests that check a stream piecewise). */
export function sourceBytes(offset: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  const b = sourceBlock();
  let written = 0;
  while (written < length) {
    const at = (offset + written) % SOURCE_BLOCK_SIZE;
    written += b.copy(out, written, at, Math.min(SOURCE_BLOCK_SIZE, at + (length - written)));
  }
  return out;
}

/** Hex SHA-256 of the first `n` bytes of the source pattern, without allocating `n` bytes. */
export function expectedSourceDigest(n: number): string {
  const hash = createHash('sha256');
  const b = sourceBlock();
  let left = n;
  while (left >= SOURCE_BLOCK_SIZE) {
    hash.update(b);
    left -= SOURCE_BLOCK_SIZE;
  }
  if (left > 0) hash.update(b.subarray(0, left));
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------
// Servers

/** The body the http backend answers `path` with. */
export function httpBackendBody(podName: string, path: string): string {
  return `pod ${podName} path ${path}\n`;
}

function handleHttp(podName: string, req: IncomingMessage, res: ServerResponse): void {
  let path = req.url ?? '/';
  // An absolute-form target (a client talking to the pod as if to a proxy) still names a path.
  if (!path.startsWith('/')) {
    try {
      const url = new URL(path);
      path = `${url.pathname}${url.search}`;
    } catch {
      // Not a URL either: report it as received.
    }
  }
  const body = Buffer.from(httpBackendBody(podName, path));
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length, 'X-Pod': podName });
  // For HEAD, Node sends the headers only.
  res.end(req.method === 'HEAD' ? undefined : body);
  req.resume();
}

function handleEcho(socket: Socket): void {
  // pipe() honours backpressure and calls end() after the last byte once the client's FIN arrived.
  socket.pipe(socket);
}

/** Longest count line the source accepts (2^53 has 16 digits). */
const MAX_COUNT_LINE = 32;

function handleSource(socket: Socket): void {
  let line = '';
  let started = false;
  socket.on('data', (chunk: Buffer) => {
    // Bytes after the count line are read and dropped, so the client never blocks on its writes.
    if (started) return;
    const nl = chunk.indexOf(0x0a);
    line += chunk.subarray(0, nl === -1 ? chunk.length : nl).toString('latin1');
    if (nl === -1) {
      if (line.length > MAX_COUNT_LINE) socket.destroy();
      return;
    }
    started = true;
    const text = line.trim();
    const count = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(count)) socket.end();
    else writePattern(socket, count);
  });
  // FIN before a complete count line: nothing to send.
  socket.on('end', () => {
    if (!started) socket.end();
  });
}

function writePattern(socket: Socket, count: number): void {
  const buffer = sourceWriteBuffer();
  let left = count;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, buffer.length);
      left -= n;
      const ok = socket.write(n === buffer.length ? buffer : buffer.subarray(0, n));
      if (!ok) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  socket.once('close', () => {
    left = 0;
    socket.off('drain', pump);
  });
  pump();
}

/** Most digits a sink length prefix may have: 2^53−1 has 16. */
const MAX_SINK_PREFIX_DIGITS = 16;

/**
 * Whether `head` (the first bytes of a sink connection) starts with a length
 * prefix: `{ count, length }` (length = bytes of the line with its LF), `null`
 * when it cannot be one, undefined while more bytes are needed to tell.
 */
export function sinkPrefix(head: Buffer): { count: number; length: number } | null | undefined {
  let i = 0;
  while (i < head.length && i <= MAX_SINK_PREFIX_DIGITS) {
    const byte = head[i] ?? 0;
    if (byte === 0x0a) {
      if (i === 0) return null;
      const count = Number(head.toString('latin1', 0, i));
      return Number.isSafeInteger(count) ? { count, length: i + 1 } : null;
    }
    if (byte < 0x30 || byte > 0x39) return null;
    i++;
  }
  return i > MAX_SINK_PREFIX_DIGITS ? null : undefined;
}

function handleSink(socket: Socket): void {
  const hash = createHash('sha256');
  let bytes = 0;
  /** Bytes still expected in counted mode; undefined in EOF mode or while undecided. */
  let left: number | undefined;
  let head: Buffer | undefined = Buffer.alloc(0);
  let answered = false;
  const answer = () => {
    if (answered) return;
    answered = true;
    socket.end(`${bytes} ${hash.digest('hex')}\n`);
  };
  const take = (chunk: Buffer) => {
    if (answered) return; // past COUNT: read and dropped, so the client never blocks
    const part = left === undefined ? chunk : chunk.subarray(0, left);
    bytes += part.length;
    hash.update(part);
    if (left !== undefined) {
      left -= part.length;
      if (left === 0) answer();
    }
  };
  socket.on('data', (chunk: Buffer) => {
    if (head === undefined) {
      take(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const prefix = sinkPrefix(head);
    if (prefix === undefined) return;
    const rest = prefix ? head.subarray(prefix.length) : head;
    head = undefined;
    if (prefix) {
      left = prefix.count;
      if (left === 0) answer();
    }
    take(rest);
  });
  socket.on('end', () => {
    // Undecided bytes at EOF (a few digits, no LF) are data.
    if (head !== undefined) take(head);
    head = undefined;
    answer();
  });
}

/** Connections of one backend, so close() can drop them (a server's close() only stops accepting). */
class Connections {
  readonly #sockets = new Set<Socket>();
  #closed = false;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      // A connection accepted while closing (it was in the backlog) goes at once.
      if (this.#closed) {
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      socket.setNoDelay(true);
      // Peers vanish (the kubelet resets, clients abort): that is not our failure.
      socket.on('error', () => {});
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  destroyAll(): void {
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }
}

function closeServer(server: Server, connections: Connections): Promise<void> {
  return new Promise((resolve) => {
    connections.destroyAll();
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

/** Starts a built-in backend on 127.0.0.1 (port 0). `podName` is what the http backend reports. */
export async function startBackend(kind: BuiltinServerKind, podName: string): Promise<RunningBackend> {
  let server: Server;
  if (kind === 'http') {
    const http = createHttpServer({ keepAlive: true, noDelay: true }, (req, res) => handleHttp(podName, req, res));
    http.keepAliveTimeout = 65_000;
    server = http;
  } else {
    // allowHalfOpen: the client's FIN must not end our side before we have answered.
    const handler = kind === 'echo' ? handleEcho : kind === 'source' ? handleSource : handleSink;
    server = createNetServer({ allowHalfOpen: true }, handler);
  }
  const connections = new Connections(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: { host: '127.0.0.1', port },
    close: () => (closing ??= closeServer(server, connections)),
  };
}
