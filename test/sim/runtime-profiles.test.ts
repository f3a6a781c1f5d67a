/**
 * The simulated runtime's profiles (src/sim/runtime-profile.ts): the frames a
 * failed pair ends with, read by an independent SPDY client (spdy-transport),
 * so a comparison with a real runtime (issue 16) can name them.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { SimKubelet } from '../../src/sim/kubelet.js';
import { zeroCounters } from '../../src/sim/cluster.js';
import { RUNTIME_PROFILES, type RuntimeProfile } from '../../src/sim/runtime-profile.js';
import { validateScenario } from '../../src/sim/scenario.js';
import type { PortForwardTarget, SimCounters } from '../../src/sim/types.js';
import { echoServer, listen, readBytes, waitFor, within } from '../helpers/spdy-net.js';
import { collectUntilClose, spdyTransportClient, type StClient, type StFrame } from '../helpers/spdy-transport.js';

const POD: PortForwardTarget = { namespace: 'demo', name: 'web-0', uid: '6f1d7c2e-0d4b-4f7a-9a51-2b1c3d4e5f60' };
const OPEN_PORT = 80;

async function rig(t: TestContext, runtime: RuntimeProfile): Promise<{ kubelet: SimKubelet; client: StClient }> {
  const echo = await echoServer();
  const counters: SimCounters = zeroCounters();
  const kubelet = new SimKubelet({
    backendFor: async (_target, port) => (port === OPEN_PORT ? { host: echo.host, port: echo.port } : null),
    counters,
    runtime: () => runtime,
  });
  const listener = await listen((socket) => kubelet.accept(POD, socket, Buffer.alloc(0)));
  const client = await spdyTransportClient(listener.port);
  t.after(async () => {
    client.close();
    kubelet.close();
    await listener.close();
    await echo.close();
  });
  return { kubelet, client };
}

/** Opens a pair client-go style (error stream half-closed at once); returns the two stream ids. */
async function openPair(client: StClient, requestId: string, port: number) {
  const error = client.request({ streamtype: 'error', port: String(port), requestid: requestId });
  const data = client.request({ streamtype: 'data', port: String(port), requestid: requestId });
  await Promise.all([error.sent, data.sent]);
  error.end();
  for (const s of [error, data]) s.on('error', () => {});
  return { error, data, errorText: collectUntilClose(error), dataDone: collectUntilClose(data) };
}

/** The frames the kubelet sent on `ids`, as `TYPE id[ fin][ text]`. */
function framesOn(client: StClient, ids: number[]): string[] {
  return client.frames
    .filter((f: StFrame) => f.id !== undefined && ids.includes(f.id) && f.type !== 'WINDOW_UPDATE')
    .map((f) => {
      if (f.type === 'RST') return `RST ${f.id} ${f.code}`;
      if (f.type === 'DATA') return `DATA ${f.id}${f.fin ? ' fin' : ''}${f.data && f.data.length > 0 ? ' text' : ''}`;
      return `${f.type} ${f.id}${f.fin ? ' fin' : ''}`;
    });
}

const EXPECTED: Record<RuntimeProfile, { frames: string[]; text: RegExp }> = {
  // containerd 1.6.20 on the wire (test/runtime/frames.test.ts): SYN_REPLY both, FIN data, the text, FIN error; no RST.
  containerd: {
    frames: ['HEADERS 1', 'HEADERS 3', 'DATA 3 fin', 'DATA 1 text', 'DATA 1 fin'],
    text: /^error forwarding port 81 to pod [0-9a-f]{64}, uid : failed to execute portforward in network namespace "[^"]+": failed to connect to localhost:81 inside namespace "[0-9a-f]{64}", IPv4: dial tcp4 127\.0\.0\.1:81: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found $/,
  },
  // kubelet ≥ 1.32: the text, then RST on both streams.
  'kubelet-1.32': {
    frames: ['HEADERS 1', 'HEADERS 3', 'DATA 1 text', 'RST 1 CANCEL', 'RST 3 CANCEL'],
    text: new RegExp(`^error forwarding port 81 to pod web-0, uid ${POD.uid}: failed to execute portforward in network namespace "[^"]+": failed to connect to localhost:81 inside namespace "[0-9a-f]{64}", IPv4: dial tcp4 127\\.0\\.0\\.1:81: connect: connection refused `),
  },
};

for (const profile of RUNTIME_PROFILES) {
  test(`${profile}: a refused port ends with the profile's frames and text; the connection goes on`, async (t) => {
    const { client } = await rig(t, profile);
    const failed = await openPair(client, '1', 81);
    const text = await within(failed.errorText, 3000, 'error stream done');
    const data = await within(failed.dataDone, 3000, 'data stream done');
    assert.match(text.data.toString(), EXPECTED[profile].text);
    assert.equal(text.ended, profile === 'containerd', 'error stream FIN (containerd) or RST (kubelet-1.32)');
    assert.equal(data.ended, profile === 'containerd', 'data stream FIN (containerd) or RST (kubelet-1.32)');
    await waitFor(() => framesOn(client, [1, 3]).length >= EXPECTED[profile].frames.length, 1000, 'all frames');
    assert.deepEqual(framesOn(client, [1, 3]), EXPECTED[profile].frames);
    const ok = await openPair(client, '2', OPEN_PORT);
    const reply = readBytes(ok.data, 5, 3000);
    ok.data.write('alive');
    assert.equal((await reply).toString(), 'alive');
  });

  test(`${profile}: the pod going away mid-copy fails its pairs with text and the profile's ending, then closes the connection`, async (t) => {
    const { kubelet, client } = await rig(t, profile);
    const pair = await openPair(client, '1', OPEN_PORT);
    const reply = readBytes(pair.data, 5, 3000);
    pair.data.write('hello');
    assert.equal((await reply).toString(), 'hello');
    const closed = new Promise((resolve) => client.socket.once('close', resolve));
    kubelet.closePod(POD.uid);
    const text = await within(pair.errorText, 3000, 'error stream done');
    assert.match(text.data.toString(), /^error forwarding port 80 to pod .*: error copying from remote stream to local connection: read: connection reset by peer$/);
    await within(closed, 3000, 'connection closed');
    const frames = framesOn(client, [1, 3]).slice(2).filter((f) => f !== 'DATA 3 text');
    assert.deepEqual(frames, profile === 'containerd' ? ['DATA 3 fin', 'DATA 1 text', 'DATA 1 fin'] : ['DATA 1 text', 'RST 1 CANCEL', 'RST 3 CANCEL']);
  });
}

test('scenario field `runtime` selects the profile; anything else is refused with the known names', () => {
  assert.equal(validateScenario({ runtime: 'containerd', pods: [], services: [] }).runtime, 'containerd');
  assert.equal(validateScenario({ pods: [], services: [] }).runtime, undefined);
  assert.throws(() => validateScenario({ runtime: 'cri-o', pods: [], services: [] }), /^ScenarioError: scenario runtime: expected one of "kubelet-1\.32", "containerd", got "cri-o"$/);
});
