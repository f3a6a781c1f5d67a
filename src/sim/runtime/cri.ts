/**
 * A CRI client: `runtime.v1.RuntimeService` over containerd's gRPC socket,
 * with @grpc/grpc-js and the api.proto of k8s.io/cri-api (shipped in
 * proto/cri-api/, see its README). Only the calls the simulated kubelet makes.
 *
 * The gRPC libraries are loaded on first use, so a cluster that never starts
 * a real runtime never loads them.
 */
import { fileURLToPath } from 'node:url';

/** proto/cri-api/api.proto: the same depth from src/sim/runtime/ and dist/sim/runtime/. */
const PROTO_FILE = fileURLToPath(new URL('../../../proto/cri-api/api.proto', import.meta.url));

/** How long one CRI call may take (RunPodSandbox with CNI set-up is the slow one: about a second). */
const CALL_DEADLINE_MS = 60_000;

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

/** The PodSandboxConfig fields this project sets (snake_case, as in api.proto). */
export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname: string;
  log_directory: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerConfig {
  metadata: { name: string; attempt: number };
  image: { image: string };
  command: string[];
  log_path: string;
  labels: Record<string, string>;
}

export interface PodSandboxStatus {
  id: string;
  state: string;
  network?: { ip?: string } | null;
}

type Callback<T> = (error: Error | null, response: T) => void;
type Unary = (request: object, options: { deadline: Date }, callback: Callback<Record<string, unknown>>) => void;

/** A gRPC client of the RuntimeService; close() releases its channel. */
export class CriClient {
  readonly #client: Record<string, Unary> & { close(): void };

  private constructor(client: Record<string, Unary> & { close(): void }) {
    this.#client = client;
  }

  /** A client of the CRI socket at `socketPath` (containerd's gRPC address). */
  static async connect(socketPath: string): Promise<CriClient> {
    const [grpc, protoLoader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
    // keepCase: the field names stay as in api.proto (pod_sandbox_id), as the runtime's logs name them.
    const definition = await protoLoader.load(PROTO_FILE, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      runtime: { v1: { RuntimeService: new (address: string, credentials: unknown) => Record<string, Unary> & { close(): void } } };
    };
    const client = new loaded.runtime.v1.RuntimeService(`unix://${socketPath}`, grpc.credentials.createInsecure());
    return new CriClient(client);
  }

  #call<T>(method: string, request: object): Promise<T> {
    const fn = this.#client[method];
    if (!fn) return Promise.reject(new Error(`CRI client has no method ${method}`));
    return new Promise<T>((resolve, reject) => {
      fn.call(this.#client, request, { deadline: new Date(Date.now() + CALL_DEADLINE_MS) }, (error, response) => {
        if (error) reject(new Error(`CRI ${method}: ${error.message}`, { cause: error }));
        else resolve(response as T);
      });
    });
  }

  /** The runtime's name and version: containerd answers once its CRI plugin is up. */
  async version(): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }> {
    return this.#call('Version', { version: 'v1' });
  }

  /** Whether the runtime and its network are ready (RuntimeReady, NetworkReady). */
  async status(): Promise<Array<{ type: string; status: boolean; reason: string; message: string }>> {
    const response = await this.#call<{ status?: { conditions?: Array<{ type: string; status: boolean; reason: string; message: string }> } }>('Status', {});
    return response.status?.conditions ?? [];
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const response = await this.#call<{ pod_sandbox_id: string }>('RunPodSandbox', { config, runtime_handler: '' });
    return response.pod_sandbox_id;
  }

  async podSandboxStatus(podSandboxId: string): Promise<PodSandboxStatus> {
    const response = await this.#call<{ status: PodSandboxStatus }>('PodSandboxStatus', { pod_sandbox_id: podSandboxId, verbose: false });
    return response.status;
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.#call('StopPodSandbox', { pod_sandbox_id: podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.#call('RemovePodSandbox', { pod_sandbox_id: podSandboxId });
  }

  /** Ids of every sandbox the runtime knows (ready or not). */
  async listPodSandboxIds(): Promise<string[]> {
    const response = await this.#call<{ items?: Array<{ id: string }> }>('ListPodSandbox', {});
    return (response.items ?? []).map((item) => item.id);
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const response = await this.#call<{ container_id: string }>('CreateContainer', {
      pod_sandbox_id: podSandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    return response.container_id;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.#call('StartContainer', { container_id: containerId });
  }

  /**
   * The runtime's streaming URL for port-forward into the sandbox
   * (`http://127.0.0.1:PORT/portforward/TOKEN`, single use, valid about a minute).
   * The port list is ignored for SPDY: each stream pair names its port.
   */
  async portForward(podSandboxId: string): Promise<string> {
    const response = await this.#call<{ url: string }>('PortForward', { pod_sandbox_id: podSandboxId, port: [] });
    return response.url;
  }

  close(): void {
    this.#client.close();
  }
}
