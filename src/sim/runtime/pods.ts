/**
 * The real pods of one simulated cluster: which pod uid has which sandbox,
 * created when the pod gets one (added Running, or turning Running) and
 * removed when it is deleted or completes. Creation is asynchronous; a
 * port-forward waits for it (sandboxOf), start-up waits for all (settled).
 */
import { debuglog } from 'node:util';
import type { Containerd } from './containerd.js';
import { removeRealPod, runRealPod } from './sandboxes.js';
import type { RealPod, RealPodSpec } from './sandboxes.js';

const debug = debuglog('kubesocks:runtime');

export class RealPods {
  readonly #runtime: Containerd;
  readonly #byUid = new Map<string, Promise<RealPod | undefined>>();
  #closed = false;

  constructor(runtime: Containerd) {
    this.#runtime = runtime;
  }

  get runtime(): Containerd {
    return this.#runtime;
  }

  /** Whether pod `uid` has (or is getting) a real sandbox. */
  has(uid: string): boolean {
    return this.#byUid.has(uid);
  }

  /** Creates the pod's sandbox unless it has one; `onRunning` gets it once it runs. */
  ensure(spec: RealPodSpec, onRunning: (pod: RealPod) => void): void {
    if (this.#closed || this.#byUid.has(spec.uid)) return;
    const creating = runRealPod(this.#runtime, spec).then(
      (pod) => {
        if (this.#byUid.get(spec.uid) !== creating) {
          // Deleted while it started.
          void removeRealPod(this.#runtime, pod.sandboxId).catch(() => undefined);
          return undefined;
        }
        onRunning(pod);
        return pod;
      },
      (err: unknown) => {
        debug('pod %s/%s: no sandbox: %s', spec.namespace, spec.name, err);
        throw err;
      },
    );
    // A failed creation is reported by settled() and by the port-forward that waits for it.
    creating.catch(() => undefined);
    this.#byUid.set(spec.uid, creating);
  }

  /** The pod's sandbox id once it runs; undefined when it has none. */
  async sandboxOf(uid: string): Promise<string | undefined> {
    const pod = await this.#byUid.get(uid);
    return pod?.sandboxId;
  }

  /** Stops and removes the pod's sandbox, if it has one. */
  async remove(uid: string): Promise<void> {
    const creating = this.#byUid.get(uid);
    if (!creating) return;
    this.#byUid.delete(uid);
    const pod = await creating.catch(() => undefined);
    if (pod) await removeRealPod(this.#runtime, pod.sandboxId).catch((err) => debug('removing sandbox %s: %s', pod.sandboxId, err));
  }

  /** Resolves when every sandbox being created runs; rejects with the first that failed. */
  async settled(): Promise<void> {
    await Promise.all(this.#byUid.values());
  }

  /** Removes every sandbox of this cluster. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#byUid.keys()].map((uid) => this.remove(uid)));
  }
}
