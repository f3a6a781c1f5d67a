/**
 * The status page (`/` on the proxy port): one self-contained HTML document,
 * rendered on the server from a snapshot (so it works without JavaScript)
 * and then kept live by a small script that polls `/status.json` and
 * re-renders the same tables from the same column list.
 *
 * Content-Security-Policy: nothing may load but the page itself; the one
 * inline style and the one inline script are allowed by their SHA-256
 * hashes (CSP3 §8.3, https://www.w3.org/TR/CSP3/#external-hash), and the
 * script may fetch from its own origin only. Everything that came from a
 * client (targets, addresses) or a peer (error messages) is escaped here
 * and set with textContent by the script: never parsed as HTML.
 */
import { createHash } from 'node:crypto';
import type { StatusSnapshot } from '../observe/status.js';
import { statusScript } from './status-script.js';

/** How a cell's value is shown; the script implements the same formats (status-script.ts). */
export type CellFormat = 'text' | 'message' | 'number' | 'bytes' | 'duration' | 'time' | 'reach' | 'error' | 'list';

export interface Column {
  key: string;
  label: string;
  format: CellFormat;
}

export interface TableSpec {
  /** The snapshot's list this table shows. */
  source: 'contexts' | 'pods' | 'connections' | 'failures';
  title: string;
  /** Shown in a single row when the list is empty. */
  empty: string;
  columns: Column[];
}

export const TABLES: readonly TableSpec[] = [
  {
    source: 'contexts',
    title: 'Contexts',
    empty: 'no kubeconfig context',
    columns: [
      { key: 'name', label: 'Context', format: 'text' },
      { key: 'server', label: 'API server', format: 'text' },
      { key: 'user', label: 'User', format: 'text' },
      { key: 'reachable', label: 'Reachable', format: 'reach' },
      { key: 'lastError', label: 'Last error', format: 'error' },
      { key: 'namespaces', label: 'Namespaces watched', format: 'list' },
    ],
  },
  {
    source: 'pods',
    title: 'Pods',
    empty: 'no port-forward connection yet',
    columns: [
      { key: 'context', label: 'Context', format: 'text' },
      { key: 'namespace', label: 'Namespace', format: 'text' },
      { key: 'pod', label: 'Pod', format: 'text' },
      { key: 'transport', label: 'Transport', format: 'text' },
      { key: 'connections', label: 'Connections', format: 'number' },
      { key: 'socketsOpen', label: 'Sockets open', format: 'number' },
      { key: 'socketsTotal', label: 'Sockets total', format: 'number' },
      { key: 'bytesUp', label: 'Bytes up', format: 'bytes' },
      { key: 'bytesDown', label: 'Bytes down', format: 'bytes' },
      { key: 'ageMs', label: 'Age', format: 'duration' },
      { key: 'lastError', label: 'Last error', format: 'error' },
    ],
  },
  {
    source: 'connections',
    title: 'Open connections',
    empty: 'no connection open',
    columns: [
      { key: 'client', label: 'Client', format: 'text' },
      { key: 'protocol', label: 'Protocol', format: 'text' },
      { key: 'target', label: 'Target', format: 'text' },
      { key: 'via', label: '→ Pod', format: 'text' },
      { key: 'bytesUp', label: 'Bytes up', format: 'bytes' },
      { key: 'bytesDown', label: 'Bytes down', format: 'bytes' },
      { key: 'durationMs', label: 'Duration', format: 'duration' },
    ],
  },
  {
    source: 'failures',
    title: 'Recent failures',
    empty: 'no failure',
    columns: [
      { key: 'time', label: 'Time (UTC)', format: 'time' },
      { key: 'protocol', label: 'Protocol', format: 'text' },
      { key: 'client', label: 'Client', format: 'text' },
      { key: 'target', label: 'Target', format: 'text' },
      { key: 'code', label: 'Code', format: 'text' },
      { key: 'message', label: 'Reason', format: 'message' },
    ],
  },
];

/** The totals strip: label and how to show each value of `snapshot.totals`. */
export const TOTALS: ReadonlyArray<{ key: keyof StatusSnapshot['totals']; label: string; format: CellFormat }> = [
  { key: 'open', label: 'open', format: 'number' },
  { key: 'connections', label: 'connections', format: 'number' },
  { key: 'failed', label: 'failed', format: 'number' },
  { key: 'bytesUp', label: 'up', format: 'bytes' },
  { key: 'bytesDown', label: 'down', format: 'bytes' },
  { key: 'poolConnections', label: 'pod connections', format: 'number' },
  { key: 'upgrades', label: 'upgrades', format: 'number' },
  { key: 'failovers', label: 'failovers', format: 'number' },
  { key: 'keepaliveFailures', label: 'keepalive failures', format: 'number' },
  { key: 'watchRelists', label: 'relists', format: 'number' },
];

/** Poll interval of the page's script: a new connection shows within a second. */
export const POLL_MS = 500;

const STYLE = `
:root { color-scheme: light dark; --bg: #fbfbfc; --fg: #1d2430; --muted: #5c6675; --line: #dde2e8; --head: #eef1f5; --ok: #1a7f37; --bad: #c62828; --accent: #2f5fb3; }
@media (prefers-color-scheme: dark) { :root { --bg: #13161b; --fg: #e3e7ee; --muted: #98a2b3; --line: #2c323c; --head: #1c2129; --ok: #4ac26b; --bad: #ff6b6b; --accent: #7aa7ff; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem 1.5rem 2rem; background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; margin-bottom: .75rem; }
h1 { font-size: 1.35rem; margin: 0; }
h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
.meta, .muted { color: var(--muted); }
#live { font-weight: 600; color: var(--muted); }
#live.on { color: var(--ok); }
#live.off { color: var(--bad); }
.totals { display: flex; flex-wrap: wrap; gap: .5rem; margin: 0; padding: 0; list-style: none; }
.totals li { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .7rem; background: var(--head); }
.totals b { font-variant-numeric: tabular-nums; margin-right: .3rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td.n { text-align: right; white-space: nowrap; }
td.empty { color: var(--muted); font-style: italic; }
td.ok { color: var(--ok); font-weight: 600; }
td.bad, td.err { color: var(--bad); }
td.err { max-width: 20rem; overflow: hidden; text-overflow: ellipsis; }
td.msg { max-width: 34rem; overflow: hidden; text-overflow: ellipsis; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .92em; }
a { color: var(--accent); }
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

const SCRIPT = statusScript({ tables: TABLES, totals: TOTALS, pollMs: POLL_MS });

/** The page's Content-Security-Policy: its own style and script by hash, fetches to itself, nothing else. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** A cell's text and class, exactly as the script computes them. */
export function formatCell(value: unknown, format: CellFormat): { text: string; cls: string } {
  switch (format) {
    case 'number':
      return { text: typeof value === 'number' ? String(value) : '—', cls: 'n' };
    case 'bytes':
      return { text: typeof value === 'number' ? formatBytes(value) : '—', cls: 'n' };
    case 'duration':
      return { text: typeof value === 'number' ? formatDuration(value) : '—', cls: 'n' };
    case 'time':
      return { text: typeof value === 'string' ? value.slice(11, 19) : '—', cls: '' };
    case 'reach':
      return value === true ? { text: 'yes', cls: 'ok' } : value === false ? { text: 'no', cls: 'bad' } : { text: 'unknown', cls: '' };
    case 'error': {
      const error = value as { code?: string; message?: string } | null;
      return error ? { text: `${error.code ?? ''}: ${error.message ?? ''}`, cls: 'err' } : { text: '—', cls: '' };
    }
    case 'list':
      return { text: Array.isArray(value) && value.length > 0 ? value.join(', ') : '—', cls: '' };
    case 'message':
      return { text: typeof value === 'string' && value !== '' ? value : '—', cls: 'msg' };
    default:
      return { text: value === null || value === undefined || value === '' ? '—' : String(value), cls: '' };
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.floor(s);
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${whole % 60}s`;
  return `${Math.floor(whole / 3600)}h ${Math.floor((whole % 3600) / 60)}m`;
}

function renderTable(spec: TableSpec, rows: ReadonlyArray<Record<string, unknown>>): string {
  const head = spec.columns.map((c) => `<th scope="col">${escapeHtml(c.label)}</th>`).join('');
  const body =
    rows.length === 0
      ? `<tr><td class="empty" colspan="${spec.columns.length}">${escapeHtml(spec.empty)}</td></tr>`
      : rows
          .map((row) => {
            const cells = spec.columns.map((c) => {
              const { text, cls } = formatCell(row[c.key], c.format);
              // Long messages are cut to one line on screen; the whole text is the tooltip.
              const title = cls === 'err' || cls === 'msg' ? ` title="${escapeHtml(text)}"` : '';
              return `<td${cls ? ` class="${cls}"` : ''}${title}>${escapeHtml(text)}</td>`;
            });
            return `<tr>${cells.join('')}</tr>`;
          })
          .join('');
  return `<section><h2 id="h-${spec.source}">${escapeHtml(spec.title)} <span class="muted" data-count="${spec.source}">(${rows.length})</span></h2><div class="scroll"><table data-table="${spec.source}" aria-labelledby="h-${spec.source}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div></section>`;
}

function renderTotals(snapshot: StatusSnapshot): string {
  return TOTALS.map((t) => `<li><b data-total="${t.key}">${escapeHtml(formatCell(snapshot.totals[t.key], t.format).text)}</b>${escapeHtml(t.label)}</li>`).join('');
}

/** The whole document for one snapshot. */
export function renderStatusPage(snapshot: StatusSnapshot): string {
  const tables = TABLES.map((spec) => renderTable(spec, snapshot[spec.source] as unknown as Array<Record<string, unknown>>)).join('\n');
  const meta = `kubesocks ${snapshot.version} · listening on ${snapshot.listen} · transport ${snapshot.transport}${snapshot.auth ? ' · credentials required' : ''} · up since ${snapshot.startedAt.slice(0, 19).replace('T', ' ')} UTC`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>kubesocks status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>kubesocks</h1>
<span class="meta" id="meta">${escapeHtml(meta)}</span>
<span id="live" title="updated at ${escapeHtml(snapshot.now)}">snapshot at <time id="updated">${escapeHtml(snapshot.now.slice(11, 19))}</time> UTC</span>
</header>
<noscript><p class="muted">A snapshot: reload to refresh (with JavaScript the page updates itself). The same data for scripts: <a href="/status.json">/status.json</a>.</p></noscript>
<ul class="totals" id="totals">${renderTotals(snapshot)}</ul>
<main>
${tables}
</main>
<p class="muted">For scripts: <a href="/status.json">/status.json</a> · Prometheus: <a href="/metrics">/metrics</a></p>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
