/**
 * What `kubesocks forward` connects each accepted socket to. Unlike kubectl,
 * which picks one pod at start and keeps it until it dies, every connection
 * is resolved afresh: services and workloads spread over their ready pods and
 * keep working after a pod is replaced.
 */
import { KubesocksError, asKubesocksError } from '../errors.js';
import type { Dialer, PodPorts } from '../dialer/dialer.js';
import type { KubeSocket } from '../dialer/kube-socket.js';
import type { ForwardResource } from './resource.js';

/** How long a pod list for a workload is reused between connections. */
const POD_LIST_TTL_MS = 2000;
const MAX_POD_TRIES = 3;

export class ForwardTarget {
  readonly #dialer: Dialer;
  readonly namespace: string;
  readonly resource: ForwardResource;
  #podList: { at: number; pods: PodPorts[] } | undefined;
  #next = 0;

  constructor(dialer: Dialer, namespace: string, resource: ForwardResource) {
    this.#dialer = dialer;
    this.namespace = namespace;
    this.resource = resource;
  }

  get description(): string {
    return `${this.resource.kind}/${this.resource.name} in namespace ${this.namespace}`;
  }

  /**
   * Checks the target exists and waits up to `timeoutMs` for a running pod
   * (kubectl's --pod-running-timeout). Services need no running pod to start.
   */
  async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = await this.#hasRunningPod().catch(async (error: unknown) => {
        throw await this.#namespaceFirst(error);
      });
      if (running) return;
      if (Date.now() >= deadline) {
        throw new KubesocksError('POD_NOT_RUNNING', `${this.description} has no running pod after ${Math.round(timeoutMs / 1000)} s (see kubectl get pods -n ${this.namespace})`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, Math.max(50, deadline - Date.now()))));
    }
  }

  /**
   * kubectl's "Forwarding from … -> PORT": the port inside the pod, named
   * ports resolved now. For a service that is its targetPort (a named one
   * through a ready pod's container ports), and a service port the service
   * does not have is refused here, at start, as kubectl does.
   */
  async remoteNumber(remote: number | string): Promise<number> {
    if (this.resource.kind === 'service') return this.#serviceTargetPort(remote);
    if (typeof remote === 'number') return remote;
    const pods = await this.#candidatePods();
    for (const pod of pods) {
      const port = pod.namedPorts[remote];
      if (port) return port;
    }
    throw new KubesocksError('NO_SUCH_PORT', `${this.description} has no container port named "${remote}"`);
  }

  /** Opens one connection to `remote` through the dialer. */
  async connect(remote: number | string, signal?: AbortSignal): Promise<KubeSocket> {
    const { kind, name } = this.resource;
    if (kind === 'service') {
      const port = typeof remote === 'number' ? remote : await this.#servicePort(remote);
      return this.#dialer.connect({ namespace: this.namespace, service: name, port }, { signal });
    }
    const pods = await this.#candidatePods();
    if (pods.length === 0) {
      throw new KubesocksError('NO_READY_ENDPOINTS', `${this.description} has no ready pod right now (see kubectl get pods -n ${this.namespace})`);
    }
    let lastError: KubesocksError | undefined;
    const start = this.#next++;
    for (let i = 0; i < Math.min(MAX_POD_TRIES, pods.length); i++) {
      const pod = pods[(start + i) % pods.length]!;
      const port = typeof remote === 'number' ? remote : pod.namedPorts[remote];
      if (!port) {
        lastError = new KubesocksError('NO_SUCH_PORT', `pod ${pod.name} has no container port named "${remote}"`);
        continue;
      }
      try {
        // confirm: this loop is the failover, so a pod that went away since the
        // list was read must fail here, before the socket is handed out.
        return await this.#dialer.connect({ namespace: this.namespace, pod: pod.name, port }, { signal, confirm: kind !== 'pod' });
      } catch (error) {
        lastError = asKubesocksError(error);
        if (kind === 'pod' || signal?.aborted || ['FORBIDDEN', 'UNAUTHORIZED', 'API_UNREACHABLE'].includes(lastError.code)) throw lastError;
        this.#podList = undefined;
      }
    }
    throw lastError!;
  }

  /** A missing namespace is named as such (kubectl: `namespaces "x" not found`), not as a missing service or pod. */
  async #namespaceFirst(error: unknown): Promise<unknown> {
    if ((error as { code?: unknown }).code !== 'NOT_FOUND') return error;
    if ((await this.#dialer.namespaceExists(this.namespace)) !== false) return error;
    return new KubesocksError('NOT_FOUND', `namespaces "${this.namespace}" not found (see kubectl get namespaces)`);
  }

  async #serviceTargetPort(remote: number | string): Promise<number> {
    const ports = await this.#dialer.servicePorts(this.namespace, this.resource.name);
    const servicePort = typeof remote === 'number' ? ports.find((p) => p.port === remote) : ports.find((p) => p.name === remote);
    if (!servicePort) {
      const known = ports.map((p) => (p.name ? `${p.port} (${p.name})` : `${p.port}`)).join(', ');
      const which = typeof remote === 'number' ? `a service port ${remote}` : `a service port named "${remote}"`;
      throw new KubesocksError('NO_SUCH_PORT', `Service ${this.resource.name} does not have ${which} (its ports: ${known || 'none'})`);
    }
    const target = servicePort.targetPort ?? servicePort.port;
    if (typeof target === 'number') return target;
    if (/^\d+$/.test(target)) return Number(target);
    for (const pod of await this.#dialer.servicePods(this.namespace, this.resource.name)) {
      const port = pod.namedPorts[target];
      if (port) return port;
    }
    // No ready pod to ask: the service port stands in, as the traffic's entry point.
    return servicePort.port;
  }

  async #hasRunningPod(): Promise<boolean> {
    if (this.resource.kind === 'service') {
      await this.#dialer.servicePorts(this.namespace, this.resource.name);
      return true;
    }
    this.#podList = undefined;
    return (await this.#candidatePods()).length > 0;
  }

  async #servicePort(name: string): Promise<number> {
    const ports = await this.#dialer.servicePorts(this.namespace, this.resource.name);
    const port = ports.find((p) => p.name === name)?.port;
    if (!port) {
      const known = ports.map((p) => `${p.name ?? ''}=${p.port}`).join(', ');
      throw new KubesocksError('NO_SUCH_PORT', `service ${this.namespace}/${this.resource.name} has no port named "${name}" (its ports: ${known || 'none'})`);
    }
    return port;
  }

  /** Running, ready, not terminating pods of the target (a pod target: itself if running). */
  async #candidatePods(): Promise<PodPorts[]> {
    const { kind, name } = this.resource;
    if (kind === 'service') return [];
    if (kind === 'pod') return this.#dialer.podsOf({ namespace: this.namespace, kind, name });
    if (this.#podList && Date.now() - this.#podList.at < POD_LIST_TTL_MS) return this.#podList.pods;
    const pods = await this.#dialer.podsOf({ namespace: this.namespace, kind, name });
    this.#podList = { at: Date.now(), pods };
    return pods;
  }
}
