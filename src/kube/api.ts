/**
 * Requests to the API server: GET JSON, paged lists, and the request under
 * watches; what the answers mean (Status, 401 refresh, codes) is responses.ts.
 */
import * as https from 'node:https';
import type * as http from 'node:http';
import type { ApiHealth } from './health.js';
import { KubesocksError } from '../errors.js';
import { abortError, codeForStatus, KubeApiError, MAX_ERROR_BODY, parseStatus, readBody, withCredentialRefresh } from './responses.js';
import { API_GET_TIMEOUT_MS, API_RESPONSE_HEAD_TIMEOUT_MS } from '../net/timeouts.js';

/** What the request helpers need from a KubeClient (kept narrow so config.ts can import this file). */
/** What a change of the kubeconfig did to a client. */
export interface Reconfiguration {
  /**
   * Only credentials changed (token, client certificate, exec plugin): the
   * server and CA are the same, so what was learnt from the cluster still
   * holds. False when it may be another cluster: names known must be
   * listed again before they are trusted.
   */
  sameCluster: boolean;
}

export interface RequestSource {
  readonly contextName: string;
  readonly userName: string;
  readonly clusterServer: string;
  /** Keep-alive agent used when requestOptions() gives none. */
  readonly agent: http.Agent;
  requestOptions(method: string, path: string, headers?: Record<string, string>): Promise<https.RequestOptions>;
  invalidateCredentials(): void;
  /** Learns from every request whether the server answers (see health.ts). */
  readonly health?: ApiHealth;
  /**
   * Calls `listener` when the kubeconfig changed what this source talks to
   * (server, CA, credentials; kubeconfig-reload.ts); returns the function
   * that stops that.
   */
  onReconfigured?(listener: (change: Reconfiguration) => void): () => void;
}

export interface RequestOpts {
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
  /** Deadline for the response head. Default API_RESPONSE_HEAD_TIMEOUT_MS (30 s). */
  headersTimeoutMs?: number;
}

/**
 * Sends a request and resolves with a 2xx response (body unread). On a 401
 * the credentials are refreshed and the request sent once more; a second 401
 * becomes UNAUTHORIZED. Other non-2xx answers reject with a KubeApiError.
 */
export async function request(src: RequestSource, method: string, path: string, opts: RequestOpts = {}): Promise<http.IncomingMessage> {
  try {
    return await withCredentialRefresh(src, `${method} ${path}`, async () => {
      const res = await sendResendingOnce(src, method, path, opts);
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return res;
      const body = await readBody(res, MAX_ERROR_BODY, opts.signal).catch(() => '');
      throw statusError(src, status, body, { method, path });
    });
  } catch (err) {
    if (err instanceof KubesocksError && err.code === 'UNAUTHORIZED') src.health?.refused(err);
    throw err;
  }
}

/**
 * A keep-alive socket the server closed meanwhile (e.g. it restarted) fails
 * a request that never reached the server: sending it again is safe for GETs.
 */
async function sendResendingOnce(src: RequestSource, method: string, path: string, opts: RequestOpts): Promise<http.IncomingMessage> {
  for (let resent = false; ; resent = true) {
    try {
      return await sendOnce(src, method, path, opts);
    } catch (err) {
      if (!(err instanceof SendFailure)) throw err;
      if (resent || method !== 'GET' || !err.reusedSocket) throw err.error;
    }
  }
}

/** Why sendOnce failed before any answer, and whether it was on a kept-alive socket. */
class SendFailure extends Error {
  readonly error: KubesocksError;
  readonly reusedSocket: boolean;

  constructor(error: KubesocksError, reusedSocket: boolean) {
    super(error.message, { cause: error });
    this.name = 'SendFailure';
    this.error = error;
    this.reusedSocket = reusedSocket;
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
        const report = src.health?.begin();
        let settled = false;
        const timer = setTimeout(() => {
          req.destroy(new KubesocksError('TIMEOUT', `the API server ${src.clusterServer} did not answer ${method} ${path} in time`));
        }, opts.headersTimeoutMs ?? API_RESPONSE_HEAD_TIMEOUT_MS);
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
          // Any answer proves the server reachable; a 401 is judged by request() after its one refresh.
          report?.answered();
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
          if (signal?.aborted || req.reusedSocket) report?.abandoned();
          else report?.failed(err instanceof KubesocksError ? err : networkError(src, err));
          if (err instanceof KubesocksError) reject(err);
          else reject(new SendFailure(networkError(src, err), req.reusedSocket));
        });
        req.end();
      }),
  );
}

/** GET a path and parse its JSON body (see request()). */
export interface GetOptions {
  signal?: AbortSignal | undefined;
  /** Bounds the whole exchange, body included. Default API_GET_TIMEOUT_MS (60 s). */
  timeoutMs?: number | undefined;
}

export async function getJSON<T>(src: RequestSource, path: string, options: GetOptions = {}): Promise<T> {
  const { signal, timeoutMs = API_GET_TIMEOUT_MS } = options;
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

/** Maps an API answer (status and body) to a KubeApiError with the server's message. */
export function statusError(src: RequestSource, status: number, body: string, request: { method: string; path: string; fromWatchEvent?: boolean }): KubeApiError {
  const { method, path } = request;
  const kubeStatus = parseStatus(body);
  const message = kubeStatus?.message || `${method} ${path}: HTTP ${status}`;
  const code = codeForStatus(status, message, 'api');
  const options = { status, kubeStatus, fromWatchEvent: request.fromWatchEvent ?? false };
  switch (code) {
    case 'UNAUTHORIZED':
      return new KubeApiError(
        code,
        `the API server rejected the credentials of context "${src.contextName}"` +
          (src.userName ? ` (user "${src.userName}")` : '') +
          ` even after refreshing them (${message}): log in again or fix the kubeconfig`,
        options,
      );
    case 'FORBIDDEN':
    case 'NOT_FOUND':
      return new KubeApiError(code, message, options);
    default:
      return new KubeApiError(code, `the API server ${src.clusterServer} answered ${method} ${path} with HTTP ${status}: ${message}`, options);
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
      { signal: opts.signal, timeoutMs: opts.timeoutMs ?? API_GET_TIMEOUT_MS },
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
