/**
 * A cap on bytes that SPDY streams hold unread, shared by every session that
 * is given the same budget (the tunnel pool gives one to the whole process).
 *
 * spdystream implements no flow control, so the only way to stop a peer
 * sending for one stream is to stop reading the whole connection — which
 * stalls every other stream on it. Letting each stream buffer a few MiB
 * first means a reader that pauses briefly does not stall its siblings; the
 * budget keeps the sum bounded when many readers pause at once.
 */
export class ReadBudget {
  readonly capBytes: number;
  #used = 0;

  constructor(capBytes: number) {
    if (!Number.isSafeInteger(capBytes) || capBytes < 0) {
      throw new TypeError(`Expected the read budget to be a non-negative integer, got ${String(capBytes)}`);
    }
    this.capBytes = capBytes;
  }

  /** Bytes held unread now, by every stream on this budget. */
  get usedBytes(): number {
    return this.#used;
  }

  get exhausted(): boolean {
    return this.#used >= this.capBytes;
  }

  /** Adds (or with a negative delta, returns) held bytes. */
  adjust(delta: number): void {
    this.#used = Math.max(0, this.#used + delta);
  }
}
