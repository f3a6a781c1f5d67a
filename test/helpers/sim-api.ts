/**
 * Clients for the simulated API server tests: JSON calls, a line-by-line watch, hand-written HTTP/1.1
 * requests over TLS, and the port-forward upgrade request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { SimCluster } from '../../src/sim/cluster.js';

/** Parsed API JSON: the tests read arbitrary object shapes and let assertions check them. */
export type Json = any;

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: Json;
}

export interface CallOptions {
  /** Bearer token; null sends none. Default: admin. */
  token?: string | null;
  method?: string;
  headers?: Record<string, string>;
}

export function call(c: SimCluster, path: string, options: CallOptions = {}): Promise<Reply> {
  const token = options.token === undefined ? c.adminToken : options.token;
  const url = new URL(path, c.url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method ?? 'GET',
        ca: c.caPem,
        agent: false,
        headers: { Accept: 'application/json', ...(token !== null ? { Authorization: `Bearer ${token}` } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export type WatchEvent = { type: string; object: Json };

/** A watch response read line by line. */
export class Watch {
  readonly events: WatchEvent[] = [];
  #waiters: Array<() => void> = [];
  /** 'end' when the server finished the response, 'abort' when the connection broke mid-stream. */
  readonly finished: Promise<'end' | 'abort'>;
  #close: () => void = () => {};
  #opened: Promise<number>;

  constructor(c: SimCluster, path: string, token: string = c.adminToken) {
    let finish: (how: 'end' | 'abort') => void = () => {};
    this.finished = new Promise((resolve) => (finish = resolve));
    this.#opened = new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(path, c.url), { ca: c.caPem, agent: false, headers: { Authorization: `Bearer ${token}` } }, (res) => {
        resolve(res.statusCode ?? 0);
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) !== -1) {
            this.events.push(JSON.parse(buffered.slice(0, nl)) as WatchEvent);
            buffered = buffered.slice(nl + 1);
          }
          this.#wake();
        });
        res.on('error', () => {});
        res.on('close', () => {
          finish(res.complete ? 'end' : 'abort');
          this.#wake();
        });
      });
      req.on('error', (err) => {
        reject(err);
        finish('abort');
      });
      req.end();
      this.#close = () => req.destroy();
    });
  }

  opened(): Promise<number> {
    return this.#opened;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `count` events arrived; returns them all. */
  async atLeast(count: number, timeoutMs = 3000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} events, got ${JSON.stringify(this.events.map((e) => e.type))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.events;
  }

  /** Waits for an event matching `predicate`. */
  async find(predicate: (e: WatchEvent) => boolean, timeoutMs = 3000): Promise<WatchEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching event among ${JSON.stringify(this.events.map((e) => `${e.type} ${e.object?.metadata?.name}`))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.#close();
  }
}

export interface RawReply {
  status: number;
  statusLine: string;
  headers: Map<string, string[]>;
  body: string;
  socket: TLSSocket;
}

/** Sends a hand-written HTTP/1.1 request over TLS; returns the response head (and body unless 101). */
export function raw(c: SimCluster, head: string[]): Promise<RawReply> {
  const { port } = new URL(c.url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: c.caPem }, () => {
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
    });
    socket.on('error', reject);
    let buffer = Buffer.alloc(0);
    let parsed: Omit<RawReply, 'body'> | undefined;
    let bodyStart = 0;
    const finish = () => {
      if (!parsed) return;
      const length = Number(parsed.headers.get('content-length')?.[0] ?? Number.NaN);
      const body = buffer.subarray(bodyStart);
      if (parsed.status === 101) resolve({ ...parsed, body: '' });
      else if (!Number.isNaN(length) && body.length >= length) resolve({ ...parsed, body: body.subarray(0, length).toString('utf8') });
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!parsed) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const statusLine = lines[0] ?? '';
        const headers = new Map<string, string[]>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
        }
        parsed = { status: Number(statusLine.split(' ')[1]), statusLine, headers, socket };
        bodyStart = end + 4;
      }
      finish();
    });
    socket.on('end', () => {
      if (parsed) resolve({ ...parsed, body: buffer.subarray(bodyStart).toString('utf8') });
      else reject(new Error(`connection ended before a response: ${JSON.stringify(buffer.toString('latin1'))}`));
    });
  });
}

export const PF = (ns: string, pod: string) => `/api/v1/namespaces/${ns}/pods/${pod}/portforward`;

export function spdyUpgrade(c: SimCluster, path: string, options: { token?: string | null; extra?: string[]; omit?: string[]; method?: string } = {}): Promise<RawReply> {
  const token = options.token === undefined ? c.adminToken : options.token;
  const omit = new Set((options.omit ?? []).map((h) => h.toLowerCase()));
  const headers = [
    `Host: ${new URL(c.url).host}`,
    ...(token !== null ? [`Authorization: Bearer ${token}`] : []),
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    'X-Stream-Protocol-Version: portforward.k8s.io',
    'Content-Length: 0',
  ].filter((h) => !omit.has(h.slice(0, h.indexOf(':')).toLowerCase()));
  return raw(c, [`${options.method ?? 'POST'} ${path} HTTP/1.1`, ...headers, ...(options.extra ?? [])]);
}

export const STATUS_401 = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

export function names(list: Json): string[] {
  return list.items.map((i: Json) => i.metadata.name);
}
