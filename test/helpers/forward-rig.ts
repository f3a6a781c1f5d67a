/** A simulated cluster, a dialer, and `kubesocks forward` listeners started on demand. */
import * as net from 'node:net';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import { Forwarder, type Listening } from '../../src/forward/forwarder.js';
import { parsePortSpec, parseResource } from '../../src/cli/forward-spec.js';
import { ForwardTarget } from '../../src/forward/forward-target.js';
import { startTestCluster, type TestCluster } from './sim.js';

export interface ForwardRig {
  cluster: TestCluster;
  dialer: Dialer;
  /** Every failure line the forwarders printed, in order. */
  errors: string[];
  /** `forward RESOURCE PORT` in namespace demo on 127.0.0.1, once a pod is running. */
  start(resource: string, port: string, timeoutMs?: number): Promise<Listening>;
  close(): Promise<void>;
}

export async function startForwardRig(): Promise<ForwardRig> {
  const cluster = await startTestCluster();
  const dialer = await createDialer({ kubeconfig: cluster.kubeconfig });
  const forwarders: Forwarder[] = [];
  const errors: string[] = [];
  return {
    cluster,
    dialer,
    errors,
    async start(resource, port, timeoutMs = 5000) {
      const target = new ForwardTarget(dialer, 'demo', parseResource(resource));
      await target.waitUntilReady(timeoutMs);
      const forwarder = new Forwarder({ target, ports: [parsePortSpec(port)], addresses: ['127.0.0.1'], info: () => {}, error: (line) => errors.push(line) });
      forwarders.push(forwarder);
      const [listening] = await forwarder.start();
      return listening!;
    },
    async close() {
      for (const forwarder of forwarders) await forwarder.close();
      await dialer.close();
      await cluster.close();
    },
  };
}

/**
 * One HTTP request through a forward; resolves with the response once it is
 * complete (by Content-Length), or with what arrived when the connection
 * closes. Not waiting for the close matters: the runtime keeps the stream
 * open up to 1 s after the pod's side ended (no half-close).
 */
export function httpVia(port: number, path: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let text = '';
    const done = () => {
      socket.destroy();
      resolve(text);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1];
      if (end !== -1 && length !== undefined && text.length >= end + 4 + Number(length)) done();
    });
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}
