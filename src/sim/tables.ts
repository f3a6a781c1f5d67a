/**
 * Server-side printing: the `meta.k8s.io/v1 Table` kubectl asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. kubectl prints the
 * cells as given, so columns and cell text follow
 * pkg/printers/internalversion/printers.go (printPod, printService,
 * printEndpoints, printEndpointSlice, printNamespace, printDeployment,
 * printStatefulSet, printReplicaSet) and apimachinery's duration.HumanDuration.
 * Server-side printing always generates the wide (priority 1) columns;
 * kubectl shows them with `-o wide`.
 */
import type { EndpointSliceObject, EndpointsObject, KubeObject, NamespaceObject, PodObject, ServiceObject } from './objects.js';
import type { ResourceName } from './resources.js';
import { formatLabelSelector } from './selectors.js';
import type { DeploymentObject, ReplicaSetObject, StatefulSetObject, WorkloadObject } from './workloads.js';

export interface TableColumn {
  name: string;
  type: 'string' | 'integer';
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: Array<string | number>;
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: string;
  metadata: { resourceVersion?: string };
  columnDefinitions: TableColumn[] | null;
  rows: TableRow[];
}

/** `?includeObject=`: what each row carries besides its cells (default Metadata). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableOptions {
  /** `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`, whichever the client asked for. */
  apiVersion: string;
  includeObject: IncludeObject;
  /** Leave out column definitions (later events of a watch). */
  noHeaders?: boolean;
}

function column(name: string, description: string, priority = 0, format = ''): TableColumn {
  return { name, type: 'string', format, description, priority };
}

const NAME = column('Name', 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names', 0, 'name');
const AGE = column('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata');

const READY_PODS = column('Ready', 'Number of the pod with ready state');
const CONTAINERS = column('Containers', 'Names of each container in the template.', 1);
const IMAGES = column('Images', 'Images referenced by each container in the template.', 1);

const COLUMNS: Record<ResourceName, TableColumn[]> = {
  pods: [
    NAME,
    column('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
    column('Status', 'The aggregate status of the containers in this pod.'),
    column('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
    AGE,
    column('IP', 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
    column('Node', 'NodeName indicates in which node this pod is scheduled.', 1),
    column('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node.', 1),
    column('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', 1),
  ],
  services: [
    NAME,
    column('Type', 'The type of the service.'),
    column('Cluster-IP', 'The cluster ip of the service.'),
    column('External-IP', 'The external ip of the service.'),
    column('Port(s)', 'The ports of the service.'),
    AGE,
    column('Selector', 'Route service traffic to pods with label keys and values matching this selector.', 1),
  ],
  endpointslices: [
    NAME,
    column('AddressType', 'Type of address contained in the EndpointSlice.'),
    column('Ports', 'Ports of this EndpointSlice.'),
    column('Endpoints', 'Endpoints of this EndpointSlice.'),
    AGE,
  ],
  endpoints: [
    NAME,
    column(
      'Endpoints',
      'The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.',
    ),
    AGE,
  ],
  namespaces: [NAME, column('Status', 'The status of the namespace'), AGE],
  deployments: [
    NAME,
    READY_PODS,
    column('Up-to-date', 'Total number of non-terminating pods targeted by this deployment that have the desired template spec.'),
    column('Available', 'Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.'),
    AGE,
    CONTAINERS,
    IMAGES,
    column('Selector', "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.", 1),
  ],
  statefulsets: [NAME, READY_PODS, AGE, CONTAINERS, IMAGES],
  replicasets: [
    NAME,
    { ...column('Desired', 'Number of desired pods'), type: 'integer' },
    { ...column('Current', 'Number of actual replicas'), type: 'integer' },
    { ...column('Ready', 'Number of ready replicas'), type: 'integer' },
    AGE,
    CONTAINERS,
    IMAGES,
    column(
      'Selector',
      "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
      1,
    ),
  ],
};

/** duration.HumanDuration: `45s`, `3m20s`, `2h5m`, `3d4h`, … */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.floor(hours / 24) % 365;
    const years = Math.floor(hours / 24 / 365);
    return days === 0 ? `${years}y` : `${years}y${days}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(ts: string | undefined, now: number): string {
  if (!ts) return '<unknown>';
  return humanDuration(now - Date.parse(ts));
}

function podCells(pod: PodObject, now: number): string[] {
  const statuses = pod.status.containerStatuses ?? [];
  let reason = pod.status.phase;
  let ready = 0;
  let restarts = 0;
  let lastRestart: string | undefined;
  for (const cs of [...statuses].reverse()) {
    restarts += cs.restartCount;
    const finished = cs.lastState.terminated?.finishedAt;
    if (finished && (!lastRestart || finished > lastRestart)) lastRestart = finished;
    if (cs.state.waiting?.reason) reason = cs.state.waiting.reason;
    else if (cs.state.terminated?.reason) reason = cs.state.terminated.reason;
    else if (cs.ready && cs.state.running) ready++;
  }
  if (pod.metadata.deletionTimestamp) reason = 'Terminating';
  const restartText = lastRestart ? `${restarts} (${age(lastRestart, now)} ago)` : String(restarts);
  return [
    pod.metadata.name,
    `${ready}/${pod.spec.containers.length}`,
    reason,
    restartText,
    age(pod.metadata.creationTimestamp, now),
    pod.status.podIP ?? '<none>',
    pod.spec.nodeName ?? '<none>',
    '<none>',
    '<none>',
  ];
}

function serviceCells(svc: ServiceObject, now: number): string[] {
  const { spec } = svc;
  let external = '<none>';
  if (spec.type === 'ExternalName') external = spec.externalName ?? '<none>';
  else if (spec.type === 'LoadBalancer') external = '<pending>';
  const ports = (spec.ports ?? []).map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol}` : `${p.port}/${p.protocol}`));
  const selector = Object.entries(spec.selector ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return [
    svc.metadata.name,
    spec.type,
    spec.clusterIP || '<none>',
    external,
    ports.length > 0 ? ports.join(',') : '<none>',
    age(svc.metadata.creationTimestamp, now),
    selector || '<none>',
  ];
}

/** printers.go listWithMoreString: at most three entries, then `+ N more...`. */
function listWithMore(items: string[]): string {
  const max = 3;
  if (items.length === 0) return '<unset>';
  const shown = items.slice(0, max).join(',');
  return items.length > max ? `${shown} + ${items.length - max} more...` : shown;
}

function endpointSliceCells(slice: EndpointSliceObject, now: number): string[] {
  const ports = (slice.ports ?? []).map((p) => String(p.port));
  const addresses = (slice.endpoints ?? []).flatMap((e) => e.addresses);
  return [slice.metadata.name, slice.addressType, listWithMore(ports), listWithMore(addresses), age(slice.metadata.creationTimestamp, now)];
}

/** printers.go formatEndpoints: `IP:PORT` per address and port (bare IPs without ports), at most three, then `+ N more...`. */
function endpointsCell(endpoints: EndpointsObject): string {
  const subsets = endpoints.subsets ?? [];
  if (subsets.length === 0) return '<none>';
  const max = 3;
  const list: string[] = [];
  let count = 0;
  let more = false;
  const add = (text: string) => {
    if (list.length === max) more = true;
    else list.push(text);
  };
  for (const subset of subsets) {
    const addresses = subset.addresses ?? [];
    if ((subset.ports ?? []).length === 0) {
      count += addresses.length;
      for (const a of addresses) add(a.ip);
      continue;
    }
    for (const port of subset.ports ?? []) {
      count += addresses.length;
      for (const a of addresses) add(a.ip.includes(':') ? `[${a.ip}]:${port.port}` : `${a.ip}:${port.port}`);
    }
  }
  const text = list.join(',');
  return more ? `${text} + ${count - max} more...` : text;
}

function namespaceCells(ns: NamespaceObject, now: number): string[] {
  return [ns.metadata.name, ns.status.phase, age(ns.metadata.creationTimestamp, now)];
}

/** layoutContainerCells: container names and images, comma-separated. */
function containerCells(workload: WorkloadObject): [string, string] {
  const containers = workload.spec.template.spec.containers;
  return [containers.map((c) => String(c.name)).join(','), containers.map((c) => String(c.image)).join(',')];
}

function deploymentCells(d: DeploymentObject, now: number): Array<string | number> {
  const selector = formatLabelSelector(d.spec.selector);
  return [
    d.metadata.name,
    `${d.status.readyReplicas ?? 0}/${d.spec.replicas}`,
    d.status.updatedReplicas ?? 0,
    d.status.availableReplicas ?? 0,
    age(d.metadata.creationTimestamp, now),
    ...containerCells(d),
    // printDeployment prints selector.String(): empty, not <none>.
    selector === '<none>' ? '' : selector,
  ];
}

function statefulSetCells(s: StatefulSetObject, now: number): Array<string | number> {
  return [s.metadata.name, `${s.status.readyReplicas ?? 0}/${s.spec.replicas}`, age(s.metadata.creationTimestamp, now), ...containerCells(s)];
}

function replicaSetCells(r: ReplicaSetObject, now: number): Array<string | number> {
  return [
    r.metadata.name,
    r.spec.replicas,
    r.status.replicas,
    r.status.readyReplicas ?? 0,
    age(r.metadata.creationTimestamp, now),
    ...containerCells(r),
    formatLabelSelector(r.spec.selector),
  ];
}

function cellsFor(resource: ResourceName, object: KubeObject, now: number): Array<string | number> {
  switch (resource) {
    case 'pods':
      return podCells(object as PodObject, now);
    case 'services':
      return serviceCells(object as ServiceObject, now);
    case 'endpointslices':
      return endpointSliceCells(object as EndpointSliceObject, now);
    case 'namespaces':
      return namespaceCells(object as NamespaceObject, now);
    case 'endpoints':
      return [object.metadata.name, endpointsCell(object as EndpointsObject), age(object.metadata.creationTimestamp, now)];
    case 'deployments':
      return deploymentCells(object as DeploymentObject, now);
    case 'statefulsets':
      return statefulSetCells(object as StatefulSetObject, now);
    case 'replicasets':
      return replicaSetCells(object as ReplicaSetObject, now);
  }
}

function rowObject(object: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return object;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
}

export function toTable(resource: ResourceName, objects: KubeObject[], options: TableOptions, resourceVersion?: string): Table {
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: options.apiVersion,
    metadata: resourceVersion !== undefined ? { resourceVersion } : {},
    columnDefinitions: options.noHeaders ? null : COLUMNS[resource],
    rows: objects.map((object) => {
      const row: TableRow = { cells: cellsFor(resource, object, now) };
      const embedded = rowObject(object, options.includeObject);
      if (embedded !== undefined) row.object = embedded;
      return row;
    }),
  };
}
