/** `kubesocks forward` arguments, parsed as kubectl port-forward parses them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAddresses, parsePortSpec, parseResource } from '../../src/cli/forward-spec.js';

describe('forward: argument parsing like kubectl', () => {
  test('resources, ports and addresses', () => {
    assert.deepEqual(parseResource('svc/web'), { kind: 'service', name: 'web' });
    assert.deepEqual(parseResource('web-0'), { kind: 'pod', name: 'web-0' });
    assert.deepEqual(parseResource('deploy/api'), { kind: 'deployment', name: 'api' });
    assert.deepEqual(parseResource('sts/db'), { kind: 'statefulset', name: 'db' });
    assert.throws(() => parseResource('job/x'), /cannot be forwarded/);
    assert.deepEqual(parsePortSpec('8080'), { local: 8080, remote: 8080, text: '8080' });
    assert.deepEqual(parsePortSpec(':80'), { local: 0, remote: 80, text: ':80' });
    assert.deepEqual(parsePortSpec('8443:https'), { local: 8443, remote: 'https', text: '8443:https' });
    assert.throws(() => parsePortSpec('https'), /named port needs a local port/);
    assert.throws(() => parsePortSpec('1:2:3'), /expected \[LOCAL:\]REMOTE/);
    assert.throws(() => parsePortSpec('99999'), /not a port number/);
    assert.deepEqual(parseAddresses('localhost'), ['127.0.0.1', '::1']);
    assert.deepEqual(parseAddresses('127.0.0.1,localhost'), ['127.0.0.1', '::1']);
  });
});
