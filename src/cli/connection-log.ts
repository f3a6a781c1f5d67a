/**
 * The connection log on stderr: failures always, every connection with -v.
 * Failures a hostile or broken local program can cause by the thousand —
 * handshakes that time out, silent sockets closed to make room, wrong proxy
 * credentials — are told once per interval and client address: the first
 * at once, then one line with the count and what to do.
 */
import type { ConnectionRecord } from '../proxy/client-connection.js';
import { IntervalSummary } from '../proxy/interval-summary.js';

export const LOG_SUMMARY_INTERVAL_MS = 10_000;

type Noisy = 'handshake' | 'auth';

const ADVICE: Record<Noisy, string> = {
  handshake: 'a local program opens connections to the proxy and does not complete a handshake (a port scanner, or a client not speaking SOCKS or HTTP to it)',
  auth: 'a local program presents wrong proxy credentials; its attempts are slowed down. Check which program uses the proxy (ss -tnp)',
};

export function formatRecord(record: ConnectionRecord): string {
  const target = record.target ?? '(no target)';
  const route = record.via ? ` via ${record.via}` : '';
  const traffic = `up ${record.bytesUp} B, down ${record.bytesDown} B, ${Math.round(record.durationMs)} ms`;
  if (record.error) return `${record.client} ${record.protocol} ${target}${route} failed [${record.error.code}]: ${record.error.message}`;
  return `${record.client} ${record.protocol} ${target}${route} (${traffic})`;
}

/** The client's address without its port: `127.0.0.1`, `[::1]`. */
export function clientAddress(client: string): string {
  return client.replace(/:\d+$/, '');
}

function noisyKind(record: ConnectionRecord): Noisy | undefined {
  const code = record.error?.code;
  if (code === 'PROXY_AUTH') return 'auth';
  if (record.target === null && (code === 'TIMEOUT' || code === 'OVERLOADED')) return 'handshake';
  return undefined;
}

export class ConnectionLog {
  readonly #verbose: boolean;
  readonly #print: (line: string) => void;
  readonly #summary: IntervalSummary<ConnectionRecord>;

  constructor(options: { verbose: boolean; print: (line: string) => void; intervalMs?: number }) {
    this.#verbose = options.verbose;
    this.#print = options.print;
    this.#summary = new IntervalSummary<ConnectionRecord>(
      options.intervalMs ?? LOG_SUMMARY_INTERVAL_MS,
      (record) => this.#print(formatRecord(record)),
      ({ key, count, intervalMs }) => {
        const [kind, address] = key.split(' ') as [Noisy, string];
        const what = kind === 'auth' ? 'failed proxy logins' : 'connections closed without a complete handshake';
        this.#print(`${address}: ${count} more ${what} in the last ${Math.round(intervalMs / 1000)} s — ${ADVICE[kind]}`);
      },
    );
  }

  record(record: ConnectionRecord): void {
    const kind = noisyKind(record);
    if (kind) {
      this.#summary.note(record, `${kind} ${clientAddress(record.client)}`);
      return;
    }
    if (this.#verbose || record.error) this.#print(formatRecord(record));
  }

  close(): void {
    this.#summary.close();
  }
}
