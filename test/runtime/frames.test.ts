/**
 * The simulated kubelet against the real runtime, frame by frame (issue 16):
 * the same port-forward cases — a refused port, a successful echo, a client
 * half-close — are played against a simulated cluster and against one whose
 * pods are containerd sandboxes, through the same simulated API server, and
 * the frames each answers with are compared after normalising what differs
 * by nature (stream ids, timing, sandbox ids, network namespace paths, pod
 * uids). A difference fails the test: the simulator must keep telling the
 * truth about the runtime it models.
 */
import * as assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Containerd } from '../../src/sim/runtime/containerd.js';
import type { Scenario } from '../../src/sim/types.js';
import { RawPeer, TYPE, dataFrame, type WireFrame } from '../helpers/spdy-wire.js';
import { runtimeSkip, startRuntime } from '../helpers/runtime-rig.js';

const NS = 'frames';

const scenario: Scenario = {
  namespaces: [NS],
  pods: [
    {
      name: 'pod-0',
      namespace: NS,
      labels: { app: 'pod' },
      phase: 'Running',
      ready: true,
      ports: [
        { name: 'echo', containerPort: 7, backend: 'echo' },
        { name: 'nothing', containerPort: 9999, backend: 'closed' },
      ],
    },
  ],
  services: [],
};

/** The simulated cluster to compare: the simulated kubelet with the runtime profile that claims to be containerd's. */
function simulatedOptions(): Parameters<typeof SimCluster.start>[0] {
  return { scenario: { ...scenario, runtime: 'containerd' } };
}

/** Opens the port-forward upgrade to pod-0 through the API server; resolves with a RawPeer on the upgraded connection. */
async function upgrade(cluster: SimCluster): Promise<RawPeer> {
  const url = new URL(cluster.url);
  const socket: TLSSocket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: cluster.caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  socket.write(
    `POST /api/v1/namespaces/${NS}/pods/pod-0/portforward HTTP/1.1\r\n` +
      `Host: ${url.host}\r\n` +
      `Authorization: Bearer ${cluster.adminToken}\r\n` +
      'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n',
  );
  const rest = await new Promise<Buffer>((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const head = buffered.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${head}`));
      resolve(buffered.subarray(end + 4));
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  socket.pause();
  const peer = new RawPeer(socket as unknown as import('node:net').Socket);
  if (rest.length > 0) socket.emit('data', rest);
  socket.resume();
  return peer;
}

const ERROR_STREAM = 1;
const DATA_STREAM = 3;

/** Opens the pair for `port` the way client-go does: error stream (half-closed at once), then data stream. */
async function openPair(peer: RawPeer, port: number): Promise<void> {
  await peer.synStream(ERROR_STREAM, [
    ['streamtype', 'error'],
    ['port', String(port)],
    ['requestid', '0'],
  ]);
  peer.send(dataFrame(ERROR_STREAM, Buffer.alloc(0), true));
  await peer.synStream(DATA_STREAM, [
    ['streamtype', 'data'],
    ['port', String(port)],
    ['requestid', '0'],
  ]);
}

/** What differs between runs by nature: ids, the sandbox's netns path, the pod's uid. */
export function normaliseText(text: string): string {
  return text
    .replace(/[0-9a-f]{64}/g, '<sandbox-id>')
    .replace(/"[^"\s]*\/netns\/cni-[0-9a-f-]+"/g, '"<netns>"')
    .replace(/uid [0-9a-f-]{36}/g, 'uid <uid>');
}

/**
 * The pair's frames from the server, as lines: `SYN_REPLY error`,
 * `DATA data "hello"`, `FIN data`, `RST error`. Consecutive DATA on one
 * stream are joined (how bytes are cut into frames is timing); connection
 * frames (SETTINGS, PING, WINDOW_UPDATE) are left out.
 */
function describeFrames(frames: WireFrame[], data: Map<number, string>): string[] {
  const name = (id: number): string => (id === ERROR_STREAM ? 'error' : id === DATA_STREAM ? 'data' : `stream ${id}`);
  const lines: string[] = [];
  let dataIndex = 0;
  for (const frame of frames) {
    if (frame.control) {
      if (frame.type === TYPE.SYN_REPLY) lines.push(`SYN_REPLY ${name(frame.streamId)}`);
      else if (frame.type === TYPE.RST_STREAM) lines.push(`RST ${name(frame.streamId)}`);
      else if (frame.type === TYPE.SYN_STREAM) lines.push(`SYN_STREAM ${name(frame.streamId)}`);
      continue;
    }
    const text = normaliseText(data.get(dataIndex++) ?? '');
    if (text.length > 0) {
      const previous = lines.at(-1);
      const prefix = `DATA ${name(frame.streamId)} `;
      if (previous?.startsWith(prefix)) lines[lines.length - 1] = `${prefix}${JSON.stringify(JSON.parse(previous.slice(prefix.length)) + text)}`;
      else lines.push(`${prefix}${JSON.stringify(text)}`);
    }
    if (frame.flags & 1) lines.push(`FIN ${name(frame.streamId)}`);
  }
  return lines;
}

/**
 * The tap keeps no DATA payloads, so a second listener keeps them, in frame
 * order: the n-th DATA frame's text by n.
 */
function dataTexts(peer: RawPeer): Map<number, string> {
  const texts = new Map<number, string>();
  let buffer = Buffer.alloc(0);
  let index = 0;
  peer.socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 8) {
      const length = buffer.readUInt32BE(4) & 0xffffff;
      if (buffer.length < 8 + length) break;
      if ((buffer[0]! & 0x80) === 0) texts.set(index++, buffer.subarray(8, 8 + length).toString('latin1'));
      buffer = buffer.subarray(8 + length);
    }
  });
  return texts;
}

/** Both streams ended by the server (FIN or RST each), or `timeoutMs` passed. */
async function untilBothEnded(peer: RawPeer, timeoutMs: number): Promise<void> {
  const ended = (id: number): boolean =>
    peer.tap.frames.some((f) => f.streamId === id && ((f.control && f.type === TYPE.RST_STREAM) || (!f.control && (f.flags & 1) === 1)));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !(ended(ERROR_STREAM) && ended(DATA_STREAM))) await new Promise((resolve) => setTimeout(resolve, 20));
  // Anything that would follow the ends (a late RST) is part of the answer too.
  await new Promise((resolve) => setTimeout(resolve, 300));
}

type Case = (peer: RawPeer) => Promise<void>;

const CASES: Record<string, Case> = {
  'a refused port': async (peer) => {
    await openPair(peer, 9999);
    await untilBothEnded(peer, 5000);
  },
  'a successful echo': async (peer) => {
    await openPair(peer, 7);
    peer.send(dataFrame(DATA_STREAM, Buffer.from('hello\n')));
    await peer.waitFrame((f) => !f.control && f.streamId === DATA_STREAM && f.length > 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, 300));
  },
  'a client half-close after echo': async (peer) => {
    await openPair(peer, 7);
    peer.send(dataFrame(DATA_STREAM, Buffer.from('bye\n'), true));
    await untilBothEnded(peer, 5000);
  },
};

async function play(cluster: SimCluster, run: Case): Promise<string[]> {
  const peer = await upgrade(cluster);
  const texts = dataTexts(peer);
  try {
    await run(peer);
    return describeFrames(peer.tap.frames, texts);
  } finally {
    peer.destroy();
  }
}

describe('the simulated kubelet answers port-forward frame for frame as containerd does', { skip: runtimeSkip }, () => {
  let runtime: Containerd;
  let real: SimCluster;
  let simulated: SimCluster;

  before(async () => {
    runtime = await startRuntime();
    real = await SimCluster.start({ scenario, containerd: runtime });
    simulated = await SimCluster.start(simulatedOptions());
  });

  after(async () => {
    await simulated?.close();
    await real?.close();
    await runtime?.stop();
  });

  for (const [name, run] of Object.entries(CASES)) {
    test(name, async (t) => {
      const fromRuntime = await play(real, run);
      const fromSimulator = await play(simulated, run);
      t.diagnostic(`containerd: ${fromRuntime.join(' | ')}`);
      assert.ok(fromRuntime.length > 0, 'the runtime answered nothing');
      assert.deepEqual(fromSimulator, fromRuntime, 'the simulator (actual) differs from containerd (expected)');
    });
  }
});
