/**
 * The status page's one script, as text (its SHA-256 goes into the page's
 * Content-Security-Policy). It polls `status.json` and rebuilds the tables
 * from the column list the server rendered them with; the cell formats
 * mirror formatCell() in status-page.ts (the Chromium test compares a
 * server-rendered page with the script's rendering of the same data).
 * Values are set with textContent only: nothing a client sent is parsed as HTML.
 */
import type { CellFormat, TableSpec } from './status-page.js';

export interface ScriptConfig {
  tables: readonly TableSpec[];
  totals: ReadonlyArray<{ key: string; label: string; format: CellFormat }>;
  pollMs: number;
}

export function statusScript(config: ScriptConfig): string {
  return `
'use strict';
(function () {
  var CONFIG = ${JSON.stringify(config)};
  var UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    if (n < 1024) return n + ' B';
    var v = n / 1024, u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    return v.toFixed(1) + ' ' + UNITS[u];
  }
  function duration(ms) {
    if (ms < 1000) return Math.round(ms) + ' ms';
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    var w = Math.floor(s);
    if (w < 3600) return Math.floor(w / 60) + 'm ' + (w % 60) + 's';
    return Math.floor(w / 3600) + 'h ' + Math.floor((w % 3600) / 60) + 'm';
  }
  function cell(value, format) {
    switch (format) {
      case 'number': return { text: typeof value === 'number' ? String(value) : '\\u2014', cls: 'n' };
      case 'bytes': return { text: typeof value === 'number' ? bytes(value) : '\\u2014', cls: 'n' };
      case 'duration': return { text: typeof value === 'number' ? duration(value) : '\\u2014', cls: 'n' };
      case 'time': return { text: typeof value === 'string' ? value.slice(11, 19) : '\\u2014', cls: '' };
      case 'reach': return value === true ? { text: 'yes', cls: 'ok' } : value === false ? { text: 'no', cls: 'bad' } : { text: 'unknown', cls: '' };
      case 'error': return value ? { text: (value.code || '') + ': ' + (value.message || ''), cls: 'err' } : { text: '\\u2014', cls: '' };
      case 'list': return { text: Array.isArray(value) && value.length > 0 ? value.join(', ') : '\\u2014', cls: '' };
      case 'message': return { text: typeof value === 'string' && value !== '' ? value : '\\u2014', cls: 'msg' };
      default: return { text: value === null || value === undefined || value === '' ? '\\u2014' : String(value), cls: '' };
    }
  }
  function td(text, cls) {
    var el = document.createElement('td');
    el.textContent = text;
    if (cls) el.className = cls;
    if (cls === 'err' || cls === 'msg') el.title = text;
    return el;
  }
  function render(snapshot) {
    CONFIG.tables.forEach(function (spec) {
      var table = document.querySelector('table[data-table="' + spec.source + '"]');
      if (!table) return;
      var rows = snapshot[spec.source] || [];
      var body = document.createElement('tbody');
      if (rows.length === 0) {
        var tr = document.createElement('tr');
        var empty = td(spec.empty, 'empty');
        empty.colSpan = spec.columns.length;
        tr.appendChild(empty);
        body.appendChild(tr);
      }
      rows.forEach(function (row) {
        var tr = document.createElement('tr');
        spec.columns.forEach(function (c) {
          var v = cell(row[c.key], c.format);
          tr.appendChild(td(v.text, v.cls));
        });
        body.appendChild(tr);
      });
      table.replaceChild(body, table.tBodies[0]);
      var count = document.querySelector('[data-count="' + spec.source + '"]');
      if (count) count.textContent = '(' + rows.length + ')';
    });
    CONFIG.totals.forEach(function (t) {
      var el = document.querySelector('[data-total="' + t.key + '"]');
      if (el) el.textContent = cell(snapshot.totals[t.key], t.format).text;
    });
    document.getElementById('updated').textContent = snapshot.now.slice(11, 19);
  }
  var live = document.getElementById('live');
  function state(text, cls) {
    live.className = cls;
    live.firstChild.textContent = text + ' ';
  }
  function poll() {
    fetch('status.json', { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (snapshot) {
        render(snapshot);
        state('live, updated', 'on');
      })
      .catch(function (err) {
        state('disconnected (' + err.message + '); last update', 'off');
      })
      .then(function () {
        setTimeout(poll, CONFIG.pollMs);
      });
  }
  setTimeout(poll, CONFIG.pollMs);
})();
`;
}
