/**
 * One private containerd with its CRI plugin: its own root, state, socket,
 * CNI bridge network and streaming port, so it never touches the machine's
 * own containerd (if any) and several can run side by side. Everything it
 * creates is torn down by stop(), by the process's exit or a signal (see
 * teardown.ts), and — after a SIGKILL — by the next start() on this machine.
 *
 * The configuration lines that matter on these machines are explained in
 * docs/real-runtime.md (restrict_oom_score_adj, netns_mounts_under_state_dir,
 * the plain-HTTP stream server).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { debuglog } from 'node:util';
import { CriClient } from './cri.js';
import { IMAGE_REF, buildImage } from './image.js';
import { runtimeUnsupportedReason } from './support.js';
import { INSTANCE_PREFIX, forgetInstance, recordId, registerInstance, sweepStaleInstances, teardownInstance } from './teardown.js';
import type { InstanceRecord } from './teardown.js';

const debug = debuglog('kubesocks:runtime');
const run = promisify(execFile);

/** How long containerd may take to answer CRI calls with its network ready. */
const READY_TIMEOUT_MS = 30_000;

/** The pods' subnets are 10.213.N.0/24, N chosen per instance among those no interface uses. */
const SUBNET_PREFIX = '10.213';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A /24 under 10.213/16 that no local address is in. */
async function freeSubnet(): Promise<number> {
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show']);
  const used = new Set([...stdout.matchAll(new RegExp(`inet ${SUBNET_PREFIX.replace('.', '\\.')}\\.(\\d+)\\.`, 'g'))].map((m) => Number(m[1])));
  const start = randomBytes(1)[0] ?? 0;
  for (let i = 0; i < 256; i++) {
    const n = (start + i) % 256;
    if (!used.has(n)) return n;
  }
  throw new Error(`every /24 in ${SUBNET_PREFIX}.0.0/16 is in use on this machine`);
}

function configToml(dir: string, streamPort: number): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGE_REF}"
  # Without it runc cannot lower oom_score_adj here (no CAP_SYS_RESOURCE) and RunPodSandbox fails.
  restrict_oom_score_adj = true
  # Network namespaces are bind-mounted under our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # The port-forward streaming server: plain HTTP on loopback, as the simulated kubelet proxies to it.
  stream_server_address = "127.0.0.1"
  stream_server_port = "${streamPort}"
  enable_tls_streaming = false
  stream_idle_timeout = "4h0m0s"
  enable_selinux = false
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni"
    max_conf_num = 1
`;
}

function cniConflist(network: string, bridge: string, subnet: number, dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: network,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: `${SUBNET_PREFIX}.${subnet}.0/24` }]], dataDir: join(dir, 'ipam') },
        },
      ],
    },
    null,
    2,
  );
}

export class Containerd {
  readonly cri: CriClient;
  /** The image pods (and sandboxes) run. */
  readonly imageRef = IMAGE_REF;
  readonly #record: InstanceRecord;
  readonly #daemon: ChildProcess;
  #stopping: Promise<void> | undefined;

  private constructor(record: InstanceRecord, daemon: ChildProcess, cri: CriClient) {
    this.#record = record;
    this.#daemon = daemon;
    this.cri = cri;
  }

  /** The instance's private directory (state, root, logs, socket). */
  get dir(): string {
    return this.#record.dir;
  }

  /** The CNI bridge device the pods hang off. */
  get bridge(): string {
    return this.#record.bridge;
  }

  /** The pods' subnet, e.g. `10.213.7.0/24`. */
  get subnet(): string {
    return this.#record.subnet;
  }

  /** containerd's log file (for failure messages). */
  get logFile(): string {
    return join(this.#record.dir, 'containerd.log');
  }

  /**
   * Starts containerd and imports the image. Rejects with the reason when the
   * machine cannot run containers (see runtimeUnsupportedReason()).
   */
  static async start(): Promise<Containerd> {
    const unsupported = runtimeUnsupportedReason();
    if (unsupported) throw new Error(`real pod sandboxes cannot run here: ${unsupported}; run as root on Linux, or use simulated sandboxes`);
    await sweepStaleInstances();
    const dir = await mkdtemp(join(tmpdir(), INSTANCE_PREFIX));
    const id = randomBytes(4).toString('hex');
    const subnetIndex = await freeSubnet();
    const record: InstanceRecord = {
      dir,
      ownerPid: process.pid,
      daemonPid: undefined,
      bridge: `ks${id}`,
      network: `kubesocks-${id}`,
      subnet: `${SUBNET_PREFIX}.${subnetIndex}.0/24`,
      ids: [],
    };
    await registerInstance(record);
    try {
      const streamPort = await freePort();
      await mkdir(join(dir, 'cni'), { recursive: true });
      await writeFile(join(dir, 'config.toml'), configToml(dir, streamPort));
      await writeFile(join(dir, 'cni', '10-kubesocks.conflist'), cniConflist(record.network, record.bridge, subnetIndex, dir));
      const log = await open(join(dir, 'containerd.log'), 'a');
      const daemon = spawn('containerd', ['--config', join(dir, 'config.toml'), '--log-level', 'info'], {
        stdio: ['ignore', log.fd, log.fd],
      });
      await log.close();
      record.daemonPid = daemon.pid;
      await registerInstance(record);
      daemon.once('exit', (code, signal) => debug('containerd %s exited: %s', dir, signal ?? code));
      const cri = await CriClient.connect(join(dir, 'containerd.sock'));
      const instance = new Containerd(record, daemon, cri);
      try {
        await instance.#waitReady();
        const archive = await buildImage(join(dir, 'image'));
        await run('ctr', ['--address', join(dir, 'containerd.sock'), '-n', 'k8s.io', 'images', 'import', archive]);
        debug('containerd ready in %s (bridge %s, %s, stream port %d)', dir, record.bridge, record.subnet, streamPort);
        return instance;
      } catch (err) {
        await instance.stop();
        throw err;
      }
    } catch (err) {
      teardownInstance(record);
      forgetInstance(record);
      throw err;
    }
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.#daemon.exitCode !== null || this.#daemon.signalCode !== null) {
        throw new Error(`containerd exited during start (${this.#daemon.signalCode ?? this.#daemon.exitCode}); see ${this.logFile}`);
      }
      try {
        await this.cri.version();
        const conditions = await this.cri.status();
        const notReady = conditions.filter((c) => !c.status);
        if (notReady.length === 0) return;
        last = notReady.map((c) => `${c.type}: ${c.reason} ${c.message}`).join('; ');
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`containerd did not become ready in ${READY_TIMEOUT_MS / 1000} s (${last}); see ${this.logFile}`);
  }

  /** Notes a sandbox or container id, so a teardown without containerd (exit, signal, next start) can still kill it. */
  async track(id: string): Promise<void> {
    await recordId(this.#record, id);
  }

  /**
   * Removes every sandbox through CRI (stopping its containers, its network
   * namespace and CNI attachment), stops containerd, then removes whatever is
   * left: mounts under its directory, the bridge, the directory. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      try {
        const ids = await this.cri.listPodSandboxIds();
        await Promise.all(
          ids.map(async (id) => {
            await this.cri.stopPodSandbox(id).catch((err) => debug('stop sandbox %s: %s', id, err));
            await this.cri.removePodSandbox(id).catch((err) => debug('remove sandbox %s: %s', id, err));
          }),
        );
      } catch (err) {
        debug('listing sandboxes failed, tearing down without containerd: %s', err);
      }
      this.cri.close();
      if (this.#daemon.exitCode === null && this.#daemon.signalCode === null) {
        const exited = new Promise((resolve) => this.#daemon.once('exit', resolve));
        this.#daemon.kill('SIGTERM');
        const timer = setTimeout(() => this.#daemon.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      teardownInstance(this.#record);
      forgetInstance(this.#record);
    })();
    return this.#stopping;
  }
}
