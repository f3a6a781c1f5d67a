/**
 * Requests to the API server: one credential refresh on 401, Status bodies
 * turned into KubesocksErrors whose message is the server's own text (that is
 * what kubectl prints, and what tells a user which RBAC rule is missing).
 */
import * as https from 'node:https';
import type * as http from 'node:http';
import { debuglog } from 'node:util';
import { KubesocksError, type ErrorCode } from '../errors.js';

const debug = debuglog('kubesocks:kube');

/** What the request helpers need from a KubeClient (kept narrow so config.ts can import this file). */
export interface RequestSource {
  readonly contextName: string;
  readonly userName: string;
  readonly clusterServer: string;
  /** Keep-alive agent used when requestOptions() gives none. */
  readonly agent: http.Agent;
  requestOptions(method: string, path: string, headers?: Record<string, string>): Promise<https.RequestOptions>;
  invalidateCredentials(): void;
}

/** A non-2xx answer from the API server. `status` is the HTTP status; `reason` the Status reason, if any. */
export class KubeApiError extends KubesocksError {
  readonly status: number;
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, status: number, reason?: string) {
    super(code, message);
    this.status = status;
    this.reason = reason;
  }
}

/** A Kubernetes `Status` object (the body of every API error). */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export interface RequestOpts {
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
  /** Deadline for the response head. Default 30 s. */
  headersTimeoutMs?: number;
}

const MAX_ERROR_BODY = 64 * 1024;

/**
 * Sends a request and resolves with a 2xx response (body unread). On a 401
 * the credentials are refreshed and the request sent once more; a second 401
 * becomes UNAUTHORIZED. Other non-2xx answers reject with a KubeApiError.
 */
export async function request(src: RequestSource, method: string, path: string, opts: RequestOpts = {}): Promise<http.IncomingMessage> {
  let refreshed = false;
  let resent = false;
  for (;;) {
    let res: http.IncomingMessage;
    try {
      res = await sendOnce(src, method, path, opts);
    } catch (err) {
      // A keep-alive socket the server closed meanwhile (e.g. it restarted):
      // the request never reached it, so sending it again is safe for GETs.
      if (!resent && method === 'GET' && (err as { reusedSocket?: boolean }).reusedSocket) {
        resent = true;
        continue;
      }
      throw err;
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const body = await readBody(res, MAX_ERROR_BODY, opts.signal).catch(() => '');
    if (status === 401 && !refreshed) {
      debug('401 from %s %s: refreshing credentials once', method, path);
      refreshed = true;
      src.invalidateCredentials();
      continue;
    }
    throw statusError(src, status, body, method, path);
  }
}

function sendOnce(src: RequestSource, method: string, path: string, opts: RequestOpts): Promise<http.IncomingMessage> {
  return src.requestOptions(method, path, { Accept: 'application/json', ...opts.headers }).then(
    (ro) =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const signal = opts.signal;
        if (signal?.aborted) {
          reject(abortError(signal));
          return;
        }
        if (!ro.agent) ro.agent = src.agent;
        const req = https.request(ro);
        let settled = false;
        const timer = setTimeout(() => {
          req.destroy(new KubesocksError('TIMEOUT', `the API server ${src.clusterServer} did not answer ${method} ${path} in time`));
        }, opts.headersTimeoutMs ?? 30_000);
        const onAbort = (): void => {
          req.destroy(abortError(signal));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        const done = (): void => {
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        req.on('response', (res) => {
          done();
          // Aborting after the head must still end the body.
          if (signal) {
            const abortBody = (): void => {
              res.destroy(abortError(signal));
            };
            signal.addEventListener('abort', abortBody, { once: true });
            res.once('close', () => {
              signal.removeEventListener('abort', abortBody);
            });
          }
          resolve(res);
        });
        req.on('error', (err) => {
          if (settled) return;
          done();
          const mapped = err instanceof KubesocksError ? err : networkError(src, err);
          if (req.reusedSocket && !(err instanceof KubesocksError)) {
            (mapped as { reusedSocket?: boolean }).reusedSocket = true;
          }
          reject(mapped);
        });
        req.end();
      }),
  );
}

/** GET a path and parse its JSON body (see request()). `timeoutMs` bounds the whole exchange (default 60 s). */
export async function getJSON<T>(src: RequestSource, path: string, signal?: AbortSignal, timeoutMs = 60_000): Promise<T> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
  try {
    const res = await request(src, 'GET', path, { signal: combined });
    const text = await readBody(res, Infinity, combined);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubesocksError('API_UNREACHABLE', `the API server ${src.clusterServer} sent invalid JSON for GET ${path}`);
    }
  } catch (err) {
    if (deadline.aborted && !signal?.aborted && !(err instanceof KubeApiError)) {
      throw new KubesocksError('TIMEOUT', `GET ${path} on the API server ${src.clusterServer} took longer than ${timeoutMs} ms`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** Reads a body as UTF-8, up to `limit` characters (the rest is drained). */
export function readBody(res: http.IncomingMessage, limit: number, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      res.destroy();
      reject(abortError(signal));
      return;
    }
    const chunks: string[] = [];
    let size = 0;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (size < limit) {
        chunks.push(chunk);
        size += chunk.length;
      }
    });
    res.on('end', () => {
      resolve(chunks.join(''));
    });
    res.on('error', (err) => {
      reject(err instanceof KubesocksError ? err : signal?.aborted ? abortError(signal) : new KubesocksError('API_UNREACHABLE', `the connection to the API server broke: ${err.message}`, { cause: err }));
    });
    res.on('close', () => {
      if (!res.complete) {
        reject(signal?.aborted ? abortError(signal) : new KubesocksError('API_UNREACHABLE', 'the API server closed the connection mid-answer'));
      }
    });
  });
}

/** The Status message of a body, or null if it is not a Status. */
export function parseStatus(body: string): KubeStatus | null {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object' && (parsed as KubeStatus).kind === 'Status') return parsed as KubeStatus;
  } catch {
    // Not JSON: a proxy's HTML page, or nothing.
  }
  return null;
}

/** Maps an HTTP status and body to a KubeApiError with the server's message. */
export function statusError(src: RequestSource, status: number, body: string, method: string, path: string): KubeApiError {
  const st = parseStatus(body);
  const message = st?.message || `${method} ${path}: HTTP ${status}`;
  const reason = st?.reason;
  switch (status) {
    case 401:
      return new KubeApiError(
        'UNAUTHORIZED',
        `the API server rejected the credentials of context "${src.contextName}"` +
          (src.userName ? ` (user "${src.userName}")` : '') +
          ` even after refreshing them (${message}): log in again or fix the kubeconfig`,
        status,
        reason,
      );
    case 403:
      return new KubeApiError('FORBIDDEN', message, status, reason);
    case 404:
      return new KubeApiError('NOT_FOUND', message, status, reason);
    default:
      return new KubeApiError(
        'API_UNREACHABLE',
        `the API server ${src.clusterServer} answered ${method} ${path} with HTTP ${status}: ${message}`,
        status,
        reason,
      );
  }
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A socket-level failure talking to the API server, as a KubesocksError without secrets. */
export function networkError(src: RequestSource, err: unknown): KubesocksError {
  if (err instanceof KubesocksError) return err;
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  const text = err instanceof Error ? err.message : String(err);
  if (TLS_VERIFY_CODES.has(code)) {
    // Retrying cannot fix a certificate mismatch: it is a kubeconfig problem.
    return new KubesocksError(
      'CONFIG',
      `cannot verify the API server ${src.clusterServer} of context "${src.contextName}": ${text} (check certificate-authority and tls-server-name in the kubeconfig)`,
      { cause: err },
    );
  }
  if (code === 'ETIMEDOUT') {
    return new KubesocksError('TIMEOUT', `connecting to the API server ${src.clusterServer} timed out`, { cause: err });
  }
  return new KubesocksError(
    'API_UNREACHABLE',
    `cannot reach the API server ${src.clusterServer} of context "${src.contextName}": ${text}`,
    { cause: err },
  );
}

/** The error for an aborted request: the signal's reason if it is a KubesocksError, else TIMEOUT/CLOSED. */
export function abortError(signal: AbortSignal | undefined): KubesocksError {
  const reason: unknown = signal?.reason;
  if (reason instanceof KubesocksError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new KubesocksError('TIMEOUT', 'the request to the API server timed out', { cause: reason });
  }
  return new KubesocksError('CLOSED', 'the request was abandoned', { cause: reason });
}

export interface ListOpts {
  signal?: AbortSignal | undefined;
  /** `limit` per page. Default 500 (client-go's pager). */
  pageSize?: number;
  /** Deadline per page. Default 60 s. */
  timeoutMs?: number;
}

/**
 * Lists a collection page by page (`limit` + `continue`), keeping only what
 * `project` returns, so a huge list never sits in memory as one JSON text.
 * Resolves with the projected items and the list's resourceVersion.
 */
export async function listAll<T>(
  src: RequestSource,
  path: string,
  project: (raw: unknown) => T | null,
  opts: ListOpts = {},
): Promise<{ items: T[]; resourceVersion: string }> {
  const items: T[] = [];
  let cont = '';
  let resourceVersion = '';
  const sep = path.includes('?') ? '&' : '?';
  do {
    const q = new URLSearchParams({ limit: String(opts.pageSize ?? 500) });
    if (cont) q.set('continue', cont);
    const page = await getJSON<{ metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] }>(
      src,
      `${path}${sep}${q.toString()}`,
      opts.signal,
      opts.timeoutMs ?? 60_000,
    );
    for (const raw of page.items ?? []) {
      const p = project(raw);
      if (p !== null) items.push(p);
    }
    resourceVersion = page.metadata?.resourceVersion ?? '';
    cont = page.metadata?.continue ?? '';
  } while (cont);
  return { items, resourceVersion };
}
