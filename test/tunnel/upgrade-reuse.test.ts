/**
 * The port-forward upgrade goes through the client's keep-alive agent: on a
 * remote cluster it reuses the TLS connection the lookups left idle (one
 * round trip less for every first socket to a pod), and the upgraded socket
 * leaves the agent, so no later GET is ever written onto an SPDY connection.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { KubeClient } from '../../src/kube/client.js';
import { TunnelPool } from '../../src/tunnel/pool.js';
import { startRemoteCluster } from '../helpers/remote-cluster.js';
import { podsBehindService } from '../helpers/sim.js';

function echo(stream: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    stream.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (got.length >= text.length) resolve(got);
    });
    stream.once('error', reject);
    stream.write(text);
  });
}

test('the upgrade reuses an idle API connection, which then leaves the agent', async (t) => {
  const remote = await startRemoteCluster(podsBehindService('reuse', 'echo', 1, 7, 'echo'), 5);
  const client = await KubeClient.load({ kubeconfig: remote.kubeconfig });
  const pool = new TunnelPool(client);
  t.after(async () => {
    pool.close();
    client.close();
    await remote.close();
  });

  await client.getJSON('/api/v1/namespaces/reuse/pods');
  assert.equal(remote.relay.connections, 1, 'one TLS connection for the GET');

  const pair = await pool.open('reuse', 'echo-0', 7);
  assert.equal(remote.relay.connections, 1, 'the upgrade went over the idle connection, not a new one');
  assert.equal(await echo(pair, 'ping'), 'ping');

  // The upgraded socket is the tunnel's now: the next GET needs a new connection.
  const pods = await client.getJSON<{ items: unknown[] }>('/api/v1/namespaces/reuse/pods');
  assert.equal(pods.items.length, 1);
  assert.equal(remote.relay.connections, 2, 'the GET did not go onto the upgraded (SPDY) socket');
  assert.equal(await echo(pair, 'pong'), 'pong', 'the tunnel still works after the GET');
  pair.destroy();
});
