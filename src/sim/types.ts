/**
 * Shapes shared by the simulated cluster's parts: the scenario file (see
 * shared/design.md) and the hook between the API server and the kubelet.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RuntimeProfile } from './runtime-profile.js';
import type { WebSocket } from 'ws';

/** Built-in backends a container port can be served by. */
export type BuiltinBackend = 'http' | 'echo' | 'source' | 'sink' | 'closed';

export interface ScenarioPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  /**
   * What stands for this container port inside the pod: a real local TCP
   * address `HOST:PORT`, or a built-in backend name. Absent → `http`.
   * `closed` → nothing listens (the dial inside the pod is refused).
   */
  backend?: string;
}

export interface ScenarioPod {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  ip?: string;
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  ready?: boolean;
  hostname?: string;
  subdomain?: string;
  /** Set while the pod is being deleted gracefully (endpoint becomes terminating). */
  terminating?: boolean;
  /** Unscheduled pods have no node: the upgrade answers 400 "does not have a host assigned". */
  nodeName?: string | null;
  restartCount?: number;
  ports?: ScenarioPort[];
}

export interface ScenarioServicePort {
  name?: string;
  port: number;
  /** Number or the name of a container port. Absent → same as `port`. */
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface ScenarioService {
  name: string;
  namespace: string;
  /** `ClusterIP` (default), `NodePort`, `LoadBalancer` or `ExternalName`. */
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** An IP, `None` for headless; absent → allocated from 10.96.0.0/16. */
  clusterIP?: string;
  selector?: Record<string, string>;
  ports?: ScenarioServicePort[];
  externalName?: string;
}

export interface ScenarioUser {
  /** Name shown in RBAC messages (`User "NAME" cannot …`). */
  name: string;
  token: string;
  /**
   * What the user may do. Absent → everything. Each rule grants `verbs` on
   * `resources` (e.g. `pods`, `services`, `endpointslices`, `endpoints`,
   * `namespaces`, `deployments`, `pods/portforward`; the API group is not
   * checked) in `namespaces` (absent → all namespaces).
   */
  rules?: Array<{ verbs: string[]; resources: string[]; namespaces?: string[] }>;
}

/** A label selector as apps/v1 workloads carry it (metav1.LabelSelector). */
export interface ScenarioLabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

/**
 * A Deployment, StatefulSet or ReplicaSet. The simulator runs no workload
 * controllers: the pods stay in `pods`; the workload selects them by labels
 * and its status counts the ones it selects.
 */
export interface ScenarioWorkload {
  name: string;
  namespace: string;
  /** Must select something (apps/v1 rejects an empty selector). */
  selector: ScenarioLabelSelector;
  /** `spec.replicas`. Absent → 1, the API server's default. */
  replicas?: number;
  /** StatefulSets only: `spec.serviceName`, the governing headless service. */
  serviceName?: string;
}

/** The apps/v1 resources a scenario can hold, by their scenario key (= resource name). */
export type WorkloadResource = 'deployments' | 'statefulsets' | 'replicasets';

/**
 * Where pods' sandboxes are: `simulated` (default) — the simulated kubelet
 * serves port-forward, backends are local servers; `containerd` — every
 * running pod is a real CRI sandbox in a private containerd (root, Linux),
 * its ports served inside its own network namespace (see docs/real-runtime.md).
 */
export type SandboxMode = 'simulated' | 'containerd';

export interface Scenario {
  /** How the simulated runtime ends a failed stream pair (see runtime-profile.ts). Default `kubelet-1.32`. */
  runtime?: RuntimeProfile;
  /** Where pods' sandboxes are. Absent → `simulated`. */
  sandboxes?: SandboxMode;
  namespaces?: string[];
  pods: ScenarioPod[];
  services: ScenarioService[];
  deployments?: ScenarioWorkload[];
  statefulsets?: ScenarioWorkload[];
  replicasets?: ScenarioWorkload[];
  /** Extra users besides the admin user the simulator always creates. */
  users?: ScenarioUser[];
  /** The API server's feature gates. Absent → every gate at its 1.31+ default (on). */
  featureGates?: Partial<SimFeatureGates>;
}

/** What the API server tells the kubelet about the pod whose port-forward it accepted. */
export interface PortForwardTarget {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * The protocol a port-forward connection was accepted with: `SPDY/3.1` (the
 * POST upgrade), `SPDY/3.1+portforward.k8s.io` (SPDY tunnelled in a
 * WebSocket, KEP-4006), or the kubelet's own WebSocket channel protocol
 * (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or `channel` when the
 * client offered no subprotocol).
 */
export type TunnelProtocol = 'SPDY/3.1' | 'SPDY/3.1+portforward.k8s.io' | 'v4.channel.k8s.io' | 'v4.base64.channel.k8s.io' | 'channel';

/** Counters the simulator keeps for tests and benchmarks. */
export interface SimCounters {
  /** Port-forward upgrades answered with 101 (every protocol). */
  upgrades: number;
  /** The same, by the protocol accepted. */
  tunnels: Record<TunnelProtocol, number>;
  /** Port-forward SPDY connections currently open. */
  openConnections: number;
  /** SPDY streams opened by clients (error and data streams both count). */
  streams: number;
  /** Stream pairs that reached a backend. */
  pairs: number;
  /** Bytes from clients to pods. */
  bytesToPods: number;
  /** Bytes from pods to clients. */
  bytesFromPods: number;
}

/** The kubelet side of port-forward: takes over the upgraded socket. */
export interface PortForwardHandler {
  /** Called after the API server wrote `101 Switching Protocols`. `head` holds bytes read past the request. */
  accept(target: PortForwardTarget, socket: Duplex, head: Buffer): void;
  /**
   * The kubelet's own WebSocket protocol: one TCP connection to each of
   * `ports`, carried on channels 2i (data) and 2i+1 (errors); `base64` for
   * `v4.base64.channel.k8s.io` (text messages).
   */
  acceptChannels(target: PortForwardTarget, ws: WebSocket, ports: number[], base64: boolean): void;
}

/**
 * The kubelet's part for pods whose sandbox is real: the upgrade, once the
 * API server admitted it, is relayed to the runtime's streaming server.
 */
export interface PortForwardRelay {
  /** Whether pod `uid`'s port-forward goes to the real runtime. */
  owns(uid: string): boolean;
  /** Takes over the upgrade request (nothing was answered yet). */
  relay(target: PortForwardTarget, req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** A duplex connection as given by net or tls. */
export type Socket = Duplex;

/** Switches of the simulated API server, named after the real feature gates. */
export interface SimFeatureGates {
  /**
   * `PortForwardWebsockets` (beta and on since 1.31): a WebSocket GET offering
   * `SPDY/3.1+portforward.k8s.io` is tunnelled to the kubelet's SPDY. Off, the
   * API server acts as before 1.31: such a request reaches the kubelet's own
   * WebSocket protocol, which wants `?ports=` (400), and clients fall back to SPDY.
   */
  PortForwardWebsockets: boolean;
}
