/**
 * What the API server's answers mean, in one place for every request
 * kubesocks sends (GETs and lists in api.ts, watches, the port-forward
 * upgrade in tunnel/upgrade.ts): reading a body, the `Status` object inside
 * it, one credential refresh on 401, and the status → error code table.
 * Messages are the server's own text: that is what kubectl prints, and what
 * tells a user which RBAC rule is missing.
 */
import type * as http from 'node:http';
import { debuglog } from 'node:util';
import { firstLine, KubesocksError, type ErrorCode } from '../errors.js';

const debug = debuglog('kubesocks:kube');

/** How much of an error body is read (a Status is small; a proxy's HTML page need not be kept whole). */
export const MAX_ERROR_BODY = 64 * 1024;

/** A Kubernetes `Status` object (the body of every API error). */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export interface KubeApiErrorOptions {
  /** The HTTP status (or the `code` of a watch ERROR event). */
  status: number;
  /** The Status object the server sent, if any: the error's `cause`. */
  kubeStatus?: KubeStatus | null | undefined;
  /** The answer came as an ERROR event inside a watch, not as an HTTP status. */
  fromWatchEvent?: boolean;
}

/** A non-2xx answer from the API server. `status` is the HTTP status; `reason` the Status reason, if any. */
export class KubeApiError extends KubesocksError {
  readonly status: number;
  readonly reason: string | undefined;
  readonly fromWatchEvent: boolean;

  constructor(code: ErrorCode, message: string, options: KubeApiErrorOptions) {
    super(code, message, options.kubeStatus ? { cause: options.kubeStatus } : undefined);
    this.name = 'KubeApiError';
    this.status = options.status;
    this.reason = options.kubeStatus?.reason;
    this.fromWatchEvent = options.fromWatchEvent ?? false;
  }
}

/** The Status object of a body, or null if it is not one. */
export function parseStatus(body: string): KubeStatus | null {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object' && (parsed as KubeStatus).kind === 'Status') return parsed as KubeStatus;
  } catch {
    // Not JSON: a proxy's HTML page, or nothing.
  }
  return null;
}

/** The Status message if the body is one, else the body's first line ('' for an empty body). */
export function statusMessage(body: string): string {
  const status = parseStatus(body);
  if (status) return typeof status.message === 'string' ? status.message : '';
  return firstLine(body);
}

/** What was asked for: the same status means different things for an API call and for a pod's port-forward. */
export type RequestPurpose = 'api' | 'portforward';

/**
 * The one status → code table. 401 and 403 mean the same everywhere; a 404
 * of the upgrade means the pod went away after it was chosen; the kubelet's
 * answers for a pod without a running sandbox (400 "not running"/"no host
 * assigned"/"pending", 500 `pod not found ("NAME_NS")`) mean the pod is not
 * running; an overloaded or failing server (429, 5xx) is unreachable for
 * practical purposes.
 */
export function codeForStatus(status: number, message: string, purpose: RequestPurpose): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (purpose === 'api') return status === 404 ? 'NOT_FOUND' : 'API_UNREACHABLE';
  if (status === 404) return 'POD_GONE';
  if ((status === 400 && /not running|host assigned|pending/i.test(message)) || (status === 500 && /pod not found/i.test(message))) return 'POD_NOT_RUNNING';
  if (status === 429 || status >= 500) return 'API_UNREACHABLE';
  return 'UPGRADE_FAILED';
}

/** What a 401 refresh needs (a KubeClient). */
export interface RefreshableCredentials {
  invalidateCredentials(): void;
}

/**
 * Runs `attempt`; when it fails with UNAUTHORIZED (an exec token or a
 * short-lived token file may have expired) the credentials are refreshed and
 * it runs once more, as client-go's credential plugins do. Then the error stands.
 */
export async function withCredentialRefresh<T>(credentials: RefreshableCredentials, what: string, attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (!(error instanceof KubesocksError) || error.code !== 'UNAUTHORIZED') throw error;
    debug('401 from %s: refreshing credentials once', what);
    credentials.invalidateCredentials();
    return attempt();
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

/** The error for an aborted request: the signal's reason if it is a KubesocksError, else TIMEOUT/CLOSED. */
export function abortError(signal: AbortSignal | undefined): KubesocksError {
  const reason: unknown = signal?.reason;
  if (reason instanceof KubesocksError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new KubesocksError('TIMEOUT', 'the request to the API server timed out', { cause: reason });
  }
  return new KubesocksError('CLOSED', 'the request was abandoned', { cause: reason });
}
