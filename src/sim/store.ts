/**
 * The simulated etcd + watch cache: objects per resource, one global
 * resourceVersion counter, a bounded event history for watches that resume
 * from a resourceVersion, and synchronous change listeners.
 *
 * Every change bumps the counter and stamps it on the object; an update that
 * changes nothing is dropped without an event, as a no-op write to a real API
 * server keeps the old resourceVersion.
 */
import type { KubeObject } from './objects.js';
import type { ResourceName, ResourceTypes } from './resources.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  resource: ResourceName;
  /** The resourceVersion this change produced. */
  resourceVersion: number;
  /** The object after the change (for DELETED: its last state, stamped with the deletion's resourceVersion). */
  object: KubeObject;
  /** The object before the change (MODIFIED and DELETED). */
  previous: KubeObject | undefined;
}

export type StoreListener = (event: StoreEvent) => void;

/** How many events a watch can resume across before it must relist (the real watch cache keeps ~100–1000s). */
const DEFAULT_HISTORY_LIMIT = 10_000;

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function compareObjects(a: KubeObject, b: KubeObject): number {
  const an = a.metadata.namespace ?? '';
  const bn = b.metadata.namespace ?? '';
  if (an !== bn) return an < bn ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** JSON of an object without its resourceVersion, to detect no-op updates. */
function contentOf(object: KubeObject): string {
  return JSON.stringify({ ...object, metadata: { ...object.metadata, resourceVersion: '' } });
}

export class ObjectStore {
  #resourceVersion = 0;
  /** Events with a resourceVersion greater than this are still in #history. */
  #historyStart = 0;
  #history: StoreEvent[] = [];
  readonly #objects = new Map<ResourceName, Map<string, KubeObject>>();
  /** The same objects by namespace (`''` for cluster-scoped ones), so a namespaced list touches only its namespace. */
  readonly #byNamespace = new Map<ResourceName, Map<string, Map<string, KubeObject>>>();
  readonly #listeners = new Set<StoreListener>();
  readonly #historyLimit: number;

  constructor(historyLimit = DEFAULT_HISTORY_LIMIT) {
    this.#historyLimit = historyLimit;
  }

  /** The latest resourceVersion handed out. */
  get resourceVersion(): number {
    return this.#resourceVersion;
  }

  /** The oldest resourceVersion a watch can still resume from. */
  get oldestResourceVersion(): number {
    return this.#historyStart;
  }

  get<R extends ResourceName>(resource: R, namespace: string | undefined, name: string): ResourceTypes[R] | undefined {
    return this.#bucket(resource).get(key(namespace, name)) as ResourceTypes[R] | undefined;
  }

  /** Objects of a resource, optionally in one namespace, sorted by namespace then name (etcd key order). */
  list<R extends ResourceName>(resource: R, namespace?: string): Array<ResourceTypes[R]> {
    const objects = namespace === undefined ? this.#bucket(resource) : this.#namespaceBucket(resource, namespace);
    return ([...(objects?.values() ?? [])] as Array<ResourceTypes[R]>).sort(compareObjects);
  }

  /** Creates or replaces an object; returns what is stored (with its resourceVersion). */
  put<R extends ResourceName>(resource: R, object: ResourceTypes[R]): ResourceTypes[R] {
    const bucket = this.#bucket(resource);
    const k = key(object.metadata.namespace, object.metadata.name);
    const previous = bucket.get(k);
    if (previous && contentOf(previous) === contentOf(object)) return previous as ResourceTypes[R];
    const resourceVersion = ++this.#resourceVersion;
    const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(resourceVersion) } };
    bucket.set(k, stored);
    this.#createNamespaceBucket(resource, object.metadata.namespace ?? '').set(object.metadata.name, stored);
    this.#emit({ type: previous ? 'MODIFIED' : 'ADDED', resource, resourceVersion, object: stored, previous });
    return stored;
  }

  /** Deletes an object; returns its last state, or undefined if there was none. */
  remove<R extends ResourceName>(resource: R, namespace: string | undefined, name: string): ResourceTypes[R] | undefined {
    const bucket = this.#bucket(resource);
    const k = key(namespace, name);
    const previous = bucket.get(k);
    if (!previous) return undefined;
    bucket.delete(k);
    const nsBucket = this.#namespaceBucket(resource, namespace ?? '');
    nsBucket?.delete(name);
    if (nsBucket?.size === 0) this.#byNamespace.get(resource)?.delete(namespace ?? '');
    const resourceVersion = ++this.#resourceVersion;
    const last = { ...previous, metadata: { ...previous.metadata, resourceVersion: String(resourceVersion) } };
    this.#emit({ type: 'DELETED', resource, resourceVersion, object: last, previous });
    return last as ResourceTypes[R];
  }

  /**
   * Events after `resourceVersion`, oldest first; undefined when the history
   * no longer reaches back that far (the watch must answer 410 Expired).
   */
  eventsSince(resourceVersion: number): StoreEvent[] | undefined {
    if (resourceVersion < this.#historyStart) return undefined;
    return this.#history.filter((e) => e.resourceVersion > resourceVersion);
  }

  /** Forget all history, as an etcd compaction does: older resourceVersions become too old to watch from. */
  compact(): void {
    this.#history = [];
    this.#historyStart = this.#resourceVersion;
  }

  /** Calls `listener` synchronously after every change; returns the unsubscribe function. */
  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #bucket(resource: ResourceName): Map<string, KubeObject> {
    let bucket = this.#objects.get(resource);
    if (!bucket) {
      bucket = new Map();
      this.#objects.set(resource, bucket);
    }
    return bucket;
  }

  /** The objects of `resource` in `namespace`, if any. */
  #namespaceBucket(resource: ResourceName, namespace: string): Map<string, KubeObject> | undefined {
    return this.#byNamespace.get(resource)?.get(namespace);
  }

  #createNamespaceBucket(resource: ResourceName, namespace: string): Map<string, KubeObject> {
    let namespaces = this.#byNamespace.get(resource);
    if (!namespaces) {
      namespaces = new Map();
      this.#byNamespace.set(resource, namespaces);
    }
    let bucket = namespaces.get(namespace);
    if (!bucket) {
      bucket = new Map();
      namespaces.set(namespace, bucket);
    }
    return bucket;
  }

  #emit(event: StoreEvent): void {
    this.#history.push(event);
    // Trim in batches so a long run stays O(1) amortised per event.
    if (this.#history.length > this.#historyLimit * 1.5) {
      const dropped = this.#history.splice(0, this.#history.length - this.#historyLimit);
      const last = dropped[dropped.length - 1];
      if (last) this.#historyStart = last.resourceVersion;
    }
    for (const listener of [...this.#listeners]) listener(event);
  }
}
