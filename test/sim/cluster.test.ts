/**
 * The simulated cluster's lifecycle: restartApiServer, close, and a process that exits by itself.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { call, Watch, PF, spdyUpgrade } from '../helpers/sim-api.js';

describe('lifecycle', () => {
  test('restartApiServer: same port and CA, every connection dropped, watches resume from their resourceVersion', async () => {
    const c = await SimCluster.start();
    try {
      const url = c.url;
      const list = (await call(c, '/api/v1/namespaces/demo/pods')).json;
      const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}`);
      await w.opened();
      const upgraded = await spdyUpgrade(c, PF('demo', 'web-0'));
      assert.equal(upgraded.status, 101);
      const upgradedClosed = new Promise((resolve) => upgraded.socket.once('close', resolve));
      upgraded.socket.on('error', () => {});

      await c.restartApiServer();
      assert.equal(c.url, url);
      assert.notEqual(await w.finished, undefined);
      await upgradedClosed;

      c.setPodReady('demo', 'web-3', true);
      const resumed = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}`);
      const [event] = await resumed.atLeast(1);
      assert.deepEqual([event?.type, event?.object.metadata.name], ['MODIFIED', 'web-3']);
      resumed.close();
    } finally {
      await c.close();
    }
  });

  // The timeout turns a regression (a wait for the 120 s handshake timeout) into a failure.
  test('a client stuck in its TLS handshake holds up neither restartApiServer() nor close()', { timeout: 15_000 }, async () => {
    const c = await SimCluster.start();
    try {
      const port = Number(new URL(c.url).port);
      /** A raw TCP connection that sends `bytes` (nothing, or half a ClientHello) and then nothing more. */
      const stuck = async (bytes: Buffer) => {
        const socket = netConnect(port, '127.0.0.1');
        socket.on('error', () => {});
        await new Promise((resolve) => socket.once('connect', resolve));
        if (bytes.length > 0) socket.write(bytes);
        const gone = new Promise((resolve) => socket.once('close', resolve));
        return { socket, gone };
      };
      const silent = await stuck(Buffer.alloc(0));
      const halfHello = await stuck(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]));
      // Let the server accept both before restarting.
      await new Promise((r) => setTimeout(r, 50));

      let started = Date.now();
      await c.restartApiServer();
      assert.ok(Date.now() - started < 2000, `restart took ${Date.now() - started} ms`);
      await Promise.all([silent.gone, halfHello.gone]);
      assert.equal((await call(c, '/version')).status, 200, 'the restarted server answers');

      const again = await stuck(Buffer.alloc(0));
      await new Promise((r) => setTimeout(r, 50));
      started = Date.now();
      await c.close();
      assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
      await again.gone;
    } finally {
      await c.close();
    }
  });

  test('close() releases the port and is idempotent', async () => {
    const c = await SimCluster.start();
    const { port } = new URL(c.url);
    await call(c, '/api/v1/namespaces/demo/pods');
    await Promise.all([c.close(), c.close()]);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = netConnect(Number(port), '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });

  test('a process that starts a cluster, uses it and closes it exits by itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-sim-exit-'));
    try {
      const clusterModule = fileURLToPath(new URL('../../src/sim/cluster.ts', import.meta.url));
      const script = join(dir, 'exit.mts');
      await writeFile(
        script,
        `
import { SimCluster } from ${JSON.stringify(clusterModule)};
import { request } from 'node:https';
import { connect } from 'node:tls';
const c = await SimCluster.start({ control: true });
const get = (path) => new Promise((resolve, reject) => {
  const req = request(new URL(path, c.url), { ca: c.caPem, headers: { Authorization: 'Bearer ' + c.adminToken } }, (res) => { res.resume(); res.on('end', resolve); });
  req.on('error', reject);
  req.end();
});
await get('/api/v1/namespaces/demo/pods');
// A watch left open, and an upgraded connection left open.
request(new URL('/api/v1/pods?watch=1', c.url), { ca: c.caPem, headers: { Authorization: 'Bearer ' + c.adminToken } }, (res) => res.resume()).on('error', () => {}).end();
const s = connect({ host: '127.0.0.1', port: Number(new URL(c.url).port), ca: c.caPem }, () => {
  s.write('POST /api/v1/namespaces/demo/pods/web-0/portforward HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ' + c.adminToken + '\\r\\nConnection: Upgrade\\r\\nUpgrade: SPDY/3.1\\r\\nX-Stream-Protocol-Version: portforward.k8s.io\\r\\n\\r\\n');
});
s.on('error', () => {});
await new Promise((r) => s.once('data', r));
await c.close();
`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error('the process did not exit within 15 s after close()'));
        }, 15_000);
        child.once('exit', (exitCode) => {
          clearTimeout(timer);
          resolve(exitCode);
        });
      });
      assert.equal(code, 0, stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
