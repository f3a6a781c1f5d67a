/**
 * The simulated cluster: an in-process API server (HTTPS, token auth, RBAC,
 * list/watch, port-forward upgrade) with a kubelet and the pods' backends
 * behind it, driven by a scenario and mutable at run time — in process or over
 * a loopback control endpoint — so tests, benchmarks and `kubesocks demo` see
 * a cluster that changes and fails like a real one. EndpointSlices, v1
 * Endpoints and workload status are derived by controllers.ts as pods and
 * services change; Deployments, StatefulSets and ReplicaSets only select pods.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { ApiServer } from './apiserver.js';
import { freshSimCerts, simCerts } from './certs.js';
import { startControlServer } from './control.js';
import type { ControlServer } from './control.js';
import { Controllers } from './controllers.js';
import { nodePortPool, podIpPool, serviceIpPool } from './ipam.js';
import { SimKubelet } from './kubelet.js';
import { DEFAULT_RUNTIME_PROFILE, type RuntimeProfile } from './runtime-profile.js';
import type { BackendAddress } from './kubelet.js';
import { kubeconfigYaml, multiKubeconfigYaml, type KubeconfigOptions } from './kubeconfig.js';
import { namespaceObject, podHasSandbox, podObject, serviceObject, serviceType, timestamp } from './objects.js';
import type { PodRecord, ServiceRecord } from './objects.js';
import { PodBackends } from './podbackends.js';
import { ADMIN_USER, Users, randomToken } from './rbac.js';
import { Containerd } from './runtime/containerd.js';
import { RealPods } from './runtime/pods.js';
import { RuntimeRelay } from './runtime/relay.js';
import type { RealPod, RealPodSpec } from './runtime/sandboxes.js';
import { checkRealPod, demoScenario, parseBackend, validateFeatureGates, validatePod, validateScenario, validateService, validateUser, validateWorkload } from './scenario.js';
import { alreadyExists, notFound } from './status.js';
import { ObjectStore } from './store.js';
import type { PortForwardTarget, SandboxMode, Scenario, SimFeatureGates, ScenarioPod, ScenarioService, ScenarioUser, ScenarioWorkload, SimCounters, WorkloadResource } from './types.js';
import { WORKLOAD_RESOURCES, workloadObject } from './workloads.js';
import type { WorkloadRecord } from './workloads.js';

export interface SimClusterOptions {
  /** What the cluster holds. Default: the built-in demo scenario (see demoScenario()). */
  scenario?: Scenario;
  /** Address the API server binds. Default 127.0.0.1. */
  host?: string;
  /** API server port. Default 0 (any free port). */
  port?: number;
  /** Start the loopback HTTP control endpoint. Default false. */
  control?: boolean;
  /** How long the kubelet waits for the second stream of a pair. Default 30 s (the kubelet's). */
  streamPairTimeoutMs?: number;
  /** Overrides the scenario's `runtime`. */
  runtime?: RuntimeProfile;
  /**
   * Where pods' sandboxes are; overrides the scenario's `sandboxes`. With
   * `containerd` the cluster starts a private containerd (stopped by close())
   * unless `containerd` gives one.
   */
  sandboxes?: SandboxMode;
  /** A running containerd to create real sandboxes in (implies `sandboxes: containerd`); close() leaves it running. */
  containerd?: Containerd;
  /** API server feature gates; override the scenario's. Default: all on (1.31+). */
  featureGates?: Partial<SimFeatureGates>;
  /** Sign the API server's certificate with a CA of its own instead of the process-wide one. Default false. */
  ownCa?: boolean;
}

export interface KubeconfigRequest {
  /** Whose token the kubeconfig carries. Default `admin`. */
  user?: string;
  /** The context's default namespace. Default `demo`. */
  namespace?: string;
  /** Name of the cluster, user entry and context. Default `kubesocks-sim`. */
  contextName?: string;
}

const POD_RESOURCE = { group: '', resource: 'pods' };

/** Namespaces every cluster has. */
const SYSTEM_NAMESPACES = ['default', 'kube-system'];

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Every counter at zero. */
export function zeroCounters(): SimCounters {
  return {
    upgrades: 0,
    tunnels: { 'SPDY/3.1': 0, 'SPDY/3.1+portforward.k8s.io': 0, 'v4.channel.k8s.io': 0, 'v4.base64.channel.k8s.io': 0, channel: 0 },
    openConnections: 0,
    streams: 0,
    pairs: 0,
    bytesToPods: 0,
    bytesFromPods: 0,
  };
}

export class SimCluster {
  readonly kubelet: SimKubelet;
  /** How the runtime ends failed pairs; may be changed while running (applies to pairs failing from then on). */
  runtime: RuntimeProfile;
  readonly #store = new ObjectStore();
  /** Endpoint-slice and endpoints controllers, workload status: derived objects follow every change. */
  readonly #controllers = new Controllers(this.#store);
  readonly #users: Users;
  readonly #api: ApiServer;
  readonly #caPem: string;
  readonly #adminToken = randomToken();
  readonly #counters = zeroCounters();
  readonly #gates: SimFeatureGates = { PortForwardWebsockets: true };
  readonly #backends = new PodBackends();
  readonly #pods = new Map<string, PodRecord>();
  readonly #podsByUid = new Map<string, PodRecord>();
  readonly #services = new Map<string, ServiceRecord>();
  /** By `resource/namespace/name`. */
  readonly #workloads = new Map<string, WorkloadRecord>();
  readonly #serviceIps = serviceIpPool();
  readonly #podIps = podIpPool();
  readonly #nodePorts = nodePortPool();
  /** With real sandboxes: the pods' sandboxes, the kubelet's relay to the runtime, and whether close() stops the runtime. */
  readonly #real: { pods: RealPods; relay: RuntimeRelay; ownsRuntime: boolean } | undefined;
  #control: ControlServer | undefined;
  #closing: Promise<void> | undefined;
  /** While loading a scenario, derived objects are reconciled once at the end rather than per object. */
  #loading = false;

  private constructor(
    scenario: Scenario,
    options: SimClusterOptions,
    certs: { caPem: string; certPem: string; keyPem: string },
    runtime: { containerd: Containerd; owned: boolean } | undefined,
  ) {
    this.#caPem = certs.caPem;
    if (runtime) {
      const pods = new RealPods(runtime.containerd);
      const relay = new RuntimeRelay({
        cri: runtime.containerd.cri,
        owns: (uid) => pods.has(uid),
        sandboxOf: (uid) => pods.sandboxOf(uid),
        counters: this.#counters,
      });
      this.#real = { pods, relay, ownsRuntime: runtime.owned };
    }
    this.#users = new Users(scenario.users ?? [], this.#adminToken);
    this.runtime = options.runtime ?? scenario.runtime ?? DEFAULT_RUNTIME_PROFILE;
    Object.assign(this.#gates, scenario.featureGates, options.featureGates);
    this.kubelet = new SimKubelet({
      backendFor: (target, port) => this.#backendFor(target, port),
      runtime: () => this.runtime,
      counters: this.#counters,
      ...(options.streamPairTimeoutMs !== undefined ? { streamPairTimeoutMs: options.streamPairTimeoutMs } : {}),
    });
    this.#api = new ApiServer({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      certs,
      store: this.#store,
      users: this.#users,
      kubelet: this.kubelet,
      counters: this.#counters,
      relay: this.#real?.relay,
      gates: this.#gates,
    });
    this.#load(scenario);
  }

  /** Starts a cluster: validates the scenario, listens, and (with `control`) starts the control endpoint. */
  static async start(options: SimClusterOptions = {}): Promise<SimCluster> {
    const scenario = validateScenario(options.scenario ?? demoScenario());
    const mode = options.containerd ? 'containerd' : (options.sandboxes ?? scenario.sandboxes ?? 'simulated');
    let runtime: { containerd: Containerd; owned: boolean } | undefined;
    if (mode === 'containerd') {
      scenario.pods.forEach((p, i) => checkRealPod(p, `scenario pods[${i}]`));
      runtime = options.containerd ? { containerd: options.containerd, owned: false } : { containerd: await Containerd.start(), owned: true };
    }
    const cluster = new SimCluster(scenario, options, options.ownCa ? freshSimCerts() : await simCerts(), runtime);
    try {
      await cluster.#real?.pods.settled();
      await cluster.#api.listen();
      if (options.control) cluster.#control = await startControlServer(cluster);
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** The API server: `https://127.0.0.1:PORT`. Stays the same across restartApiServer(). */
  get url(): string {
    return this.#api.url;
  }

  /** PEM of the CA that signed the API server's certificate. */
  get caPem(): string {
    return this.#caPem;
  }

  /** Bearer token of user `admin` (every right). */
  get adminToken(): string {
    return this.#adminToken;
  }

  /** `http://127.0.0.1:PORT` of the control endpoint, when started with `control: true`. */
  get controlUrl(): string | undefined {
    return this.#control?.url;
  }

  kubeconfigYaml(options: KubeconfigRequest = {}): string {
    return kubeconfigYaml(this.kubeconfigEntry(options));
  }

  /** The facts of one kubeconfig context for this cluster (for multiKubeconfigYaml). */
  kubeconfigEntry(options: KubeconfigRequest = {}): KubeconfigOptions {
    const userName = options.user ?? ADMIN_USER;
    return {
      server: this.url,
      caPem: this.#caPem,
      userName,
      token: this.tokenFor(userName),
      namespace: options.namespace ?? 'demo',
      contextName: options.contextName ?? 'kubesocks-sim',
    };
  }

  /** Writes kubeconfigYaml() to `file`, readable by the owner only (it holds a token). */
  async writeKubeconfig(file: string, options: KubeconfigRequest = {}): Promise<void> {
    await writeFile(file, this.kubeconfigYaml(options), { mode: 0o600 });
  }

  tokenFor(userName: string): string {
    return this.#users.tokenFor(userName);
  }

  /** Where pods' sandboxes are. */
  get sandboxes(): SandboxMode {
    return this.#real ? 'containerd' : 'simulated';
  }

  /** The containerd behind real sandboxes (undefined with simulated ones). */
  get containerd(): Containerd | undefined {
    return this.#real?.pods.runtime;
  }

  /**
   * With real sandboxes: resolves when every sandbox being created runs (a pod
   * added at run time gets its sandbox asynchronously); rejects with the first failure.
   */
  async sandboxesSettled(): Promise<void> {
    await this.#real?.pods.settled();
  }

  /** With real sandboxes: pod NAMESPACE/NAME's sandbox id and address, undefined when it has none. */
  async realPod(namespace: string, name: string): Promise<RealPod | undefined> {
    const record = this.#pods.get(podKey(namespace, name));
    if (!record || !this.#real) return undefined;
    const sandboxId = await this.#real.pods.sandboxOf(record.uid);
    return sandboxId ? { sandboxId, ip: record.ip ?? '' } : undefined;
  }

  /** A copy of the counters. */
  counters(): SimCounters {
    return { ...this.#counters, tunnels: { ...this.#counters.tunnels } };
  }

  /** Zeroes the counters, except `openConnections`, which counts what is open now. */
  resetCounters(): void {
    Object.assign(this.#counters, { ...zeroCounters(), openConnections: this.#counters.openConnections });
  }

  /** The API server's feature gates now (a copy). */
  featureGates(): SimFeatureGates {
    return { ...this.#gates };
  }

  /** Switches API server feature gates at run time (as a control-plane upgrade or downgrade would). */
  setFeatureGates(gates: Partial<SimFeatureGates>): void {
    Object.assign(this.#gates, validateFeatureGates(gates, 'feature gates'));
  }

  // -------------------------------------------------------------------------
  // Pods

  /** Adds a pod; a pod of that name must not exist (409 AlreadyExists). */
  addPod(pod: ScenarioPod): void {
    const spec = validatePod(pod);
    if (this.#real) checkRealPod(spec);
    this.#addPod(spec);
  }

  #addPod(spec: ScenarioPod): void {
    if (this.#pods.has(podKey(spec.namespace, spec.name))) {
      throw alreadyExists(POD_RESOURCE, spec.name);
    }
    this.#ensureNamespace(spec.namespace);
    const record: PodRecord = {
      spec,
      uid: randomUUID(),
      createdAt: timestamp(),
      ip: undefined,
      deletionTimestamp: spec.terminating ? timestamp() : undefined,
    };
    this.#assignPodIp(record);
    this.#pods.set(podKey(spec.namespace, spec.name), record);
    this.#podsByUid.set(record.uid, record);
    const stored = this.#store.put('pods', podObject(record));
    if (!this.#loading) this.#controllers.podChanged(spec.namespace, undefined, stored);
    this.#syncSandbox(record);
  }

  /**
   * Replaces a pod's scenario entry in place (same uid, a MODIFIED event), as
   * status and label updates do; adds the pod if there is none. To simulate a
   * pod recreated under the same name, delete it and add it again.
   */
  replacePod(pod: ScenarioPod): void {
    const spec = validatePod(pod);
    if (this.#real) checkRealPod(spec);
    const record = this.#pods.get(podKey(spec.namespace, spec.name));
    if (!record) {
      this.#addPod(spec);
      return;
    }
    const wasAlive = record.spec.phase !== 'Succeeded' && record.spec.phase !== 'Failed';
    record.spec = spec;
    record.deletionTimestamp = spec.terminating ? (record.deletionTimestamp ?? timestamp()) : undefined;
    this.#assignPodIp(record);
    const before = this.#store.get('pods', spec.namespace, spec.name);
    const stored = this.#store.put('pods', podObject(record));
    // Backends of ports no longer declared (or declared with another backend) stop.
    const keep = (spec.ports ?? []).flatMap((p) => {
      const parsed = parseBackend(p.backend);
      return parsed?.kind === 'builtin' && parsed.name !== 'closed' ? [{ port: p.containerPort, kind: parsed.name }] : [];
    });
    void this.#backends.closePod(record.uid, keep);
    // A completed pod's sandbox goes away, and with it its port-forward connections.
    if (wasAlive && (spec.phase === 'Succeeded' || spec.phase === 'Failed')) this.kubelet.closePod(record.uid);
    if (stored !== before) this.#controllers.podChanged(spec.namespace, before, stored);
    this.#syncSandbox(record);
  }

  /** Deletes a pod (404 if absent); its port-forward connections and backends close, as when a sandbox goes. */
  deletePod(namespace: string, name: string): void {
    const record = this.#podRecord(namespace, name);
    this.#pods.delete(podKey(namespace, name));
    this.#podsByUid.delete(record.uid);
    if (record.ip !== undefined) this.#podIps.release(record.ip);
    const last = this.#store.remove('pods', namespace, name);
    this.kubelet.closePod(record.uid);
    void this.#backends.closePod(record.uid);
    this.#removeSandbox(record.uid);
    this.#controllers.podChanged(namespace, last, undefined);
  }

  /**
   * Breaks the pod's port-forward pairs that are copying bytes, its
   * connections staying up: `text` as a runtime whose pod socket broke (the
   * error text, then the runtime profile's ending), `reset` with RST_STREAM
   * and no text.
   */
  breakPortForwards(namespace: string, name: string, how: 'text' | 'reset'): void {
    this.kubelet.breakPod(this.#podRecord(namespace, name).uid, how);
  }

  /** The pod's port-forward connections stop reading (PINGs unanswered), as behind a frozen node. */
  freezePortForwards(namespace: string, name: string): void {
    this.kubelet.freezePod(this.#podRecord(namespace, name).uid);
  }

  setPodReady(namespace: string, name: string, ready: boolean): void {
    this.replacePod({ ...this.#podRecord(namespace, name).spec, ready });
  }

  setPodPhase(namespace: string, name: string, phase: NonNullable<ScenarioPod['phase']>): void {
    this.replacePod({ ...this.#podRecord(namespace, name).spec, phase });
  }

  /** Marks a pod as being deleted gracefully (deletionTimestamp; its endpoint turns terminating) or clears that. */
  setPodTerminating(namespace: string, name: string, terminating: boolean): void {
    this.replacePod({ ...this.#podRecord(namespace, name).spec, terminating });
  }

  // -------------------------------------------------------------------------
  // Services

  /** Adds a service, or replaces the one of that name (keeping its uid and allocated cluster IP). */
  addService(service: ScenarioService): void {
    this.#addService(validateService(service));
  }

  #addService(spec: ScenarioService): void {
    const key = podKey(spec.namespace, spec.name);
    const previous = this.#services.get(key);
    if (previous) this.#releaseServiceAddresses(previous, spec);
    this.#ensureNamespace(spec.namespace);
    const type = serviceType(spec);
    const record: ServiceRecord = {
      spec,
      uid: previous?.uid ?? randomUUID(),
      createdAt: previous?.createdAt ?? timestamp(),
      clusterIP: undefined,
      nodePorts: [],
    };
    if (type !== 'ExternalName') {
      if (spec.clusterIP !== undefined) {
        record.clusterIP = spec.clusterIP;
        if (spec.clusterIP !== 'None') this.#serviceIps.reserve(spec.clusterIP);
      } else {
        record.clusterIP = previous?.clusterIP && previous.clusterIP !== 'None' ? previous.clusterIP : this.#serviceIps.allocate();
      }
    }
    if (type === 'NodePort' || type === 'LoadBalancer') {
      record.nodePorts = (spec.ports ?? []).map((_, i) => previous?.nodePorts[i] ?? this.#nodePorts.allocate());
    }
    this.#services.set(key, record);
    this.#store.put('services', serviceObject(record));
    if (!this.#loading) this.#controllers.reconcileService(spec.namespace, spec.name);
  }

  /** Deletes a service (404 if absent), its EndpointSlices and its Endpoints. */
  deleteService(namespace: string, name: string): void {
    const key = podKey(namespace, name);
    const record = this.#services.get(key);
    if (!record) throw notFound({ group: '', resource: 'services' }, name);
    this.#services.delete(key);
    this.#releaseServiceAddresses(record);
    this.#store.remove('services', namespace, name);
    this.#controllers.reconcileService(namespace, name);
  }

  // -------------------------------------------------------------------------
  // Workloads (apps/v1)

  /**
   * Adds a Deployment, StatefulSet or ReplicaSet, or replaces the one of that
   * name (keeping its uid; a changed spec bumps its generation). It runs no
   * pods: it selects pods added with addPod, and its status counts them.
   */
  addWorkload(resource: WorkloadResource, workload: ScenarioWorkload): void {
    this.#addWorkload(resource, validateWorkload(workload, resource));
  }

  #addWorkload(resource: WorkloadResource, spec: ScenarioWorkload): void {
    const id = `${resource}/${spec.namespace}/${spec.name}`;
    const previous = this.#workloads.get(id);
    this.#ensureNamespace(spec.namespace);
    const record: WorkloadRecord = {
      resource,
      spec,
      uid: previous?.uid ?? randomUUID(),
      createdAt: previous?.createdAt ?? timestamp(),
      generation: previous ? previous.generation + (JSON.stringify(previous.spec) === JSON.stringify(spec) ? 0 : 1) : 1,
    };
    this.#workloads.set(id, record);
    const stored = this.#store.get(resource, spec.namespace, spec.name);
    this.#store.put(resource, workloadObject(record, this.#controllers.podsSelectedBy(spec.namespace, spec.selector), stored));
  }

  /** Deletes a workload (404 if absent); its pods stay, as with `kubectl delete --cascade=orphan`. */
  deleteWorkload(resource: WorkloadResource, namespace: string, name: string): void {
    const id = `${resource}/${namespace}/${name}`;
    if (!this.#workloads.delete(id)) throw notFound({ group: 'apps', resource }, name);
    this.#store.remove(resource, namespace, name);
  }

  // -------------------------------------------------------------------------
  // Users

  /** Adds a user (or replaces the user of that name). */
  addUser(user: ScenarioUser): void {
    this.#users.add(validateUser(user));
  }

  /** From now on the token gets 401 on every request, upgrades included. */
  revokeToken(token: string): void {
    this.#users.revoke(token);
  }

  // -------------------------------------------------------------------------
  // Faults

  /**
   * Closes the API server's listener and every connection (watches,
   * port-forward connections) and listens again on the same port with the
   * same certificate.
   */
  async restartApiServer(): Promise<void> {
    this.kubelet.close();
    this.#real?.relay.close();
    await this.#api.restart();
  }

  /** Ends every open watch response abruptly. */
  cutWatches(): void {
    this.#api.cutWatches();
  }

  /** Forgets the event history: a watch from an older resourceVersion gets 410 Expired. */
  compactHistory(): void {
    this.#store.compact();
  }

  /** Stops everything and releases every handle. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const control = this.#control;
      this.#control = undefined;
      this.kubelet.close();
      this.#real?.relay.close();
      this.#controllers.close();
      await Promise.all([control?.close(), this.#api.close(), this.#backends.close(), this.#real?.pods.close()]);
      if (this.#real?.ownsRuntime) await this.#real.pods.runtime.stop();
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------
  // Internals

  #load(scenario: Scenario): void {
    this.#loading = true;
    const namespaces = new Set([
      ...SYSTEM_NAMESPACES,
      ...(scenario.namespaces ?? []),
      ...scenario.pods.map((p) => p.namespace),
      ...scenario.services.map((s) => s.namespace),
      ...WORKLOAD_RESOURCES.flatMap((r) => (scenario[r] ?? []).map((w) => w.namespace)),
    ]);
    for (const ns of [...namespaces].sort()) this.#ensureNamespace(ns);
    // Scenario addresses first, so allocation never hands them out.
    for (const p of scenario.pods) if (p.ip !== undefined) this.#podIps.reserve(p.ip);
    for (const s of scenario.services) if (s.clusterIP !== undefined && s.clusterIP !== 'None') this.#serviceIps.reserve(s.clusterIP);
    // Entries were validated with the scenario.
    for (const p of scenario.pods) this.#addPod(p);
    for (const s of scenario.services) this.#addService(s);
    for (const resource of WORKLOAD_RESOURCES) for (const w of scenario[resource] ?? []) this.#addWorkload(resource, w);
    this.#loading = false;
    this.#controllers.reconcileAll();
  }

  #ensureNamespace(name: string): void {
    if (!this.#store.get('namespaces', undefined, name)) {
      this.#store.put('namespaces', namespaceObject(name, randomUUID(), timestamp()));
    }
  }

  #podRecord(namespace: string, name: string): PodRecord {
    const record = this.#pods.get(podKey(namespace, name));
    if (!record) throw notFound(POD_RESOURCE, name);
    return record;
  }

  /** The scenario's IP, else one allocated once the pod has a sandbox; kept for the pod's life. */
  #assignPodIp(record: PodRecord): void {
    const wanted = record.spec.ip;
    if (wanted !== undefined) {
      if (record.ip !== undefined && record.ip !== wanted) this.#podIps.release(record.ip);
      this.#podIps.reserve(wanted);
      record.ip = wanted;
    } else if (record.ip === undefined && podHasSandbox(record.spec)) {
      record.ip = this.#podIps.allocate();
    }
  }

  /** Frees a service's allocated addresses, except those `next` keeps. */
  #releaseServiceAddresses(record: ServiceRecord, next?: ScenarioService): void {
    const keepsIp = next !== undefined && serviceType(next) !== 'ExternalName' && (next.clusterIP === undefined || next.clusterIP === record.clusterIP);
    if (record.clusterIP !== undefined && record.clusterIP !== 'None' && !keepsIp) this.#serviceIps.release(record.clusterIP);
    const keepsPorts = next !== undefined && (serviceType(next) === 'NodePort' || serviceType(next) === 'LoadBalancer');
    if (!keepsPorts) for (const p of record.nodePorts) this.#nodePorts.release(p);
  }

  /**
   * With real sandboxes: a pod that has a sandbox (scheduled, not Pending) and
   * has not completed gets a real one; a completed pod's sandbox goes. A
   * running sandbox keeps the ports it was created with.
   */
  #syncSandbox(record: PodRecord): void {
    if (!this.#real) return;
    const { spec } = record;
    const completed = spec.phase === 'Succeeded' || spec.phase === 'Failed';
    if (completed) {
      this.#removeSandbox(record.uid);
      return;
    }
    if (!podHasSandbox(spec)) return;
    const realSpec: RealPodSpec = {
      namespace: spec.namespace,
      name: spec.name,
      uid: record.uid,
      ports: (spec.ports ?? [])
        .filter((p) => (p.protocol ?? 'TCP') === 'TCP')
        .flatMap((p) => {
          const backend = parseBackend(p.backend);
          return backend?.kind === 'builtin' ? [{ port: p.containerPort, backend: backend.name }] : [];
        }),
    };
    this.#real.pods.ensure(realSpec, (pod) => this.#useSandboxIp(record, pod.ip));
  }

  #removeSandbox(uid: string): void {
    if (!this.#real) return;
    // Connections break first, as they do when a node's runtime loses the sandbox.
    this.#real.relay.closePod(uid);
    void this.#real.pods.remove(uid);
  }

  /** The pod's status.podIP becomes its sandbox's real address, unless the scenario fixed one. */
  #useSandboxIp(record: PodRecord, ip: string): void {
    if (record.spec.ip !== undefined || record.ip === ip || this.#podsByUid.get(record.uid) !== record) return;
    if (record.ip !== undefined) this.#podIps.release(record.ip);
    record.ip = ip;
    const before = this.#store.get('pods', record.spec.namespace, record.spec.name);
    const stored = this.#store.put('pods', podObject(record));
    if (!this.#loading && stored !== before) this.#controllers.podChanged(record.spec.namespace, before, stored);
  }

  /** Where "localhost:PORT inside pod `target`" is: null when the pod is gone, the port undeclared or `closed`. */
  async #backendFor(target: PortForwardTarget, port: number): Promise<BackendAddress | null> {
    const record = this.#podsByUid.get(target.uid);
    if (!record) return null;
    const declared = record.spec.ports?.find((p) => p.containerPort === port && (p.protocol ?? 'TCP') === 'TCP');
    if (!declared) return null;
    const backend = parseBackend(declared.backend);
    if (!backend) return null;
    if (backend.kind === 'address') return { host: backend.host, port: backend.port };
    if (backend.name === 'closed') return null;
    return (await this.#backends.address(record.uid, record.spec.name, port, backend.name)) ?? null;
  }
}

/**
 * Writes one kubeconfig with a context per cluster (the first current), as
 * someone with several clusters has: each context its own server, CA and
 * token. Readable by the owner only.
 */
export async function writeMultiKubeconfig(file: string, entries: ReadonlyArray<KubeconfigRequest & { cluster: SimCluster }>): Promise<void> {
  await writeFile(file, multiKubeconfigYaml(entries.map(({ cluster, ...request }) => cluster.kubeconfigEntry(request))), { mode: 0o600 });
}
