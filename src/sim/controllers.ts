/**
 * The simulated controller manager: keeps derived objects in line with pods
 * and services — EndpointSlices (endpointslices.ts), v1 Endpoints
 * (endpoints.ts) and workload status (workloads.ts).
 *
 * Like a controller's informer caches, it keeps indexes fed by the store's
 * change events — pods by namespace and label pair, services by namespace and
 * selector pair, slices by service, workloads by namespace — so one change
 * costs work proportional to what it touches, and a cluster of 10,000
 * services over 10,000 pods is derived in well under a second.
 *
 * Its listener only reads; writes happen when the cluster calls one of the
 * reconcile methods after its own write, so watchers see events in
 * resourceVersion order.
 */
import { reconcileServiceSlices, managedServiceName } from './endpointslices.js';
import { desiredEndpoints } from './endpoints.js';
import type { EndpointSliceObject, PodObject, ServiceObject } from './objects.js';
import { matchesLabelSelector, matchesSelectorMap } from './selectors.js';
import type { ObjectStore, StoreEvent } from './store.js';
import type { ScenarioLabelSelector, WorkloadResource } from './types.js';
import type { WorkloadObject } from './workloads.js';
import { WORKLOAD_RESOURCES, withStatus } from './workloads.js';

type Labels = Record<string, string> | undefined;

/** `Map<K, Set<V>>` helpers. */
function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

function pairs(labels: Labels): string[] {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`);
}

function byName<T extends { metadata: { name: string } }>(a: T, b: T): number {
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Services whose selector is empty are indexed under this pair: they match every pod. */
const EVERY_POD = '';

export class Controllers {
  readonly #store: ObjectStore;
  /** namespace → name → pod. */
  readonly #pods = new Map<string, Map<string, PodObject>>();
  /** `ns/k=v` → names of the pods in ns labelled k=v. */
  readonly #podsByLabel = new Map<string, Set<string>>();
  /** `ns/k=v` (or `ns/` for an empty selector) → names of services whose selector has that pair. */
  readonly #servicesBySelector = new Map<string, Set<string>>();
  /** `ns/service` → names of the slices the endpoint-slice controller manages for it. */
  readonly #slicesByService = new Map<string, Set<string>>();
  /** namespace → `resource/name` of its workloads. */
  readonly #workloads = new Map<string, Set<string>>();
  readonly #unsubscribe: () => void;

  constructor(store: ObjectStore) {
    this.#store = store;
    this.#unsubscribe = store.subscribe((event) => this.#index(event));
  }

  close(): void {
    this.#unsubscribe();
  }

  /** The pods of `namespace` that `selector` (a service's map) matches, sorted by name. */
  podsMatching(namespace: string, selector: Record<string, string>): PodObject[] {
    const inNamespace = this.#pods.get(namespace);
    if (!inNamespace) return [];
    const wanted = pairs(selector);
    if (wanted.length === 0) return [...inNamespace.values()].sort(byName);
    // The rarest pair narrows the candidates; the whole selector then decides.
    let smallest: Set<string> | undefined;
    for (const pair of wanted) {
      const names = this.#podsByLabel.get(key(namespace, pair));
      if (!names) return [];
      if (!smallest || names.size < smallest.size) smallest = names;
    }
    const out: PodObject[] = [];
    for (const name of smallest ?? []) {
      const pod = inNamespace.get(name);
      if (pod && matchesSelectorMap(selector, pod.metadata.labels)) out.push(pod);
    }
    return out.sort(byName);
  }

  /** The pods of `namespace` a workload's label selector matches, sorted by name. */
  podsSelectedBy(namespace: string, selector: ScenarioLabelSelector): PodObject[] {
    const candidates = this.podsMatching(namespace, selector.matchLabels ?? {});
    return candidates.filter((p) => matchesLabelSelector(selector, p.metadata.labels));
  }

  /** Re-derives service `namespace/name`'s slices and Endpoints (removing them when it is gone or selects nothing). */
  reconcileService(namespace: string, name: string): void {
    const store = this.#store;
    const service = store.get('services', namespace, name);
    const selector = service?.spec.type === 'ExternalName' ? undefined : service?.spec.selector;
    const pods = selector ? this.podsMatching(namespace, selector) : [];
    const existing = [...(this.#slicesByService.get(key(namespace, name)) ?? [])]
      .map((slice) => store.get('endpointslices', namespace, slice))
      .filter((s): s is EndpointSliceObject => s !== undefined)
      .sort(byName);
    reconcileServiceSlices(store, namespace, service, pods, existing);
    const previous = store.get('endpoints', namespace, name);
    const endpoints = service ? desiredEndpoints(service, pods, previous) : undefined;
    if (endpoints) store.put('endpoints', endpoints);
    else if (previous) store.remove('endpoints', namespace, name);
  }

  /** Recomputes a workload's status from the pods it selects (no-op when unchanged or absent). */
  reconcileWorkload(resource: WorkloadResource, namespace: string, name: string): void {
    const object = this.#store.get(resource, namespace, name);
    if (!object) return;
    this.#store.put(resource, withStatus(object, this.podsSelectedBy(namespace, object.spec.selector), object));
  }

  /**
   * A pod of `namespace` changed from `before` to `after` (undefined: did
   * not exist / no longer exists): reconciles every service and workload
   * that selected it before or selects it now.
   */
  podChanged(namespace: string, before: PodObject | undefined, after: PodObject | undefined): void {
    const labelSets = [before, after].flatMap((pod) => (pod ? [pod.metadata.labels] : []));
    const services = new Set<string>();
    for (const labels of labelSets) {
      for (const pair of [EVERY_POD, ...pairs(labels)]) {
        for (const name of this.#servicesBySelector.get(key(namespace, pair)) ?? []) services.add(name);
      }
    }
    for (const name of [...services].sort()) {
      const selector = this.#store.get('services', namespace, name)?.spec.selector;
      if (selector && labelSets.some((labels) => matchesSelectorMap(selector, labels))) this.reconcileService(namespace, name);
    }
    for (const id of [...(this.#workloads.get(namespace) ?? [])].sort()) {
      const [resource, name] = id.split('/') as [WorkloadResource, string];
      const selector = this.#store.get(resource, namespace, name)?.spec.selector;
      if (selector && labelSets.some((labels) => matchesLabelSelector(selector, labels))) this.reconcileWorkload(resource, namespace, name);
    }
  }

  /** Derives everything once (after a scenario was loaded without reconciling). */
  reconcileAll(): void {
    for (const service of this.#store.list('services')) this.reconcileService(service.metadata.namespace ?? '', service.metadata.name);
    for (const resource of WORKLOAD_RESOURCES) {
      for (const w of this.#store.list(resource)) this.reconcileWorkload(resource, w.metadata.namespace ?? '', w.metadata.name);
    }
  }

  // -------------------------------------------------------------------------
  // Indexes

  #index(event: StoreEvent): void {
    const { previous } = event;
    const current = event.type === 'DELETED' ? undefined : event.object;
    switch (event.resource) {
      case 'pods':
        if (previous) this.#unindexPod(previous as PodObject);
        if (current) this.#indexPod(current as PodObject);
        return;
      case 'services':
        if (previous) this.#indexService(previous as ServiceObject, false);
        if (current) this.#indexService(current as ServiceObject, true);
        return;
      case 'endpointslices':
        if (previous) this.#indexSlice(previous as EndpointSliceObject, false);
        if (current) this.#indexSlice(current as EndpointSliceObject, true);
        return;
      case 'deployments':
      case 'statefulsets':
      case 'replicasets': {
        const o = event.object as WorkloadObject;
        const id = `${event.resource}/${o.metadata.name}`;
        if (current) addTo(this.#workloads, o.metadata.namespace ?? '', id);
        else removeFrom(this.#workloads, o.metadata.namespace ?? '', id);
        return;
      }
      default:
        return;
    }
  }

  #indexPod(pod: PodObject): void {
    const ns = pod.metadata.namespace ?? '';
    let inNamespace = this.#pods.get(ns);
    if (!inNamespace) {
      inNamespace = new Map();
      this.#pods.set(ns, inNamespace);
    }
    inNamespace.set(pod.metadata.name, pod);
    for (const pair of pairs(pod.metadata.labels)) addTo(this.#podsByLabel, key(ns, pair), pod.metadata.name);
  }

  #unindexPod(pod: PodObject): void {
    const ns = pod.metadata.namespace ?? '';
    const inNamespace = this.#pods.get(ns);
    inNamespace?.delete(pod.metadata.name);
    if (inNamespace?.size === 0) this.#pods.delete(ns);
    for (const pair of pairs(pod.metadata.labels)) removeFrom(this.#podsByLabel, key(ns, pair), pod.metadata.name);
  }

  #indexService(service: ServiceObject, add: boolean): void {
    const ns = service.metadata.namespace ?? '';
    const selector = service.spec.type === 'ExternalName' ? undefined : service.spec.selector;
    if (!selector) return;
    const name = service.metadata.name;
    const selectorPairs = pairs(selector);
    for (const pair of selectorPairs.length > 0 ? selectorPairs : [EVERY_POD]) {
      if (add) addTo(this.#servicesBySelector, key(ns, pair), name);
      else removeFrom(this.#servicesBySelector, key(ns, pair), name);
    }
  }

  #indexSlice(slice: EndpointSliceObject, add: boolean): void {
    const service = managedServiceName(slice);
    if (service === undefined) return;
    const k = key(slice.metadata.namespace ?? '', service);
    if (add) addTo(this.#slicesByService, k, slice.metadata.name);
    else removeFrom(this.#slicesByService, k, slice.metadata.name);
  }
}
