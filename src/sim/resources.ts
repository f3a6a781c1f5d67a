/**
 * The resources the simulated API server serves, described once: discovery
 * documents, URL routing, list kinds and Status messages all read this table.
 */
import type { EndpointSliceObject, EndpointsObject, NamespaceObject, PodObject, ServiceObject } from './objects.js';
import type { DeploymentObject, ReplicaSetObject, StatefulSetObject } from './workloads.js';

export type ResourceName = 'pods' | 'services' | 'endpoints' | 'endpointslices' | 'namespaces' | 'deployments' | 'statefulsets' | 'replicasets';

/** The object type stored under each resource. */
export interface ResourceTypes {
  pods: PodObject;
  services: ServiceObject;
  endpoints: EndpointsObject;
  endpointslices: EndpointSliceObject;
  namespaces: NamespaceObject;
  deployments: DeploymentObject;
  statefulsets: StatefulSetObject;
  replicasets: ReplicaSetObject;
}

export interface ResourceInfo {
  name: ResourceName;
  /** API group: `` for the core group. */
  group: string;
  version: string;
  kind: string;
  listKind: string;
  singularName: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
}

export const RESOURCES: Readonly<Record<ResourceName, ResourceInfo>> = {
  pods: {
    name: 'pods',
    group: '',
    version: 'v1',
    kind: 'Pod',
    listKind: 'PodList',
    singularName: 'pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
  },
  services: {
    name: 'services',
    group: '',
    version: 'v1',
    kind: 'Service',
    listKind: 'ServiceList',
    singularName: 'service',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
  },
  endpoints: {
    name: 'endpoints',
    group: '',
    version: 'v1',
    kind: 'Endpoints',
    listKind: 'EndpointsList',
    singularName: 'endpoints',
    namespaced: true,
    shortNames: ['ep'],
    categories: [],
  },
  namespaces: {
    name: 'namespaces',
    group: '',
    version: 'v1',
    kind: 'Namespace',
    listKind: 'NamespaceList',
    singularName: 'namespace',
    namespaced: false,
    shortNames: ['ns'],
    categories: [],
  },
  // Group order as a real server lists them: apps before discovery.k8s.io.
  deployments: {
    name: 'deployments',
    group: 'apps',
    version: 'v1',
    kind: 'Deployment',
    listKind: 'DeploymentList',
    singularName: 'deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
  },
  replicasets: {
    name: 'replicasets',
    group: 'apps',
    version: 'v1',
    kind: 'ReplicaSet',
    listKind: 'ReplicaSetList',
    singularName: 'replicaset',
    namespaced: true,
    shortNames: ['rs'],
    categories: ['all'],
  },
  statefulsets: {
    name: 'statefulsets',
    group: 'apps',
    version: 'v1',
    kind: 'StatefulSet',
    listKind: 'StatefulSetList',
    singularName: 'statefulset',
    namespaced: true,
    shortNames: ['sts'],
    categories: ['all'],
  },
  endpointslices: {
    name: 'endpointslices',
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    listKind: 'EndpointSliceList',
    singularName: 'endpointslice',
    namespaced: true,
    shortNames: [],
    categories: [],
  },
};

/** `v1` or `discovery.k8s.io/v1`. */
export function apiVersionOf(info: ResourceInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`;
}

/** The resource named `name` in API group `group`/`version`, if this server serves it. */
export function findResource(group: string, version: string, name: string): ResourceInfo | undefined {
  for (const info of Object.values(RESOURCES)) {
    if (info.group === group && info.version === version && info.name === name) return info;
  }
  return undefined;
}
