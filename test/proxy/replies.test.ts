/**
 * The single mapping from error codes to SOCKS replies and HTTP statuses.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ERROR_CODES, KubesocksError, type ErrorCode } from '../../src/errors.js';
import { FAILURE_REPLIES, failureReply, renderFailureRepliesMarkdown } from '../../src/proxy/replies.js';

describe('failure replies', () => {
  test('the table covers every error code, and nothing else', () => {
    assert.deepEqual(Object.keys(FAILURE_REPLIES).sort(), Object.keys(ERROR_CODES).sort());
  });

  const expected: Array<[ErrorCode, number, number, number]> = [
    ['POD_REFUSED', 0x05, 0x5b, 502],
    ['NOT_FOUND', 0x04, 0x5b, 502],
    ['NO_READY_ENDPOINTS', 0x04, 0x5b, 503],
    ['NOT_FORWARDABLE', 0x04, 0x5b, 502],
    ['POD_NOT_RUNNING', 0x04, 0x5b, 503],
    ['NO_SUCH_PORT', 0x04, 0x5b, 502],
    ['POD_GONE', 0x04, 0x5b, 502],
    ['FORBIDDEN', 0x02, 0x5b, 403],
    ['DIRECT_DENIED', 0x02, 0x5b, 403],
    ['UNAUTHORIZED', 0x02, 0x5b, 403],
    ['TIMEOUT', 0x06, 0x5b, 504],
    ['BAD_TARGET', 0x04, 0x5b, 400],
    ['CONNECTION_LOST', 0x01, 0x5b, 502],
    ['PORTFORWARD_FAILED', 0x01, 0x5b, 502],
    ['STREAM_RESET', 0x01, 0x5b, 502],
    ['UPGRADE_FAILED', 0x01, 0x5b, 502],
    ['DIRECT_FAILED', 0x01, 0x5b, 502],
    ['API_UNREACHABLE', 0x01, 0x5b, 502],
    ['CLOSED', 0x01, 0x5b, 502],
  ];
  for (const [code, socks5, socks4, http] of expected) {
    test(`${code} → SOCKS5 ${socks5}, SOCKS4 ${socks4}, HTTP ${http}`, () => {
      assert.deepEqual(failureReply(new KubesocksError(code, 'x')), { socks5, socks4, http });
    });
  }

  test('a direct connection answers by its system error: refused 0x05, host unreachable 0x04, network unreachable 0x03; others general', () => {
    const direct = (systemCode: string) => new KubesocksError('DIRECT_FAILED', 'x', { cause: Object.assign(new Error(systemCode), { code: systemCode }) });
    assert.deepEqual(failureReply(direct('ECONNREFUSED')), { socks5: 0x05, socks4: 0x5b, http: 502 });
    assert.deepEqual(failureReply(direct('EHOSTUNREACH')), { socks5: 0x04, socks4: 0x5b, http: 502 });
    assert.deepEqual(failureReply(direct('ENETUNREACH')), { socks5: 0x03, socks4: 0x5b, http: 502 });
    assert.deepEqual(failureReply(direct('ECONNRESET')), { socks5: 0x01, socks4: 0x5b, http: 502 });
    assert.deepEqual(failureReply(direct('toString')), { socks5: 0x01, socks4: 0x5b, http: 502 });
  });

  test('an unknown code (never expected) gets the general failure', () => {
    assert.deepEqual(failureReply({ code: 'NOPE' as ErrorCode }), { socks5: 0x01, socks4: 0x5b, http: 502 });
    assert.deepEqual(failureReply({ code: 'toString' as ErrorCode }), { socks5: 0x01, socks4: 0x5b, http: 502 });
  });

  test('renders a Markdown table with one row per code', () => {
    const md = renderFailureRepliesMarkdown();
    const lines = md.trim().split('\n');
    assert.match(lines[0] ?? '', /^\| code \| meaning \| SOCKS5 reply \| SOCKS4 reply \| HTTP status \|$/);
    for (const code of Object.keys(ERROR_CODES)) assert.ok(md.includes(`| \`${code}\` |`), code);
    assert.ok(md.includes('| `POD_REFUSED` | the pod refused the connection on that port | 0x05 connection refused | 0x5B | 502 Bad Gateway |'));
    assert.ok(md.includes('0x07 command not supported'));
    assert.ok(md.includes('0x08 address type not supported'));
    for (const line of lines) assert.equal(line.split('|').length, 7, line);
  });
});
