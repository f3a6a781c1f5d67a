/**
 * The pods behind a pod name or a workload (deployment, statefulset, replica
 * set), and a service's ports, for `kubesocks forward`: what kubectl
 * port-forward looks up once at start, looked up here whenever asked. A
 * workload's pods are those its selector matches that are running, ready and
 * not terminating (the pods a Service would send traffic to).
 */
import { LRUCache } from 'lru-cache';
import { KubesocksError } from '../errors.js';
import { getJSON, type RequestSource } from '../kube/api.js';

export type WorkloadKind = 'deployment' | 'statefulset' | 'replicaset';

/** A pod and its named container ports. */
export interface PodPorts {
  name: string;
  /** Container port numbers by port name. */
  namedPorts: Record<string, number>;
}

export interface ServicePort {
  name?: string | undefined;
  port: number;
  /** The pod's port: a number, or a container port name (absent: the same as `port`). */
  targetPort?: number | string | undefined;
}

interface PodObject {
  metadata?: { name?: string; deletionTimestamp?: string };
  spec?: { containers?: Array<{ ports?: Array<{ name?: string; containerPort?: number }> }> };
  status?: { phase?: string; conditions?: Array<{ type?: string; status?: string }> };
}

interface ServiceObject {
  spec?: { ports?: Array<{ name?: string; port?: number; targetPort?: number | string }>; selector?: Record<string, string> };
}

interface WorkloadObject {
  spec?: {
    selector?: {
      matchLabels?: Record<string, string>;
      matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
    };
  };
}

const WORKLOAD_PATHS: Readonly<Record<WorkloadKind, string>> = { deployment: 'deployments', statefulset: 'statefulsets', replicaset: 'replicasets' };

const seg = encodeURIComponent;

export class WorkloadPods {
  readonly #client: RequestSource;
  /** Workload selectors, which hardly ever change: one GET per workload, not one per pod list. */
  readonly #selectors = new LRUCache<string, string>({ max: 256 });

  constructor(client: RequestSource) {
    this.#client = client;
  }

  /** The pod if it is running (kubectl port-forward's own condition), else none. */
  async runningPod(namespace: string, name: string, signal?: AbortSignal): Promise<PodPorts[]> {
    const pod = await getJSON<PodObject>(this.#client, `/api/v1/namespaces/${seg(namespace)}/pods/${seg(name)}`, { signal });
    return pod.status?.phase === 'Running' ? [podPorts(pod)] : [];
  }

  /** The running, ready, not terminating pods a workload's selector matches. */
  async readyPods(namespace: string, kind: WorkloadKind, name: string, signal?: AbortSignal): Promise<PodPorts[]> {
    const selector = await this.#selector(namespace, kind, name, signal);
    const list = await getJSON<{ items?: PodObject[] }>(this.#client, `/api/v1/namespaces/${seg(namespace)}/pods?labelSelector=${seg(selector)}`, { signal });
    return (list.items ?? []).filter(isReadyPod).map(podPorts);
  }

  /** A service's ports; rejects NOT_FOUND (with the API server's message) when there is no such service. */
  async servicePorts(namespace: string, service: string, signal?: AbortSignal): Promise<ServicePort[]> {
    const object = await getJSON<ServiceObject>(this.#client, `/api/v1/namespaces/${seg(namespace)}/services/${seg(service)}`, { signal });
    return (object.spec?.ports ?? [])
      .filter((p): p is { name?: string; port: number; targetPort?: number | string } => typeof p.port === 'number')
      .map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort }));
  }

  /**
   * The running, ready pods a service's selector matches (none for a
   * service without a selector), to turn a named targetPort into a number
   * as kubectl does for its "Forwarding from" line.
   */
  async servicePods(namespace: string, service: string, signal?: AbortSignal): Promise<PodPorts[]> {
    const object = await getJSON<ServiceObject>(this.#client, `/api/v1/namespaces/${seg(namespace)}/services/${seg(service)}`, { signal });
    const selector = Object.entries(object.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    if (!selector) return [];
    const list = await getJSON<{ items?: PodObject[] }>(this.#client, `/api/v1/namespaces/${seg(namespace)}/pods?labelSelector=${seg(selector)}`, { signal });
    return (list.items ?? []).filter(isReadyPod).map(podPorts);
  }

  /** Whether a namespace exists: true, false, or undefined when it cannot be told (no permission to get it). */
  async namespaceExists(namespace: string, signal?: AbortSignal): Promise<boolean | undefined> {
    try {
      await getJSON(this.#client, `/api/v1/namespaces/${seg(namespace)}`, { signal });
      return true;
    } catch (error) {
      return (error as { code?: unknown }).code === 'NOT_FOUND' ? false : undefined;
    }
  }

  async #selector(namespace: string, kind: WorkloadKind, name: string, signal?: AbortSignal): Promise<string> {
    const key = `${kind}/${namespace}/${name}`;
    const known = this.#selectors.get(key);
    if (known !== undefined) return known;
    const workload = await getJSON<WorkloadObject>(this.#client, `/apis/apps/v1/namespaces/${seg(namespace)}/${WORKLOAD_PATHS[kind]}/${seg(name)}`, { signal });
    const selector = labelSelector(workload);
    if (!selector) throw new KubesocksError('NOT_FORWARDABLE', `${kind}/${name} has no pod selector`);
    this.#selectors.set(key, selector);
    return selector;
  }
}

function isReadyPod(pod: PodObject): boolean {
  return (
    pod.status?.phase === 'Running' &&
    !pod.metadata?.deletionTimestamp &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

function podPorts(pod: PodObject): PodPorts {
  const namedPorts: Record<string, number> = {};
  for (const container of pod.spec?.containers ?? []) {
    for (const port of container.ports ?? []) if (port.name && port.containerPort && !(port.name in namedPorts)) namedPorts[port.name] = port.containerPort;
  }
  return { name: pod.metadata?.name ?? '', namedPorts };
}

/** A workload's selector in labelSelector syntax. */
export function labelSelector(workload: WorkloadObject): string {
  const selector = workload.spec?.selector;
  const terms = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const expression of selector?.matchExpressions ?? []) {
    const values = (expression.values ?? []).join(',');
    if (expression.operator === 'In') terms.push(`${expression.key} in (${values})`);
    else if (expression.operator === 'NotIn') terms.push(`${expression.key} notin (${values})`);
    else if (expression.operator === 'Exists') terms.push(expression.key);
    else if (expression.operator === 'DoesNotExist') terms.push(`!${expression.key}`);
  }
  return terms.join(',');
}
