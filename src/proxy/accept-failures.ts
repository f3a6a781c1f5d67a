/**
 * Failures of the listener's accept(): EMFILE/ENFILE (out of file
 * descriptors) is the one that happens — under a flood, or with a low
 * `ulimit -n`. Node reports each as an 'error' on the server; there can be
 * thousands per second, so they are told once per interval, with what to do.
 * While the process is at its limit libuv closes connections waiting in the
 * kernel's queue (its "EMFILE trick", https://github.com/libuv/libuv/blob/v1.x/src/unix/stream.c),
 * so the advice matters.
 */
import { readFileSync } from 'node:fs';
import { KubesocksError } from '../errors.js';
import { IntervalSummary } from './interval-summary.js';

export const ACCEPT_SUMMARY_INTERVAL_MS = 10_000;

/** The soft limit on open files, from /proc (Linux); undefined elsewhere. */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
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

  constructor(report: (err: KubesocksError) => void, intervalMs = ACCEPT_SUMMARY_INTERVAL_MS) {
    this.#summary = new IntervalSummary<NodeJS.ErrnoException>(
      intervalMs,
      (err) => report(new KubesocksError('LISTEN_FAILED', describe(err), { cause: err })),
      ({ count, last, intervalMs: ms }) =>
        report(new KubesocksError('LISTEN_FAILED', `${describe(last)} (${count} more time${count === 1 ? '' : 's'} in the last ${Math.round(ms / 1000)} s)`, { cause: last })),
    );
  }

  note(err: NodeJS.ErrnoException): void {
    this.#summary.note(err, err.code ?? 'other');
  }

  close(): void {
    this.#summary.close();
  }
}
