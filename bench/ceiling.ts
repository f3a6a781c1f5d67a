/**
 * The ceiling: the simulator driven by a bare SPDY client — one upgrade, one
 * stream pair, no proxy, no dialer — so a reader can see how much of every
 * other figure is the simulator's own cost (TLS, SPDY framing, the kubelet's
 * copy loop, the backend).
 */
import type { Duplex } from 'node:stream';
import { SpdySession } from '../src/spdy/session.js';
import { upgradeToPortForward } from '../src/tunnel/upgrade.js';
import type { UpgradeCredentials } from '../src/tunnel/upgrade.js';
import type { Sim } from './lib/harness.js';
import { NS } from './lib/scenario.js';

function credentials(sim: Sim): UpgradeCredentials {
  const url = new URL(sim.ready.url);
  return {
    contextName: 'bench-bare-client',
    requestOptions: async (method, path, headers = {}) => ({
      protocol: 'https:',
      hostname: url.hostname,
      port: Number(url.port),
      path,
      method,
      headers: { ...headers, Authorization: `Bearer ${sim.ready.adminToken}` },
      ca: sim.ready.caPem,
      agent: false,
    }),
    invalidateCredentials: () => {},
  };
}

/** A bare port-forward connection to `pod`; open() gives the data stream of a fresh pair. */
export interface BareClient {
  open(port: number): Duplex;
  close(): void;
}

export async function bareClient(sim: Sim, pod: string): Promise<BareClient> {
  const socket = await upgradeToPortForward(credentials(sim), { namespace: NS, pod, timeoutMs: 10_000 });
  const session = new SpdySession(socket, { role: 'client' });
  let requestId = 0;
  return {
    open(port) {
      const headers = { port: String(port), requestid: String(requestId++) };
      const error = session.openStream({ streamtype: 'error', ...headers });
      error.on('error', () => {});
      error.end();
      error.resume();
      const data = session.openStream({ streamtype: 'data', ...headers });
      // Once the data stream is done, the error stream has nothing more to say.
      data.once('close', () => error.destroy());
      return data;
    },
    close: () => session.close(),
  };
}
