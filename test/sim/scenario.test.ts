/**
 * Scenario files: validation that names the field, and loadScenario.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadScenario, validateScenario, ScenarioError } from '../../src/sim/scenario.js';
import type { Scenario } from '../../src/sim/types.js';

describe('scenarios', () => {
  test('validation names the field', () => {
    const cases: Array<[unknown, string]> = [
      [{ pods: [{ name: 'a', namespace: 'n' }, { name: 'b', namespace: 'n' }, { name: 'c', namespace: 'n', ports: [{ containerPort: 'x' }] }], services: [] }, 'scenario pods[2].ports[0].containerPort: expected an integer 1-65535, got "x"'],
      [{ pods: [{ name: 'a', namespace: 'n', ports: [{ containerPort: 70000 }] }] }, 'scenario pods[0].ports[0].containerPort: expected an integer 1-65535, got 70000'],
      [{ pods: [{ name: 'a', namespace: 'n', contianerPort: 1 }] }, 'scenario pods[0]: unknown field "contianerPort" (known: name, namespace, labels, ip, phase, ready, hostname, subdomain, terminating, nodeName, restartCount, ports)'],
      [{ pods: [{ name: 'a', namespace: 'n', ports: [{ containerPort: 80, backend: 'nonsense' }] }] }, 'scenario pods[0].ports[0].backend: expected HOST:PORT or one of http, echo, source, sink, closed, got "nonsense"'],
      [{ services: [{ name: 's', namespace: 'n', ports: [{ port: 1 }, { port: 2 }] }] }, 'scenario services[0].ports[0].name: required when a service has more than one port'],
      [{ services: [{ name: 's', namespace: 'n', type: 'ExternalName' }] }, 'scenario services[0].externalName: required for type ExternalName'],
      [{ pods: [{ name: 'a', namespace: 'n' }, { name: 'a', namespace: 'n' }] }, 'scenario pods[1]: duplicate pod n/a'],
      [{ users: [{ name: 'admin', token: 't' }] }, 'scenario users[0].name: expected a user name other than "admin", got "admin"'],
      [{ pods: 'x' }, 'scenario pods: expected an array, got "x"'],
      [[], 'scenario: expected an object, got an array'],
      [{ pods: [{ name: 'a', namespace: 'n', ip: '999.1.1.1' }] }, 'scenario pods[0].ip: expected an IP address, got "999.1.1.1"'],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => validateScenario(input), (err: unknown) => {
        assert.ok(err instanceof ScenarioError);
        assert.equal(err.code, 'SCENARIO_INVALID');
        assert.equal(err.message, message);
        return true;
      });
    }
  });

  test('loadScenario reads the design card\'s example; bad JSON names the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-scenario-'));
    try {
      const file = join(dir, 'scenario.json');
      const scenario: Scenario = {
        pods: [
          {
            name: 'web-0',
            namespace: 'demo',
            labels: { app: 'web' },
            ip: '10.244.0.10',
            phase: 'Running',
            ready: true,
            hostname: 'web-0',
            subdomain: 'web',
            ports: [{ name: 'http', containerPort: 8080, backend: '127.0.0.1:18080' }],
          },
        ],
        services: [{ name: 'web', namespace: 'demo', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }],
      };
      await writeFile(file, JSON.stringify(scenario));
      assert.deepEqual(await loadScenario(file), scenario);
      await writeFile(file, '{ nope');
      await assert.rejects(loadScenario(file), (err: unknown) => err instanceof ScenarioError && err.message.startsWith(`scenario ${file}: invalid JSON:`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
