/**
 * Whether the API server answers, as learnt from every request made to it —
 * so that deciding where a name goes never waits on an API server that is
 * down (refused) or frozen (a black hole, as when a VPN drops), and cluster
 * names fail at once with one line naming the server.
 *
 * Any HTTP answer proves the server reachable (403 and 404 too); a 401 that
 * survived a credential refresh means the credentials are refused; a network
 * failure, or no answer within ANSWER_BOUND_MS, means unreachable.
 */
import { EventEmitter } from 'node:events';
import { KubesocksError } from '../errors.js';

export type ApiState = 'unknown' | 'ok' | 'unreachable' | 'unauthorized';

/** A request without any answer for this long marks the server unreachable (it may still answer later). */
export const ANSWER_BOUND_MS = 2000;

export interface ApiHealthEvents {
  change: [state: ApiState];
}

/** One request's report to the health: exactly one of its methods is called. */
export interface RequestReport {
  /** The server answered (any HTTP status). */
  answered(unauthorized?: KubesocksError): void;
  /** The request failed without an answer (network, TLS, timeout). */
  failed(error: KubesocksError): void;
  /** The caller gave up: says nothing about the server, unless the bound passed first. */
  abandoned(): void;
}

export class ApiHealth extends EventEmitter<ApiHealthEvents> {
  #server: string;
  /** Counts reconfigurations: a request sent before one says nothing about the server now. */
  #generation = 0;
  readonly contextName: string;
  #state: ApiState = 'unknown';
  #reason: KubesocksError | undefined;
  #since = Date.now();

  constructor(server: string, contextName: string) {
    super();
    // Every lookup waiting on the API server listens for it turning
    // unreachable (a browser page opens dozens at once): not a leak.
    this.setMaxListeners(0);
    this.#server = server;
    this.contextName = contextName;
  }

  /** The API server's URL, as the kubeconfig has it. */
  get server(): string {
    return this.#server;
  }

  /**
   * The kubeconfig now points the context elsewhere (or at the same server
   * with other credentials): what was learnt no longer holds. Lookups waiting
   * out an unreachable server hear `change` and ask again.
   */
  reconfigured(server: string): void {
    this.#server = server;
    this.#generation++;
    this.#set('unknown', undefined);
  }

  get state(): ApiState {
    return this.#state;
  }

  /** Why it is unreachable or unauthorized. */
  get reason(): KubesocksError | undefined {
    return this.#reason;
  }

  /** When the state last changed (ms since the epoch). */
  get since(): number {
    return this.#since;
  }

  /** True when requests cannot get an answer now: do not wait on them. */
  get unreachable(): boolean {
    return this.#state === 'unreachable';
  }

  /** Starts watching one request. */
  begin(): RequestReport {
    const generation = this.#generation;
    let done = false;
    const bound = setTimeout(() => {
      if (!done && generation === this.#generation) this.#set('unreachable', new KubesocksError('TIMEOUT', `no answer within ${ANSWER_BOUND_MS / 1000} s`));
    }, ANSWER_BOUND_MS);
    bound.unref();
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      clearTimeout(bound);
      return generation === this.#generation;
    };
    return {
      answered: (unauthorized) => {
        if (finish()) this.#set(unauthorized ? 'unauthorized' : 'ok', unauthorized);
      },
      failed: (error) => {
        if (finish()) this.#set('unreachable', error);
      },
      abandoned: () => {
        finish();
      },
    };
  }

  /** The server refused the credentials even after one refresh. */
  refused(error: KubesocksError): void {
    this.#set('unauthorized', error);
  }

  /**
   * The one line a cluster name fails with while the server cannot be
   * reached: which server, why, and what to do. `leadIn` says first what
   * else is known of the name (e.g. that public DNS does not have it).
   */
  unreachableError(leadIn = ''): KubesocksError {
    const prefix = `cannot reach the API server ${this.server} of context "${this.contextName}": `;
    const reason = this.#reason?.message.startsWith(prefix) ? this.#reason.message.slice(prefix.length) : this.#reason?.message;
    const why = reason ? `: ${reason}` : '';
    return new KubesocksError(
      'API_UNREACHABLE',
      `${leadIn}cannot reach the API server ${this.server} of context "${this.contextName}"${why} — check that the cluster is up and your network/VPN; outside hosts keep working and kubesocks retries`,
      { cause: this.#reason },
    );
  }

  #set(state: ApiState, reason: KubesocksError | undefined): void {
    this.#reason = state === 'ok' ? undefined : reason;
    if (state === this.#state) return;
    this.#state = state;
    this.#since = Date.now();
    this.emit('change', state);
  }
}
