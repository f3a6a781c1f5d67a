/**
 * `kubesocks status`: asks a running proxy for `/status.json` and prints it
 * as tables (or, with `-o json`, as it came). The columns are the status
 * page's (src/proxy/status-page.ts), so the terminal and the browser agree.
 */
import { request } from 'node:http';
import type { StatusSnapshot } from '../observe/status.js';
import { formatCell, TABLES, TOTALS, type TableSpec } from '../proxy/status-page.js';
import { UsageError, parseFlags } from './flags.js';
import { resolveCredentials } from './credentials.js';
import { formatAddress, parseListen, type ListenAddress } from './listen-address.js';

export const STATUS_HELP = `Usage: kubesocks status [flags]

Prints what a running kubesocks proxy is doing: its contexts, the pods it
has port-forward connections to, the connections open now, the last
failures and totals (from http://HOST:PORT/status.json).

Flags:
  --listen HOST:PORT   the proxy to ask (default 127.0.0.1:1080)
  --auth USER:PASS     the proxy's credentials, when it runs with --auth; other local users can
                       read a command line (ps): prefer --auth-file or KUBESOCKS_AUTH=USER:PASS
  --auth-file FILE     read USER:PASS from FILE's first line (yours, chmod 600)
  -o, --output FORMAT  table (default) or json
  -h, --help           this help
`;

/** Longest cell printed; longer ones (error messages) are cut with an ellipsis. */
const MAX_CELL = 60;
/** Failures printed (the JSON has up to 50). */
const FAILURES_SHOWN = 10;
const REQUEST_TIMEOUT_MS = 10_000;

export async function status(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { values } = parseFlags(args, {
    listen: { type: 'string' },
    auth: { type: 'string' },
    'auth-file': { type: 'string' },
    output: { type: 'string', short: 'o' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    out.write(STATUS_HELP);
    return;
  }
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw new UsageError(`-o: expected "table" or "json", got "${output}"`);
  const listen = parseListen(values.listen ?? '127.0.0.1:1080');
  if (listen.port === 0) throw new UsageError('--listen: name the port the proxy listens on (0 picks a free port only when listening)');
  const auth = resolveCredentials(values);
  const body = await fetchStatus(listen, auth);
  if (output === 'json') {
    out.write(body.endsWith('\n') ? body : `${body}\n`);
    return;
  }
  let snapshot: StatusSnapshot;
  try {
    snapshot = JSON.parse(body) as StatusSnapshot;
  } catch {
    throw new Error(`${formatAddress(listen)} answered /status.json with something that is not JSON: is it a kubesocks proxy?`);
  }
  out.write(renderTables(snapshot));
}

/** GET /status.json from the proxy; the body. Failures are one line saying what to do. */
function fetchStatus(listen: ListenAddress, auth: { username: string; password: string } | undefined): Promise<string> {
  // A proxy listening on every interface is asked on loopback.
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  const address = formatAddress({ host, port: listen.port });
  const headers: Record<string, string> = { Accept: 'application/json', Host: address };
  if (auth) headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = request({ host, port: listen.port, path: '/status.json', headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode === 200) resolve(body);
        else if (res.statusCode === 401 || res.statusCode === 407) {
          reject(new Error(`the proxy on ${address} requires credentials${auth ? ' and refused these' : ''}: pass --auth-file FILE or --auth USER:PASS (or set KUBESOCKS_AUTH)`));
        } else reject(new Error(`the proxy on ${address} answered ${res.statusCode ?? '?'}: ${body.trim().split('\n')[0] ?? ''}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`the proxy on ${address} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ECONNREFUSED') reject(new Error(`no kubesocks proxy answers on ${address}: start one with "kubesocks", or pass --listen HOST:PORT of the running one`));
      else reject(new Error(`asking ${address} for its status failed: ${err.message}`));
    });
    req.end();
  });
}

const cut = (text: string): string => (text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text);

/** Columns padded to their widest cell; numbers right-aligned. */
function table(spec: TableSpec, rows: ReadonlyArray<Record<string, unknown>>): string {
  const header = spec.columns.map((c) => c.label.toUpperCase());
  if (rows.length === 0) return `${spec.title}: ${spec.empty}\n`;
  const cells = rows.map((row) => spec.columns.map((c) => formatCell(row[c.key], c.format)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => cut(r[i]?.text ?? '').length)));
  const line = (texts: string[], right: boolean[]): string =>
    texts
      .map((t, i) => (right[i] ? t.padStart(widths[i] ?? 0) : t.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const right = spec.columns.map((c) => c.format === 'number' || c.format === 'bytes' || c.format === 'duration');
  const lines = [line(header, right), ...cells.map((r) => line(r.map((c) => cut(c.text)), right))];
  return `${spec.title}:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

export function renderTables(snapshot: StatusSnapshot): string {
  const parts = [
    `kubesocks ${snapshot.version} on ${snapshot.listen}, transport ${snapshot.transport}, up since ${snapshot.startedAt.slice(0, 19).replace('T', ' ')} UTC\n`,
  ];
  for (const spec of TABLES) {
    let rows = snapshot[spec.source] as unknown as Array<Record<string, unknown>>;
    if (spec.source === 'failures') rows = rows.slice(0, FAILURES_SHOWN);
    parts.push(table(spec, rows));
  }
  parts.push(`Totals: ${TOTALS.map((t) => `${formatCell(snapshot.totals[t.key], t.format).text} ${t.label}`).join(', ')}\n`);
  return parts.join('\n');
}
