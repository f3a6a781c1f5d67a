/**
 * A dialer as the status page sees it: its kubeconfig context (checked with
 * a cheap `GET /version` at most every few seconds, so "reachable" is true
 * now and not only when the last watch answered) and its pool's pods.
 */
import { asKubesocksError } from '../errors.js';
import type { ClusterView, ContextInfo, PoolPod } from '../observe/observer.js';
import type { KubeClient } from '../kube/client.js';
import type { Observer } from '../observe/observer.js';
import type { Resolver } from '../resolve/resolver.js';
import type { TunnelPool } from '../tunnel/pool.js';

/** The parts of a dialer the view reads. */
export interface DialerParts {
  client: KubeClient;
  resolver: Resolver;
  pool: TunnelPool;
  observer: Observer;
}

/** A probe answer is reused this long. */
const PROBE_TTL_MS = 5_000;
/** A probe that takes longer counts as unreachable. */
const PROBE_TIMEOUT_MS = 3_000;

export class DialerView implements ClusterView {
  readonly #dialer: DialerParts;
  #probedAt = 0;
  #probing: Promise<void> | undefined;

  constructor(dialer: DialerParts) {
    this.#dialer = dialer;
  }

  async contexts(): Promise<ContextInfo[]> {
    const { client, resolver } = this.#dialer;
    await this.#probe();
    return [
      {
        name: client.contextName,
        server: client.clusterServer,
        user: client.userName,
        namespace: client.namespace,
        namespaces: resolver.watchedNamespaces(),
      },
    ];
  }

  pods(): PoolPod[] {
    return this.#dialer.pool.pods();
  }

  /** Asks the API server for /version unless it was asked lately; concurrent callers share one request. */
  #probe(): Promise<void> {
    if (Date.now() - this.#probedAt < PROBE_TTL_MS) return Promise.resolve();
    this.#probing ??= (async () => {
      const { client, observer } = this.#dialer;
      try {
        await client.getJSON('/version', { timeoutMs: PROBE_TIMEOUT_MS });
        observer.apiResult(client.contextName);
      } catch (error) {
        observer.apiResult(client.contextName, asKubesocksError(error, 'API_UNREACHABLE'));
      } finally {
        this.#probedAt = Date.now();
        this.#probing = undefined;
      }
    })();
    return this.#probing;
  }
}
