/**
 * Watch responses: newline-delimited JSON events on a chunked 200 response,
 * one write per event, as the API server's watch handler streams them.
 *
 * - resourceVersion absent or "0": ADDED for every current object, then live
 *   (the "any" and "most recent" semantics both start with the current state).
 * - resourceVersion N: every change after N, then live; if the history no
 *   longer reaches N, a single ERROR event carrying 410 Expired
 *   `too old resource version: N (OLDEST)` and the end of the response, as
 *   the watch cache's error watcher does.
 * - sendInitialEvents=true (streaming lists): ADDED for the current state,
 *   then a BOOKMARK annotated `k8s.io/initial-events-end`.
 * - With selectors, an object that starts or stops matching is ADDED or
 *   DELETED for this watcher, as the watch cache filters.
 */
import type { ServerResponse } from 'node:http';
import type { KubeObject } from './objects.js';
import { RESOURCES, apiVersionOf } from './resources.js';
import type { ResourceName } from './resources.js';
import type { Selector } from './selectors.js';
import { expired } from './status.js';
import type { EventType, ObjectStore, StoreEvent } from './store.js';

export interface WatchRequest {
  resource: ResourceName;
  /** Only objects in this namespace; undefined → all. */
  namespace: string | undefined;
  selector: Selector;
  /** The `resourceVersion` parameter ('' when absent). */
  resourceVersion: string;
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  /** Renders an event's object (a Table row for kubectl, the object itself otherwise); `first` is the first event. */
  encode(object: KubeObject, first: boolean): unknown;
}

type WireType = EventType | 'BOOKMARK' | 'ERROR';

/** How an event looks to a watcher with a selector, or undefined when the watcher does not see it. */
function project(event: StoreEvent, w: WatchRequest): EventType | undefined {
  if (event.resource !== w.resource) return undefined;
  if (w.namespace !== undefined && event.object.metadata.namespace !== w.namespace) return undefined;
  const now = w.selector(event.object);
  if (event.type === 'ADDED') return now ? 'ADDED' : undefined;
  const before = event.previous ? w.selector(event.previous) : false;
  if (event.type === 'DELETED') return before ? 'DELETED' : undefined;
  if (now && before) return 'MODIFIED';
  if (now) return 'ADDED';
  if (before) return 'DELETED';
  return undefined;
}

/**
 * Streams a watch on `res` until the client goes, the timeout passes or the
 * server cuts it. Registers `res` in `open` while it runs.
 */
export function serveWatch(store: ObjectStore, w: WatchRequest, res: ServerResponse, open: Set<ServerResponse>): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  let first = true;
  const send = (type: WireType, object: unknown) => {
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const sendObject = (type: EventType, object: KubeObject) => {
    send(type, w.encode(object, first));
    first = false;
  };

  const initialState = () => {
    for (const object of store.list(w.resource, w.namespace)) {
      if (w.selector(object)) sendObject('ADDED', object);
    }
  };

  const rv = w.resourceVersion;
  if (w.sendInitialEvents) {
    initialState();
    const info = RESOURCES[w.resource];
    send('BOOKMARK', {
      kind: info.kind,
      apiVersion: apiVersionOf(info),
      metadata: { resourceVersion: String(store.resourceVersion), annotations: { 'k8s.io/initial-events-end': 'true' } },
    });
  } else if (rv === '' || rv === '0') {
    initialState();
  } else {
    const events = store.eventsSince(Number(rv));
    if (!events) {
      send('ERROR', expired(`too old resource version: ${rv} (${store.oldestResourceVersion})`).status);
      res.end();
      return;
    }
    for (const event of events) {
      const type = project(event, w);
      if (type) sendObject(type, event.object);
    }
  }

  const unsubscribe = store.subscribe((event) => {
    const type = project(event, w);
    if (type) sendObject(type, event.object);
  });
  const timer = w.timeoutSeconds !== undefined ? setTimeout(() => res.end(), w.timeoutSeconds * 1000) : undefined;
  open.add(res);
  res.once('close', () => {
    unsubscribe();
    if (timer) clearTimeout(timer);
    open.delete(res);
  });
}
