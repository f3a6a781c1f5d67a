/**
 * apps/v1 Deployments, StatefulSets and ReplicaSets as the simulated API
 * server serves them. The simulator runs no workload controllers: a
 * scenario's pods are listed under `pods`, and a workload only selects them
 * by labels — what `kubectl port-forward deploy/x` and `kubesocks forward`
 * read (the selector, then the pods). Its status is derived from the pods it
 * selects, as the controllers would report it, so `kubectl get deploy` shows
 * READY counts that follow pod readiness.
 *
 * Simplifications, since no controller owns the pods: the pods carry no
 * ownerReferences, and status counts every selected pod rather than owned
 * ones; a Deployment reports only its `Available` condition.
 */
import { createHash } from 'node:crypto';
import type { KubeObject, PodObject } from './objects.js';
import { podSpecDefaults, timestamp } from './objects.js';
import type { ScenarioLabelSelector, ScenarioWorkload, WorkloadResource } from './types.js';

/** metav1.LabelSelector, as the scenario gives it. */
export type LabelSelector = ScenarioLabelSelector;

export interface PodTemplate {
  metadata: { creationTimestamp: null; labels: Record<string, string> };
  spec: { containers: Array<Record<string, unknown>>; [field: string]: unknown };
}

interface WorkloadSpec {
  replicas: number;
  selector: LabelSelector;
  template: PodTemplate;
  [field: string]: unknown;
}

export interface DeploymentCondition {
  type: string;
  status: 'True' | 'False';
  lastUpdateTime: string;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** Every count is omitempty in apps/v1 DeploymentStatus. */
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: DeploymentCondition[];
}

export interface StatefulSetStatus {
  observedGeneration?: number;
  replicas: number;
  readyReplicas?: number;
  currentReplicas?: number;
  updatedReplicas?: number;
  currentRevision?: string;
  updateRevision?: string;
  collisionCount?: number;
  availableReplicas: number;
}

export interface ReplicaSetStatus {
  replicas: number;
  fullyLabeledReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  observedGeneration?: number;
}

export interface DeploymentObject extends KubeObject {
  kind: 'Deployment';
  spec: WorkloadSpec;
  status: DeploymentStatus;
}

export interface StatefulSetObject extends KubeObject {
  kind: 'StatefulSet';
  spec: WorkloadSpec & { serviceName?: string };
  status: StatefulSetStatus;
}

export interface ReplicaSetObject extends KubeObject {
  kind: 'ReplicaSet';
  spec: WorkloadSpec;
  status: ReplicaSetStatus;
}

export type WorkloadObject = DeploymentObject | StatefulSetObject | ReplicaSetObject;

/** What the simulator remembers about a workload besides its scenario entry. */
export interface WorkloadRecord {
  resource: WorkloadResource;
  spec: ScenarioWorkload;
  uid: string;
  createdAt: string;
  /** metadata.generation: 1, bumped when a replacement changes the spec. */
  generation: number;
}

export const WORKLOAD_RESOURCES: readonly WorkloadResource[] = ['deployments', 'statefulsets', 'replicasets'];

/** spec.replicas: the API server defaults an absent value to 1. */
export function workloadReplicas(spec: ScenarioWorkload): number {
  return spec.replicas ?? 1;
}

/** The selector as the API serves it (only the fields the scenario set). */
function selectorObject(selector: ScenarioLabelSelector): LabelSelector {
  return {
    ...(selector.matchLabels && Object.keys(selector.matchLabels).length > 0 ? { matchLabels: { ...selector.matchLabels } } : {}),
    ...(selector.matchExpressions && selector.matchExpressions.length > 0
      ? { matchExpressions: selector.matchExpressions.map((e) => ({ key: e.key, operator: e.operator, ...(e.values ? { values: [...e.values] } : {}) })) }
      : {}),
  };
}

/** Template labels that satisfy the selector, as validation demands: matchLabels plus the first value of each `In`. */
function templateLabels(selector: ScenarioLabelSelector): Record<string, string> {
  const labels: Record<string, string> = { ...(selector.matchLabels ?? {}) };
  for (const e of selector.matchExpressions ?? []) {
    const first = e.values?.[0];
    if (e.operator === 'In' && first !== undefined && labels[e.key] === undefined) labels[e.key] = first;
  }
  return labels;
}

/** The pod template with the defaults the API server fills in. */
function podTemplate(selector: ScenarioLabelSelector): PodTemplate {
  return {
    metadata: { creationTimestamp: null, labels: templateLabels(selector) },
    spec: {
      ...podSpecDefaults(),
      securityContext: {},
      schedulerName: 'default-scheduler',
    },
  };
}

const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** A ControllerRevision-style name `NAME-HASH` (rand.SafeEncodeString of a hash), stable per uid. */
function revisionName(name: string, uid: string): string {
  const digest = createHash('sha256').update(uid).digest();
  let hash = '';
  for (let i = 0; i < 10; i++) hash += SAFE_ALPHABET[(digest[i] ?? 0) % SAFE_ALPHABET.length];
  return `${name}-${hash}`;
}

/** The workload object with the server's defaults; status comes from workloadStatus(). */
export function workloadObject(record: WorkloadRecord, pods: PodObject[], previous?: WorkloadObject): WorkloadObject {
  const { spec, resource } = record;
  const metadata = {
    name: spec.name,
    namespace: spec.namespace,
    uid: record.uid,
    resourceVersion: '',
    generation: record.generation,
    creationTimestamp: record.createdAt,
    ...(resource === 'deployments' ? { annotations: { 'deployment.kubernetes.io/revision': '1' } } : {}),
  };
  const common = { replicas: workloadReplicas(spec), selector: selectorObject(spec.selector), template: podTemplate(spec.selector) };
  let object: WorkloadObject;
  switch (resource) {
    case 'deployments':
      object = {
        kind: 'Deployment',
        apiVersion: 'apps/v1',
        metadata,
        spec: {
          ...common,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
          revisionHistoryLimit: 10,
          progressDeadlineSeconds: 600,
        },
        status: {},
      };
      break;
    case 'statefulsets':
      object = {
        kind: 'StatefulSet',
        apiVersion: 'apps/v1',
        metadata,
        spec: {
          ...common,
          ...(spec.serviceName !== undefined ? { serviceName: spec.serviceName } : {}),
          podManagementPolicy: 'OrderedReady',
          updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
          revisionHistoryLimit: 10,
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        },
        status: { replicas: 0, availableReplicas: 0 },
      };
      break;
    case 'replicasets':
      object = { kind: 'ReplicaSet', apiVersion: 'apps/v1', metadata, spec: common, status: { replicas: 0 } };
      break;
  }
  return withStatus(object, pods, previous);
}

function podReady(pod: PodObject): boolean {
  return pod.status.phase === 'Running' && pod.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Leaves out zero counts, as `omitempty` int32 fields serialize. */
function nonZero<K extends string>(counts: Record<K, number>): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const [k, v] of Object.entries(counts) as Array<[K, number]>) if (v !== 0) out[k] = v;
  return out;
}

/**
 * `object` with the status its controller would write for `pods` (the pods
 * its selector matches). Condition times are kept from `previous` while the
 * condition's status stays the same.
 */
export function withStatus<T extends WorkloadObject>(object: T, pods: PodObject[], previous?: WorkloadObject): T {
  const live = pods.filter((p) => p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed');
  // controller.FilterActivePods: terminating pods no longer count as replicas.
  const active = live.filter((p) => p.metadata.deletionTimestamp === undefined);
  const ready = active.filter(podReady).length;
  const generation = object.metadata.generation ?? 1;
  const desired = object.spec.replicas;
  let status: WorkloadObject['status'];
  switch (object.kind) {
    case 'Deployment': {
      // deploymentutil.MaxUnavailable: 25% of the replicas, rounded down.
      const available = ready >= desired - Math.floor(desired * 0.25);
      const old = (previous?.status as DeploymentStatus | undefined)?.conditions?.find((c) => c.type === 'Available');
      const statusText = available ? 'True' : 'False';
      const at = old && old.status === statusText ? old.lastTransitionTime : timestamp();
      const condition: DeploymentCondition = {
        type: 'Available',
        status: statusText,
        lastUpdateTime: old && old.status === statusText ? old.lastUpdateTime : at,
        lastTransitionTime: at,
        reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
        message: available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.',
      };
      status = {
        observedGeneration: generation,
        ...nonZero({
          replicas: active.length,
          updatedReplicas: active.length,
          readyReplicas: ready,
          availableReplicas: ready,
          unavailableReplicas: Math.max(desired - ready, 0),
        }),
        conditions: [condition],
      } satisfies DeploymentStatus;
      break;
    }
    case 'StatefulSet': {
      const revision = revisionName(object.metadata.name, object.metadata.uid);
      status = {
        observedGeneration: generation,
        replicas: live.length,
        ...nonZero({ readyReplicas: ready, currentReplicas: active.length }),
        currentRevision: revision,
        ...nonZero({ updatedReplicas: active.length }),
        updateRevision: revision,
        collisionCount: 0,
        availableReplicas: ready,
      } satisfies StatefulSetStatus;
      break;
    }
    case 'ReplicaSet':
      status = {
        replicas: active.length,
        ...nonZero({ fullyLabeledReplicas: active.length, readyReplicas: ready, availableReplicas: ready }),
        observedGeneration: generation,
      } satisfies ReplicaSetStatus;
      break;
  }
  return { ...object, status } as T;
}
