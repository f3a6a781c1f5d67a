/**
 * Fixtures for the proxy tests: real loopback servers (echo, HTTP), a
 * Connector that dials them and fails on purpose for special names, a
 * proxy started on port 0, and a raw TCP client that reads exact bytes.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubesocksError, type ErrorCode } from '../../src/errors.js';
import { createProxyServer, type ConnectionRecord, type ProxyServer, type ProxyServerOptions } from '../../src/proxy/server.js';
import type { Connected, Connector, PacInfo, ProxyTarget } from '../../src/net/connector.js';

export async function listenLocal<T extends Server | HttpServer>(server: T, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Echo server; keeps half-close: after the client's FIN it flushes and ends. */
export async function startEchoServer(host = '127.0.0.1'): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  const port = await listenLocal(server, host);
  return {
    port,
    server,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What the HTTP fixture saw of a request; it answers with this as JSON. */
export interface SeenRequest {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * HTTP server that answers every request with a JSON description of it.
 * `/big?n=N` answers N bytes of 'x'; `/chunked` answers with chunked framing.
 */
export async function startHttpServer(): Promise<{ port: number; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const record: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(record);
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/big') {
        const n = Number(url.searchParams.get('n') ?? '0');
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': n });
        res.end('x'.repeat(n));
        return;
      }
      if (url.pathname === '/chunked') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Keep-Alive': 'timeout=5', 'X-Hop': 'drop-me' , Connection: 'X-Hop' });
        res.write('hello ');
        setTimeout(() => res.end('world'), 5);
        return;
      }
      const body = JSON.stringify(record);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Fixture': 'web' });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 100;
  const port = await listenLocal(server);
  return {
    port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Failures the test Connector produces, by host name. */
export const FAILING_HOSTS: Readonly<Record<string, ErrorCode>> = {
  'refused.test': 'POD_REFUSED',
  'missing.test': 'NOT_FOUND',
  'forbidden.test': 'FORBIDDEN',
  'slow.test': 'TIMEOUT',
};

/** Kubelet-like text, to check it reaches HTTP clients verbatim. */
export const REFUSED_MESSAGE =
  'error forwarding port 80 to pod 0123abcd, uid : failed to execute portforward in network namespace "/var/run/netns/cni-1": failed to connect to localhost:80 inside namespace "0123abcd", IPv4: dial tcp4 127.0.0.1:80: connect: connection refused';

/**
 * A Connector over real local servers:
 * - `echo.test` → the echo server, `web.test` → the HTTP server (any port);
 * - IP literals and `localhost` → dialled as given;
 * - names in FAILING_HOSTS and `fail-CODE.test` → reject with that code;
 * - `hang.test` → waits for the abort; `late.test` → resolves with a live
 *   stream only after the client is gone (the proxy must destroy it).
 */
export class TestConnector implements Connector {
  readonly targets: ProxyTarget[] = [];
  readonly aborted: ProxyTarget[] = [];
  readonly lateStreams: Socket[] = [];
  /** Every stream handed out, in order. */
  readonly streams: Socket[] = [];
  pac: PacInfo = { clusterDomain: 'cluster.local', namespaces: ['demo', 'db'] };

  constructor(readonly ports: { echo: number; web: number }) {}

  async connect(target: ProxyTarget, signal: AbortSignal): Promise<Connected> {
    this.targets.push(target);
    signal.addEventListener('abort', () => this.aborted.push(target), { once: true });
    const host = target.host.toLowerCase();
    const failing = FAILING_HOSTS[host] ?? /^fail-([a-z_]+)\.test$/i.exec(target.host)?.[1];
    if (failing) {
      if (failing === 'TIMEOUT') await sleep(20);
      const message = failing === 'POD_REFUSED' ? REFUSED_MESSAGE : `test: ${failing} for ${target.host}`;
      throw new KubesocksError(failing as ErrorCode, message);
    }
    if (host === 'hang.test') {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      throw signal.reason;
    }
    if (host === 'late.test') {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await sleep(10);
      const stream = await this.#dial('127.0.0.1', this.ports.echo);
      this.lateStreams.push(stream);
      return { stream, via: 'test late' };
    }
    if (host === 'echo.test') return { stream: await this.#dial('127.0.0.1', this.ports.echo), via: 'test/echo' };
    if (host === 'web.test') return { stream: await this.#dial('127.0.0.1', this.ports.web), via: 'test/web' };
    return { stream: await this.#dial(target.host, target.port), via: `direct ${target.host}:${target.port}` };
  }

  async pacInfo(): Promise<PacInfo> {
    return this.pac;
  }

  #dial(host: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, allowHalfOpen: true });
      socket.once('connect', () => {
        socket.off('error', onError);
        this.streams.push(socket);
        resolve(socket);
      });
      const onError = (err: Error): void => reject(new KubesocksError('DIRECT_FAILED', err.message, { cause: err }));
      socket.once('error', onError);
    });
  }
}

export interface ProxyFixture<C extends Connector = TestConnector> {
  proxy: ProxyServer;
  port: number;
  connector: C;
  records: ConnectionRecord[];
  errors: KubesocksError[];
  echo: { port: number };
  web: { port: number; seen: SeenRequest[] };
  close(): Promise<void>;
}

/** Echo and HTTP servers, a TestConnector (or another made by `makeConnector`), and a proxy on 127.0.0.1:0. */
export async function startProxyFixture(options?: Partial<ProxyServerOptions>): Promise<ProxyFixture>;
export async function startProxyFixture<C extends Connector>(
  options: Partial<ProxyServerOptions>,
  makeConnector: (ports: { echo: number; web: number }) => C,
): Promise<ProxyFixture<C>>;
export async function startProxyFixture(
  options: Partial<ProxyServerOptions> = {},
  makeConnector: (ports: { echo: number; web: number }) => Connector = (ports) => new TestConnector(ports),
): Promise<ProxyFixture<Connector>> {
  const echo = await startEchoServer();
  const web = await startHttpServer();
  const connector = makeConnector({ echo: echo.port, web: web.port });
  const records: ConnectionRecord[] = [];
  const errors: KubesocksError[] = [];
  const proxy = createProxyServer({
    connector,
    onConnection: (r) => records.push(r),
    onError: (e) => errors.push(e),
    ...options,
  });
  const { port } = await proxy.listen('127.0.0.1', 0);
  return {
    proxy,
    port,
    connector,
    records,
    errors,
    echo,
    web,
    close: async () => {
      await proxy.close();
      await echo.close();
      await web.close();
    },
  };
}

/** Polls until `check` is true (or throws after `timeoutMs`, with the last value in the message). */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * A raw TCP client that accumulates what it receives, to assert exact bytes.
 */
export class RawClient {
  readonly socket: Socket;
  #buf = Buffer.alloc(0);
  #ended = false;
  #closed = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = connect({ port, host, allowHalfOpen: true, noDelay: true });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  get ended(): boolean {
    return this.#ended;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Everything received and not yet taken. */
  get buffered(): Buffer {
    return this.#buf;
  }

  write(bytes: Buffer | string | number[]): void {
    this.socket.write(Array.isArray(bytes) ? Buffer.from(bytes) : bytes);
  }

  /** Writes one byte at a time, each in its own packet. */
  async writeSlowly(bytes: Buffer | number[], gapMs = 2): Promise<void> {
    for (const b of Buffer.from(bytes)) {
      this.socket.write(Buffer.from([b]));
      await sleep(gapMs);
    }
  }

  /** Resolves with exactly `n` bytes (removing them), or rejects if the connection ends first. */
  async read(n: number, timeoutMs = 3000): Promise<Buffer> {
    await this.#until(() => this.#buf.length >= n || this.#ended || this.#closed, `${n} bytes`, timeoutMs);
    if (this.#buf.length < n) throw new Error(`connection ended after ${this.#buf.length} of ${n} bytes: ${this.#buf.toString('hex')}`);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Resolves with everything received up to the peer's FIN (or close). */
  async readToEnd(timeoutMs = 3000): Promise<Buffer> {
    await this.#until(() => this.#ended || this.#closed, 'end', timeoutMs);
    const out = this.#buf;
    this.#buf = Buffer.alloc(0);
    return out;
  }

  /** Reads until `marker` is in the buffer; returns everything up to and including it. */
  async readUntil(marker: string, timeoutMs = 3000): Promise<string> {
    await this.#until(() => this.#buf.includes(marker) || this.#ended || this.#closed, JSON.stringify(marker), timeoutMs);
    const at = this.#buf.indexOf(marker);
    if (at < 0) throw new Error(`connection ended before ${JSON.stringify(marker)}: ${JSON.stringify(this.#buf.toString())}`);
    const out = this.#buf.subarray(0, at + marker.length).toString();
    this.#buf = this.#buf.subarray(at + marker.length);
    return out;
  }

  /** Waits until the proxy closed the connection (its FIN or a reset). */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await this.#until(() => this.#ended || this.#closed, 'close', timeoutMs);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  async #until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.#buf.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** SOCKS5 request bytes for CONNECT to a domain name. */
export function socks5ConnectDomain(host: string, port: number): Buffer {
  const name = Buffer.from(host, 'latin1');
  return Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length]), name, u16(port)]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** SOCKS4a request bytes (user id, then host). */
export function socks4aConnect(host: string, port: number, userId = ''): Buffer {
  return Buffer.concat([Buffer.from([0x04, 0x01]), u16(port), Buffer.from([0, 0, 0, 1]), Buffer.from(userId), Buffer.from([0]), Buffer.from(host), Buffer.from([0])]);
}

/** RFC 1929 username/password request. */
export function userPass(user: string, pass: string): Buffer {
  const u = Buffer.from(user);
  const p = Buffer.from(pass);
  return Buffer.concat([Buffer.from([0x01, u.length]), u, Buffer.from([p.length]), p]);
}
