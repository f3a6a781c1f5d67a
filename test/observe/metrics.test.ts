/**
 * The Prometheus text writer (src/observe/metrics.ts) and the Observer's
 * bookkeeping, checked against the format's own tool: `promtool check
 * metrics` must accept the output, including label values that need
 * escaping, and the Observer's numbers must add up as connections open and end.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import { Counter, Gauge, Histogram, escapeLabelValue, renderMetrics } from '../../src/observe/metrics.js';
import { Observer } from '../../src/observe/observer.js';
import { NEEDS_PROMTOOL, promtoolCheck, sample } from '../helpers/status.js';

describe('Prometheus text writer', NEEDS_PROMTOOL, () => {
  test('counters, gauges and histograms in the text format; promtool accepts it, escapes included', async () => {
    const counter = new Counter<'code'>('demo_errors_total', 'Errors by code.\nSecond line with a \\ backslash.', ['code']);
    counter.init({ code: 'A' });
    counter.inc({ code: 'B' }, 2);
    counter.inc({ code: 'quote " back \\ nl \n end' });
    const gauge = new Gauge<'kind'>('demo_open', 'Open now.', ['kind'], () => [[{ kind: 'x' }, 3]]);
    const histogram = new Histogram<'result'>('demo_duration_seconds', 'Durations.', ['result'], [0.1, 1]);
    histogram.observe({ result: 'ok' }, 0.05);
    histogram.observe({ result: 'ok' }, 0.5);
    histogram.observe({ result: 'ok' }, 5);
    const text = renderMetrics([counter, gauge, histogram]);
    assert.equal(
      text,
      [
        '# HELP demo_errors_total Errors by code.\\nSecond line with a \\\\ backslash.',
        '# TYPE demo_errors_total counter',
        'demo_errors_total{code="A"} 0',
        'demo_errors_total{code="B"} 2',
        'demo_errors_total{code="quote \\" back \\\\ nl \\n end"} 1',
        '# HELP demo_open Open now.',
        '# TYPE demo_open gauge',
        'demo_open{kind="x"} 3',
        '# HELP demo_duration_seconds Durations.',
        '# TYPE demo_duration_seconds histogram',
        'demo_duration_seconds_bucket{result="ok",le="0.1"} 1',
        'demo_duration_seconds_bucket{result="ok",le="1"} 2',
        'demo_duration_seconds_bucket{result="ok",le="+Inf"} 3',
        'demo_duration_seconds_sum{result="ok"} 5.55',
        'demo_duration_seconds_count{result="ok"} 3',
        '',
      ].join('\n'),
    );
    const lint = await promtoolCheck(text);
    assert.equal(lint.code, 0, lint.output);
  });

  test('promtool rejects what the writer refuses to write (the test tool is not a rubber stamp)', async () => {
    const bad = await promtoolCheck('# TYPE x counter\nx{a="unterminated} 1\n');
    assert.notEqual(bad.code, 0);
    assert.throws(() => new Counter('bad-name_total', 'h', []), /metric name/);
    assert.throws(() => new Counter('ok_total', 'h', ['__reserved']), /label name/);
    assert.throws(() => new Histogram('h_seconds', 'h', [], [1, 0.5]), /increasing/);
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  });
});

describe('Observer', () => {
  test('open connections count their bytes live; ending moves them to the totals; failures keep the newest 50', NEEDS_PROMTOOL, async () => {
    const observer = new Observer();
    const counts = { bytesUp: 0, bytesDown: 0 };
    const pod = { context: 'ctx', namespace: 'demo', pod: 'web-0' };
    const open = observer.opened({ client: '127.0.0.1:1', protocol: 'socks5', target: 'web.demo:80', via: 'demo/web-0:8080', pod, startedAt: Date.now(), counts });
    counts.bytesUp = 100;
    counts.bytesDown = 2000;
    let s = await observer.snapshot({ listen: '127.0.0.1:1080', auth: false });
    assert.equal(s.connections.length, 1);
    assert.equal(s.connections[0]?.bytesDown, 2000);
    assert.equal(s.totals.bytesDown, 2000);
    assert.equal(s.pods[0]?.bytesDown, 2000);
    const during = observer.metrics();
    assert.equal(sample(during, 'kubesocks_proxied_bytes_total{direction="down"}'), 2000);
    assert.equal(sample(during, 'kubesocks_connections_open{protocol="socks5"}'), 1);

    open.close();
    open.close(); // idempotent: the bytes are not counted twice
    observer.ended({ protocol: 'socks5', client: '127.0.0.1:1', target: 'web.demo:80' });
    s = await observer.snapshot({ listen: '127.0.0.1:1080', auth: false });
    assert.equal(s.connections.length, 0);
    assert.equal(s.totals.bytesDown, 2000, 'a counter never goes back when a connection ends');
    assert.equal(s.totals.connections, 1);
    assert.equal(s.pods[0]?.socketsTotal, 1);
    assert.equal(s.pods[0]?.bytesUp, 100);

    for (let i = 0; i < 60; i++) observer.ended({ protocol: 'http', client: 'c', target: `t${i}`, error: new KubesocksError('NOT_FOUND', `no t${i}\nsecond line`) });
    s = await observer.snapshot({ listen: '127.0.0.1:1080', auth: false });
    assert.equal(s.failures.length, 50);
    assert.equal(s.failures[0]?.target, 't59', 'newest first');
    assert.equal(s.failures[0]?.message, 'no t59', 'one line');
    assert.equal(s.totals.failed, 60);
    const text = observer.metrics();
    assert.equal(sample(text, 'kubesocks_errors_total{code="NOT_FOUND"}'), 60);
    assert.equal(sample(text, 'kubesocks_connections_total{protocol="http",result="error"}'), 60);
    const lint = await promtoolCheck(text);
    assert.equal(lint.code, 0, lint.output);
  });

  test('context reachability: unknown, then what the API server last did', async () => {
    const observer = new Observer();
    observer.addCluster({
      contexts: async () => [{ name: 'c', server: 'https://x', user: 'u', namespace: 'default', namespaces: [] }],
      pods: () => [],
    });
    const reach = async (): Promise<unknown> => (await observer.snapshot({ listen: 'l', auth: false })).contexts[0]?.reachable;
    assert.equal(await reach(), null);
    observer.apiResult('c');
    assert.equal(await reach(), true);
    observer.apiResult('c', new KubesocksError('FORBIDDEN', 'rbac says no'));
    assert.equal(await reach(), true, 'a 403 came from a server that answers');
    observer.apiResult('c', new KubesocksError('API_UNREACHABLE', 'connect ECONNREFUSED'));
    assert.equal(await reach(), false);
    const s = await observer.snapshot({ listen: 'l', auth: false });
    assert.equal(s.contexts[0]?.lastError?.code, 'API_UNREACHABLE');
  });
});
