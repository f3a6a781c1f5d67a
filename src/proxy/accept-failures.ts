/**
 * The listener's troubles with the open-file limit, told once per interval
 * with what to do (each can happen thousands of times a second):
 *
 * - client sockets closed at once to keep descriptors for the process's own
 *   connections (descriptor-budget.ts);
 * - accept() failing (EMFILE/ENFILE), which Node reports as an 'error' on the
 *   server only when libuv's own remedy (closing waiting connections) failed.
 */
import { KubesocksError } from '../errors.js';
import { openFilesLimit } from './descriptor-budget.js';
import { IntervalSummary } from './interval-summary.js';

export const ACCEPT_SUMMARY_INTERVAL_MS = 10_000;

/** What a closed-at-once socket tells: how full the descriptor table is. */
export interface DescriptorShortage {
  inUse: number;
  limit: number;
  reserve: number;
}

function describeShortage({ inUse, limit, reserve }: DescriptorShortage): string {
  return (
    `closing new connections at once: ${inUse} of this process's ${limit} file descriptors (ulimit -n) are in use and ${reserve} are kept ` +
    `for its own connections to the cluster. Raise the limit before starting kubesocks (ulimit -n 65536), or close idle clients`
  );
}

function describe(err: NodeJS.ErrnoException): string {
  if (err.code === 'EMFILE' || err.code === 'ENFILE') {
    const limit = openFilesLimit();
    const scope = err.code === 'EMFILE' ? `this process has too many open files${limit !== undefined ? ` (limit ${limit})` : ''}` : 'the system has too many open files';
    return `cannot accept new connections: ${scope} (${err.code}); connections beyond it wait or are dropped. Raise the limit before starting kubesocks (ulimit -n 65536), or close idle clients`;
  }
  return `cannot accept new connections: ${err.message}`;
}

export class AcceptFailures {
  readonly #summary: IntervalSummary<NodeJS.ErrnoException>;
  readonly #drops: IntervalSummary<DescriptorShortage>;

  constructor(report: (err: KubesocksError) => void, intervalMs = ACCEPT_SUMMARY_INTERVAL_MS) {
    this.#summary = new IntervalSummary<NodeJS.ErrnoException>(
      intervalMs,
      (err) => report(new KubesocksError('LISTEN_FAILED', describe(err), { cause: err })),
      ({ count, last, intervalMs: ms }) =>
        report(new KubesocksError('LISTEN_FAILED', `${describe(last)} (${count} more time${count === 1 ? '' : 's'} in the last ${Math.round(ms / 1000)} s)`, { cause: last })),
    );
    this.#drops = new IntervalSummary<DescriptorShortage>(
      intervalMs,
      (shortage) => report(new KubesocksError('OVERLOADED', describeShortage(shortage))),
      ({ count, last, intervalMs: ms }) =>
        report(new KubesocksError('OVERLOADED', `${describeShortage(last)} (${count} more closed in the last ${Math.round(ms / 1000)} s)`)),
    );
  }

  /** A client socket closed at once: the descriptors left were the reserve. */
  closedForShortage(shortage: DescriptorShortage): void {
    this.#drops.note(shortage);
  }

  note(err: NodeJS.ErrnoException): void {
    this.#summary.note(err, err.code ?? 'other');
  }

  close(): void {
    this.#summary.close();
    this.#drops.close();
  }
}
