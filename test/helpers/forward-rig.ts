/** A simulated cluster, a dialer, and `kubesocks forward` listeners started on demand. */
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import { Forwarder, type Listening } from '../../src/forward/forwarder.js';
import { parsePortSpec, parseResource } from '../../src/forward/spec.js';
import { ForwardTarget } from '../../src/forward/target.js';
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
