/**
 * API objects as the simulated API server serves them: Pods, Services and
 * Namespaces rendered from scenario entries, with the fields and defaults a
 * real cluster fills in (kubelet status, scheduler node, allocated IPs), so
 * clients written against real clusters read them unchanged; and the shapes
 * of the controllers' EndpointSlices and Endpoints (workloads: workloads.ts).
 */
import type { ScenarioPod, ScenarioService } from './types.js';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  generateName?: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  /** Bumped on every spec change of objects that have one (workloads); absent elsewhere. */
  generation?: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface KubeObject {
  kind: string;
  apiVersion: string;
  metadata: ObjectMeta;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: string;
}

export interface ContainerState {
  running?: { startedAt: string };
  waiting?: { reason: string; message?: string };
  terminated?: { exitCode: number; reason: string; startedAt: string; finishedAt: string };
}

export interface ContainerStatus {
  name: string;
  state: ContainerState;
  lastState: ContainerState;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  containerID?: string;
  started: boolean;
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

export interface PodObject extends KubeObject {
  kind: 'Pod';
  spec: {
    containers: Array<{ name: string; image: string; ports?: ContainerPort[]; [field: string]: unknown }>;
    nodeName?: string;
    hostname?: string;
    subdomain?: string;
    restartPolicy: string;
    [field: string]: unknown;
  };
  status: {
    phase: string;
    conditions: PodCondition[];
    hostIP?: string;
    hostIPs?: Array<{ ip: string }>;
    podIP?: string;
    podIPs?: Array<{ ip: string }>;
    startTime?: string;
    containerStatuses?: ContainerStatus[];
    qosClass: string;
  };
}

export interface ServicePort {
  name?: string;
  protocol: string;
  port: number;
  targetPort: number | string;
  nodePort?: number;
}

export interface ServiceObject extends KubeObject {
  kind: 'Service';
  spec: {
    ports?: ServicePort[];
    selector?: Record<string, string>;
    clusterIP?: string;
    clusterIPs?: string[];
    type: string;
    externalName?: string;
    sessionAffinity: string;
    [field: string]: unknown;
  };
  status: { loadBalancer: Record<string, unknown> };
}

export interface NamespaceObject extends KubeObject {
  kind: 'Namespace';
  spec: { finalizers: string[] };
  status: { phase: 'Active' | 'Terminating' };
}

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface Endpoint {
  addresses: string[];
  conditions: EndpointConditions;
  hostname?: string;
  targetRef: { kind: 'Pod'; namespace: string; name: string; uid: string };
  nodeName?: string;
}

export interface EndpointPort {
  name: string;
  protocol: string;
  port: number;
}

export interface EndpointSliceObject extends KubeObject {
  kind: 'EndpointSlice';
  addressType: 'IPv4' | 'IPv6';
  /** `null` in the placeholder slice of a service that selects no pods, as the real controller writes it. */
  endpoints: Endpoint[] | null;
  ports: EndpointPort[] | null;
}

/** core/v1 EndpointAddress. */
export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: { kind: 'Pod'; namespace: string; name: string; uid: string };
}

/** core/v1 EndpointPort. */
export interface EndpointsPort {
  name?: string;
  port: number;
  protocol: string;
}

/** core/v1 EndpointSubset: addresses that all offer the same ports. */
export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointsPort[];
}

/** core/v1 Endpoints (named after its service). `subsets` is left out when empty (omitempty). */
export interface EndpointsObject extends KubeObject {
  kind: 'Endpoints';
  subsets?: EndpointSubset[];
}

/** The node every scheduled pod lands on unless the scenario names another. */
export const DEFAULT_NODE = 'sim-node-1';
const NODE_IP = '172.18.0.2';
export const CONTAINER_NAME = 'main';

/** The one container and the pod-level fields the API server defaults, shared by pods and pod templates. */
export function podSpecDefaults(ports?: ContainerPort[]) {
  return {
    containers: [
      {
        name: CONTAINER_NAME,
        image: IMAGE,
        ...(ports && ports.length > 0 ? { ports } : {}),
        resources: {},
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent',
      },
    ],
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
  };
}
export const IMAGE = 'registry.k8s.io/kubesocks/sim-backend:1.0';
const IMAGE_ID = 'registry.k8s.io/kubesocks/sim-backend@sha256:5e0c1a0bd3f6c4f4a4c6e1d1c2f7c1e9a3d2b8f0e4a6c2d9b1f3e5a7c9d0b2f4';

/** RFC 3339 in whole seconds, as metav1.Time serializes. */
export function timestamp(date?: Date): string {
  if (date) return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  // The current second's text, formatted once per second: a big scenario stamps tens of thousands of objects.
  const second = Math.floor(Date.now() / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastText = new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return lastText;
}

let lastSecond = -1;
let lastText = '';

/** What the simulator remembers about a pod besides its scenario entry. */
export interface PodRecord {
  spec: ScenarioPod;
  uid: string;
  createdAt: string;
  /** The pod IP: the scenario's, or one allocated once the pod got a sandbox. */
  ip: string | undefined;
  /** Set while the pod is terminating. */
  deletionTimestamp: string | undefined;
}

export function podPhase(spec: ScenarioPod): NonNullable<ScenarioPod['phase']> {
  return spec.phase ?? 'Running';
}

/** A pod is Ready only while Running: a scenario `ready: true` on a Pending pod means nothing yet. */
export function podReady(spec: ScenarioPod): boolean {
  return podPhase(spec) === 'Running' && spec.ready !== false;
}

/** `null` → unscheduled; absent → the default node. */
export function podNodeName(spec: ScenarioPod): string | undefined {
  if (spec.nodeName === null) return undefined;
  return spec.nodeName ?? DEFAULT_NODE;
}

/** Whether the pod has a sandbox and therefore an IP: scheduled and past Pending. */
export function podHasSandbox(spec: ScenarioPod): boolean {
  return podNodeName(spec) !== undefined && podPhase(spec) !== 'Pending';
}

export function podObject(record: PodRecord): PodObject {
  const { spec, createdAt } = record;
  const phase = podPhase(spec);
  const ready = podReady(spec);
  const nodeName = podNodeName(spec);
  const ports: ContainerPort[] | undefined = spec.ports?.map((p) => ({
    ...(p.name !== undefined ? { name: p.name } : {}),
    containerPort: p.containerPort,
    protocol: p.protocol ?? 'TCP',
  }));

  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      uid: record.uid,
      resourceVersion: '',
      creationTimestamp: createdAt,
      ...(record.deletionTimestamp ? { deletionTimestamp: record.deletionTimestamp, deletionGracePeriodSeconds: 30 } : {}),
      ...(spec.labels && Object.keys(spec.labels).length > 0 ? { labels: { ...spec.labels } } : {}),
    },
    spec: {
      ...podSpecDefaults(ports),
      serviceAccountName: 'default',
      serviceAccount: 'default',
      ...(nodeName !== undefined ? { nodeName } : {}),
      securityContext: {},
      ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
      ...(spec.subdomain !== undefined ? { subdomain: spec.subdomain } : {}),
      schedulerName: 'default-scheduler',
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase,
      conditions: podConditions(spec, createdAt, ready),
      ...(nodeName !== undefined ? { hostIP: NODE_IP, hostIPs: [{ ip: NODE_IP }] } : {}),
      ...(record.ip !== undefined ? { podIP: record.ip, podIPs: [{ ip: record.ip }] } : {}),
      ...(nodeName !== undefined ? { startTime: createdAt } : {}),
      ...(nodeName !== undefined ? { containerStatuses: [containerStatus(record, ready)] } : {}),
      qosClass: 'BestEffort',
    },
  };
}

function condition(type: string, status: boolean, at: string, reason?: string, message?: string): PodCondition {
  return {
    type,
    status: status ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: at,
    ...(reason !== undefined ? { reason } : {}),
    ...(message !== undefined ? { message } : {}),
  };
}

function podConditions(spec: ScenarioPod, at: string, ready: boolean): PodCondition[] {
  if (podNodeName(spec) === undefined) {
    return [condition('PodScheduled', false, at, 'Unschedulable', '0/1 nodes are available: 1 node(s) were unschedulable.')];
  }
  const phase = podPhase(spec);
  const sandbox = phase !== 'Pending';
  const notReadyReason = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
  const notReadyMessage = phase === 'Succeeded' ? undefined : `containers with unready status: [${CONTAINER_NAME}]`;
  return [
    condition('PodReadyToStartContainers', sandbox && phase === 'Running', at),
    condition('Initialized', true, at),
    ready ? condition('Ready', true, at) : condition('Ready', false, at, notReadyReason, notReadyMessage),
    ready ? condition('ContainersReady', true, at) : condition('ContainersReady', false, at, notReadyReason, notReadyMessage),
    condition('PodScheduled', true, at),
  ];
}

function containerStatus(record: PodRecord, ready: boolean): ContainerStatus {
  const { spec, createdAt } = record;
  const restartCount = spec.restartCount ?? 0;
  // 64 hex digits, as containerd's ids, stable per pod (the uid's 32, twice).
  const hex = record.uid.replace(/-/g, '');
  const containerID = `containerd://${hex}${hex}`;
  const lastState: ContainerState =
    restartCount > 0 ? { terminated: { exitCode: 137, reason: 'Error', startedAt: createdAt, finishedAt: createdAt } } : {};
  const base = { name: CONTAINER_NAME, lastState, restartCount, image: IMAGE, imageID: IMAGE_ID };
  switch (podPhase(spec)) {
    case 'Running':
      return { ...base, state: { running: { startedAt: createdAt } }, ready, containerID, started: true };
    case 'Pending':
      return { ...base, imageID: '', state: { waiting: { reason: 'ContainerCreating' } }, ready: false, started: false };
    case 'Succeeded':
      return {
        ...base,
        state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: createdAt, finishedAt: createdAt } },
        ready: false,
        containerID,
        started: false,
      };
    case 'Failed':
      return {
        ...base,
        state: { terminated: { exitCode: 1, reason: 'Error', startedAt: createdAt, finishedAt: createdAt } },
        ready: false,
        containerID,
        started: false,
      };
    case 'Unknown':
      return { ...base, state: {}, ready: false, started: false };
  }
}

/** What the simulator remembers about a service besides its scenario entry. */
export interface ServiceRecord {
  spec: ScenarioService;
  uid: string;
  createdAt: string;
  /** Allocated or given; undefined for ExternalName. `None` for headless. */
  clusterIP: string | undefined;
  /** One per port for NodePort/LoadBalancer services. */
  nodePorts: number[];
}

/** An ExternalName service is one whose type says so (or, as a scenario shorthand, that only names an external host). */
export function serviceType(spec: ScenarioService): NonNullable<ScenarioService['type']> {
  return spec.type ?? (spec.externalName !== undefined ? 'ExternalName' : 'ClusterIP');
}

export function serviceObject(record: ServiceRecord): ServiceObject {
  const { spec } = record;
  const type = serviceType(spec);
  const ports: ServicePort[] | undefined = spec.ports?.map((p, i) => {
    const nodePort = record.nodePorts[i];
    return {
      ...(p.name !== undefined ? { name: p.name } : {}),
      protocol: p.protocol ?? 'TCP',
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      ...(nodePort !== undefined ? { nodePort } : {}),
    };
  });
  const external = type === 'ExternalName';
  return {
    kind: 'Service',
    apiVersion: 'v1',
    metadata: { name: spec.name, namespace: spec.namespace, uid: record.uid, resourceVersion: '', creationTimestamp: record.createdAt },
    spec: {
      ...(ports && ports.length > 0 ? { ports } : {}),
      ...(spec.selector && !external ? { selector: { ...spec.selector } } : {}),
      ...(record.clusterIP !== undefined ? { clusterIP: record.clusterIP, clusterIPs: [record.clusterIP] } : {}),
      type,
      ...(external ? { externalName: spec.externalName ?? '' } : {}),
      sessionAffinity: 'None',
      ...(external ? {} : { ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', internalTrafficPolicy: 'Cluster' }),
      ...(type === 'NodePort' || type === 'LoadBalancer' ? { externalTrafficPolicy: 'Cluster' } : {}),
    },
    status: { loadBalancer: {} },
  };
}

export function namespaceObject(name: string, uid: string, createdAt: string): NamespaceObject {
  return {
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: {
      name,
      uid,
      resourceVersion: '',
      creationTimestamp: createdAt,
      labels: { 'kubernetes.io/metadata.name': name },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}
