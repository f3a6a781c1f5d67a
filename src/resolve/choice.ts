/**
 * Which ready endpoint to use first: the least recently used one, so
 * successive connections spread round-robin over the pods (kubectl's
 * `port-forward svc/x` pins one pod for its lifetime; a proxy serving many
 * connections should not). An endpoint reported 'refused' or 'gone' goes to
 * the back of the line for `avoidMs`, but is still offered when nothing else
 * is left (a pod that refused one port may serve another, and a stale report
 * must not turn into a hard failure).
 */
import { LRUCache } from 'lru-cache';

export interface ChoosableEndpoint {
  namespace: string;
  pod: string;
}

export type Outcome = 'ok' | 'refused' | 'gone';

function key(ep: ChoosableEndpoint): string {
  return `${ep.namespace}/${ep.pod}`;
}

export class EndpointChooser {
  /** Pod → a use counter value (larger = used more recently). Bounded so pod churn cannot grow it. */
  readonly #lastUsed: LRUCache<string, number>;
  /** Pods recently reported refused/gone; entries expire after avoidMs. */
  readonly #avoid: LRUCache<string, Outcome>;
  #seq = 0;

  constructor(opts: { avoidMs?: number; max?: number } = {}) {
    const max = opts.max ?? 10_000;
    this.#lastUsed = new LRUCache<string, number>({ max });
    this.#avoid = new LRUCache<string, Outcome>({ max, ttl: Math.max(1, opts.avoidMs ?? 10_000) });
  }

  /**
   * `eps` in preferred order: not avoided before avoided, then least
   * recently used, then by name. The first one is marked as used.
   */
  order<E extends ChoosableEndpoint>(eps: E[]): E[] {
    const rank = eps.map((ep) => {
      const k = key(ep);
      return { ep, avoided: this.#avoid.has(k) ? 1 : 0, used: this.#lastUsed.peek(k) ?? 0, k };
    });
    rank.sort((a, b) => a.avoided - b.avoided || a.used - b.used || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
    const first = rank[0];
    if (first) this.#lastUsed.set(first.k, ++this.#seq);
    return rank.map((r) => r.ep);
  }

  report(ep: ChoosableEndpoint, outcome: Outcome): void {
    const k = key(ep);
    if (outcome === 'ok') {
      this.#avoid.delete(k);
      this.#lastUsed.set(k, ++this.#seq);
    } else {
      this.#avoid.set(k, outcome);
    }
  }

  isAvoided(ep: ChoosableEndpoint): boolean {
    return this.#avoid.has(key(ep));
  }
}
