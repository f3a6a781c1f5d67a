/**
 * The HTTPS upgrade that turns a request to the API server into a SPDY
 * connection to one pod (the same request `kubectl port-forward` sends):
 *
 *   POST /api/v1/namespaces/NS/pods/NAME/portforward
 *   Connection: Upgrade
 *   Upgrade: SPDY/3.1
 *   X-Stream-Protocol-Version: portforward.k8s.io
 *
 * Success is 101 with the same three headers (client-go checks all three,
 * case-insensitively). Anything else carries a Status body whose message is
 * what the user needs to see (read and mapped to a code by kube/responses.ts).
 */
import * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { KubesocksError } from '../errors.js';
import type { ApiHealth } from '../kube/health.js';
import { codeForStatus, MAX_ERROR_BODY, readBody, statusMessage, withCredentialRefresh } from '../kube/responses.js';
import { UPGRADE_TIMEOUT_MS } from '../net/timeouts.js';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

/** What the upgrade needs from the kubeconfig (implemented by KubeClient). */
export interface UpgradeCredentials {
  readonly contextName: string;
  requestOptions(method: string, path: string, headers?: Record<string, string>): Promise<https.RequestOptions>;
  invalidateCredentials(): void;
  /**
   * The keep-alive agent of the client's own API requests. The upgrade goes
   * through it so it can reuse a TLS connection the name lookups just left
   * idle (saving the TLS round trip on a remote cluster); the upgraded socket
   * then leaves the agent (Node removes it on 'upgrade').
   */
  readonly agent?: https.Agent;
  /** Told whether the API server answered (kube/health.ts); its line names the server when it did not. */
  readonly health?: ApiHealth;
}

export interface UpgradeOptions {
  namespace: string;
  pod: string;
  /** Abandon the upgrade after this long (ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function upgradeToPortForward(credentials: UpgradeCredentials, options: UpgradeOptions): Promise<Duplex> {
  return withCredentialRefresh(credentials, `port-forward ${options.namespace}/${options.pod}`, () => attempt(credentials, options));
}

function attempt(credentials: UpgradeCredentials, options: UpgradeOptions): Promise<Duplex> {
  const { namespace, pod } = options;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward`;
  return credentials
    .requestOptions('POST', path, {
      Connection: 'Upgrade',
      Upgrade: 'SPDY/3.1',
      'X-Stream-Protocol-Version': PORT_FORWARD_PROTOCOL,
    })
    .then(
      (requestOptions) =>
        new Promise<Duplex>((resolve, reject) => {
          const target = `${namespace}/${pod}`;
          let settled = false;
          const report = credentials.health?.begin();
          const settle = (error: KubesocksError | null, socket?: Duplex): void => {
            if (settled) {
              socket?.destroy();
              return;
            }
            if (error?.code === 'CLOSED') report?.abandoned();
            else if (error?.code === 'TIMEOUT') report?.failed(error);
            else if (!error || !unanswered) report?.answered();
            settled = true;
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', onAbort);
            if (error) reject(error);
            else resolve(socket!);
          };
          const request = https.request({ ...requestOptions, agent: requestOptions.agent ?? credentials.agent, timeout: undefined, signal: undefined });
          const onAbort = (): void => {
            request.destroy();
            settle(new KubesocksError('CLOSED', `port-forward to ${target} abandoned: the client went away`));
          };
          const timeoutMs = options.timeoutMs ?? UPGRADE_TIMEOUT_MS;
          const timer = setTimeout(() => {
            request.destroy();
            settle(new KubesocksError('TIMEOUT', `port-forward upgrade for pod ${target} got no answer from the API server in ${timeoutMs / 1000} s`));
          }, timeoutMs);
          timer.unref();
          if (options.signal?.aborted) return onAbort();
          options.signal?.addEventListener('abort', onAbort, { once: true });

          request.once('upgrade', (response, socket, head) => {
            const problem = checkUpgradeResponse(response);
            if (problem) {
              socket.destroy();
              settle(new KubesocksError('UPGRADE_FAILED', `port-forward to pod ${target}: ${problem}`));
              return;
            }
            if (head.length > 0) socket.unshift(head);
            if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
            settle(null, socket);
          });
          request.once('response', (response) => {
            readBody(response, MAX_ERROR_BODY).then(
              (body) => settle(errorFromResponse(response.statusCode ?? 0, body, target, credentials.contextName)),
              () => settle(errorFromResponse(response.statusCode ?? 0, '', target, credentials.contextName)),
            );
          });
          let unanswered = false;
          request.once('error', (error: NodeJS.ErrnoException) => {
            unanswered = true;
            const failure = new KubesocksError(
              'API_UNREACHABLE',
              `cannot reach the API server of context "${credentials.contextName}" (${error.code ?? error.message}); check the cluster is up and your network/VPN`,
              { cause: error },
            );
            if (!settled) report?.failed(failure);
            // The same one line every cluster name gets while the server is unreachable.
            settle(credentials.health?.unreachable ? credentials.health.unreachableError() : failure);
          });
          request.end();
        }),
    );
}

function checkUpgradeResponse(response: IncomingMessage): string | null {
  const header = (name: string): string => String(response.headers[name] ?? '').toLowerCase();
  if (response.statusCode !== 101) return `unexpected status ${response.statusCode}`;
  if (!header('connection').split(/\s*,\s*/).includes('upgrade')) return 'the 101 answer lacks "Connection: Upgrade"';
  if (header('upgrade') !== 'spdy/3.1') return `the 101 answer upgrades to "${response.headers['upgrade'] ?? ''}", not SPDY/3.1`;
  if (header('x-stream-protocol-version') !== PORT_FORWARD_PROTOCOL) {
    return `the API server chose stream protocol "${response.headers['x-stream-protocol-version'] ?? ''}", not ${PORT_FORWARD_PROTOCOL}`;
  }
  return null;
}

export function errorFromResponse(
  status: number,
  body: string,
  target: string,
  context: string,
  forbiddenHint = 'port-forward needs RBAC "create" on pods/portforward',
): KubesocksError {
  const message = statusMessage(body) || `HTTP ${status}`;
  const code = codeForStatus(status, message, 'portforward');
  let hint = '';
  if (code === 'UNAUTHORIZED') {
    hint = ` — the credentials of context "${context}" were rejected; log in again (e.g. refresh your cloud CLI login) and retry`;
  } else if (code === 'FORBIDDEN') {
    hint = ` — ${forbiddenHint}`;
  }
  return new KubesocksError(code, `port-forward to pod ${target} failed: ${message}${hint}`);
}
