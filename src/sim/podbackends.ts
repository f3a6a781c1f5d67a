/**
 * The built-in backends that stand for pods' container ports, started on
 * first use (one per pod and port, so the http backend can name its pod) and
 * stopped when the pod goes away or the cluster closes.
 */
import { startBackend } from './backends.js';
import type { BuiltinServerKind, RunningBackend } from './backends.js';
import type { BackendAddress } from './kubelet.js';

function portKey(port: number, kind: BuiltinServerKind): string {
  return `${port}/${kind}`;
}

export class PodBackends {
  readonly #byPod = new Map<string, Map<string, Promise<RunningBackend>>>();
  #closed = false;

  /** The address of pod `uid`'s built-in backend on `port`, started if need be; undefined once closed. */
  async address(uid: string, podName: string, port: number, kind: BuiltinServerKind): Promise<BackendAddress | undefined> {
    if (this.#closed) return undefined;
    let ports = this.#byPod.get(uid);
    if (!ports) {
      ports = new Map();
      this.#byPod.set(uid, ports);
    }
    const key = portKey(port, kind);
    let running = ports.get(key);
    if (!running) {
      running = startBackend(kind, podName);
      ports.set(key, running);
    }
    const backend = await running;
    // The pod may have gone (or the cluster closed) while the backend started.
    if (this.#byPod.get(uid)?.get(key) !== running) {
      await backend.close();
      return undefined;
    }
    return backend.address;
  }

  /** Stops the backends of pod `uid` whose port/kind is not in `keep` (all of them without `keep`). */
  async closePod(uid: string, keep?: Array<{ port: number; kind: BuiltinServerKind }>): Promise<void> {
    const ports = this.#byPod.get(uid);
    if (!ports) return;
    const kept = new Set((keep ?? []).map((k) => portKey(k.port, k.kind)));
    const stopping: Array<Promise<RunningBackend>> = [];
    for (const [key, running] of ports) {
      if (kept.has(key)) continue;
      ports.delete(key);
      stopping.push(running);
    }
    if (ports.size === 0) this.#byPod.delete(uid);
    // A backend that failed to start has nothing to stop.
    await Promise.all(stopping.map(async (p) => (await p.catch(() => undefined))?.close()));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const uids = [...this.#byPod.keys()];
    await Promise.all(uids.map((uid) => this.closePod(uid)));
  }
}
