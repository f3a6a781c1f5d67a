/**
 * Real pods: one CRI sandbox per simulated pod, with one container whose
 * shell starts a server for each declared container port — what the
 * simulator's built-in backends are, but inside the pod's own network
 * namespace:
 *
 * - `http`:   `busybox httpd` serving `pod NAME` for every path under /
 * - `echo`:   `busybox nc -ll -p PORT -e cat` (one `cat` per connection)
 * - `source`: `ks-source` per connection: `COUNT\n` in, COUNT pattern bytes out
 * - `sink`:   `ks-sink` per connection: `COUNT\n` + COUNT bytes in, `COUNT SHA256\n` out
 * - `closed`: nothing listens (the runtime's dial is refused)
 */
import { connect } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import type { BuiltinBackend } from '../types.js';
import type { Containerd } from './containerd.js';
import type { PodSandboxConfig } from './cri.js';

const debug = debuglog('kubesocks:runtime');

/** How long a new pod's servers may take to listen. */
const LISTEN_TIMEOUT_MS = 20_000;

export interface RealPodSpec {
  namespace: string;
  name: string;
  uid: string;
  ports: Array<{ port: number; backend: BuiltinBackend }>;
}

export interface RealPod {
  sandboxId: string;
  /** The sandbox's address on the bridge network. */
  ip: string;
}

/** The text the http server answers for every path of pod `name`. */
export function realHttpBody(name: string): string {
  return `pod ${name}\n`;
}

/** The container's shell script: start each port's server, then wait for TERM. */
export function containerScript(spec: RealPodSpec): string {
  const lines = ["trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM"];
  for (const { port, backend } of spec.ports) {
    switch (backend) {
      case 'http':
        lines.push(`mkdir -p /tmp/www${port} && echo 'pod ${spec.name}' > /tmp/www${port}/index.html`);
        // -f: foreground (a job of this shell); every path that is not a file answers 404, so / is the page.
        lines.push(`busybox httpd -f -p ${port} -h /tmp/www${port} &`);
        break;
      case 'echo':
        lines.push(`busybox nc -ll -p ${port} -e cat &`);
        break;
      case 'source':
        lines.push(`busybox nc -ll -p ${port} -e /bin/ks-source &`);
        break;
      case 'sink':
        lines.push(`busybox nc -ll -p ${port} -e /bin/ks-sink &`);
        break;
      case 'closed':
        break;
    }
  }
  lines.push('while :; do wait; sleep 3600 & wait $!; done');
  return lines.join('\n');
}

/** Pod names are DNS labels; a sandbox's name must also be unique with its attempt. */
function sandboxConfig(spec: RealPodSpec, logDirectory: string): PodSandboxConfig {
  return {
    metadata: { name: spec.name, uid: spec.uid, namespace: spec.namespace, attempt: 0 },
    hostname: spec.name,
    log_directory: logDirectory,
    labels: { 'io.kubernetes.pod.name': spec.name, 'io.kubernetes.pod.namespace': spec.namespace, 'io.kubernetes.pod.uid': spec.uid },
    annotations: {},
  };
}

/** Resolves once something accepts on ip:port (a TCP probe from the node, as a kubelet's readiness probe). */
async function waitListening(ip: string, port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, ip);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${ip}:${port} after ${LISTEN_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs the sandbox and its container, and waits until every declared server listens. */
export async function runRealPod(runtime: Containerd, spec: RealPodSpec): Promise<RealPod> {
  const logDirectory = join(runtime.dir, 'pods', spec.uid);
  await mkdir(logDirectory, { recursive: true });
  const config = sandboxConfig(spec, logDirectory);
  const sandboxId = await runtime.cri.runPodSandbox(config);
  await runtime.track(sandboxId);
  const containerId = await runtime.cri.createContainer(
    sandboxId,
    {
      metadata: { name: 'main', attempt: 0 },
      image: { image: runtime.imageRef },
      command: ['/bin/sh', '-c', containerScript(spec)],
      log_path: 'main.log',
      labels: {},
    },
    config,
  );
  await runtime.track(containerId);
  await runtime.cri.startContainer(containerId);
  const status = await runtime.cri.podSandboxStatus(sandboxId);
  const ip = status.network?.ip;
  if (!ip) throw new Error(`sandbox ${sandboxId} of pod ${spec.namespace}/${spec.name} has no IP`);
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  await Promise.all(spec.ports.filter((p) => p.backend !== 'closed').map((p) => waitListening(ip, p.port, deadline)));
  debug('pod %s/%s: sandbox %s at %s', spec.namespace, spec.name, sandboxId.slice(0, 12), ip);
  return { sandboxId, ip };
}

/** Stops and removes a pod's sandbox (its container, network namespace and address go with it). */
export async function removeRealPod(runtime: Containerd, sandboxId: string): Promise<void> {
  await runtime.cri.stopPodSandbox(sandboxId);
  await runtime.cri.removePodSandbox(sandboxId);
}
