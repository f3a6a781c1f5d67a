/**
 * One log line per interval instead of one per event: the first event of a
 * quiet period is told at once (so a person sees it when it starts), later
 * ones are counted and told as one line when the interval ends. Keyed, so
 * that e.g. each client address gets its own count.
 */
export interface SummaryTotals<E> {
  key: string;
  /** Events after the first one of the interval (the first was told at once). */
  count: number;
  /** The last event counted. */
  last: E;
  intervalMs: number;
}

export class IntervalSummary<E> {
  readonly #intervalMs: number;
  readonly #first: (event: E, key: string) => void;
  readonly #summary: (totals: SummaryTotals<E>) => void;
  readonly #open = new Map<string, { count: number; last: E; timer: NodeJS.Timeout }>();

  constructor(intervalMs: number, first: (event: E, key: string) => void, summary: (totals: SummaryTotals<E>) => void) {
    this.#intervalMs = intervalMs;
    this.#first = first;
    this.#summary = summary;
  }

  note(event: E, key = ''): void {
    const open = this.#open.get(key);
    if (open) {
      open.count++;
      open.last = event;
      return;
    }
    const timer = setTimeout(() => this.#flush(key), this.#intervalMs);
    timer.unref();
    this.#open.set(key, { count: 0, last: event, timer });
    this.#first(event, key);
  }

  /** Tells what is counted now and stops (for shutdown). */
  close(): void {
    for (const key of [...this.#open.keys()]) this.#flush(key);
  }

  #flush(key: string): void {
    const open = this.#open.get(key);
    if (!open) return;
    clearTimeout(open.timer);
    this.#open.delete(key);
    if (open.count > 0) this.#summary({ key, count: open.count, last: open.last, intervalMs: this.#intervalMs });
  }
}
