/**
 * Tearing a private containerd down without its help: what stop() does after
 * containerd is gone, what the process's exit and signals do for instances
 * still running, and what the next start() does for those of a process that
 * was killed (SIGKILL leaves no chance to clean up). Synchronous, so it can
 * run in an 'exit' handler.
 *
 * Each instance writes DIR/instance.json; what it names is all that is removed:
 * its containers (by the ids it created, with runc), containerd and its shims
 * (found by the instance's socket path in their command lines), the mounts
 * under DIR, its bridge device, its CNI result files, and DIR itself.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { debuglog } from 'node:util';

const debug = debuglog('kubesocks:runtime');

/** Name prefix of the instances' directories in the temporary directory. */
export const INSTANCE_PREFIX = 'kubesocks-containerd-';

/** Where runc keeps the state of containerd's `k8s.io` containers (io.containerd.runc.v2 default). */
const RUNC_ROOT = '/run/containerd/runc/k8s.io';
/** go-cni's cache of ADD results (not configurable in containerd 1.6). */
const CNI_RESULTS = '/var/lib/cni/results';

export interface InstanceRecord {
  dir: string;
  /** The process that started it: when it is dead, the instance is stale. */
  ownerPid: number;
  daemonPid: number | undefined;
  bridge: string;
  network: string;
  subnet: string;
  /** Sandbox and container ids it created. */
  ids: string[];
}

const live = new Set<InstanceRecord>();
let hooked = false;

function recordFile(record: InstanceRecord): string {
  return join(record.dir, 'instance.json');
}

/** Saves the record (DIR/instance.json) and makes sure exit and signals tear it down. */
export async function registerInstance(record: InstanceRecord): Promise<void> {
  live.add(record);
  hookProcess();
  await writeFile(recordFile(record), JSON.stringify(record));
}

export async function recordId(record: InstanceRecord, id: string): Promise<void> {
  record.ids.push(id);
  await writeFile(recordFile(record), JSON.stringify(record));
}

/** The instance was torn down: exit no longer needs to. */
export function forgetInstance(record: InstanceRecord): void {
  live.delete(record);
}

function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const record of live) teardownInstance(record);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Someone else (the CLI) handles this signal and will close the cluster,
      // then exit, which runs the 'exit' hook for anything left.
      if (process.listenerCount(signal) > 1) return;
      for (const record of live) teardownInstance(record);
      live.clear();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids whose command line mentions `needle` (containerd and its shims name the instance's socket). */
function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Mount points at or under `dir`, deepest first (mountinfo escapes spaces as \040). */
function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = text
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function quiet(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  debug('%s %s → %s', command, args.join(' '), result.status ?? result.signal ?? result.error?.message);
}

/**
 * Removes the instance directory with instance.json last, so a teardown cut
 * short (a SIGKILL during a long delete) still leaves the record that lets the
 * next start finish the job.
 */
function removeDirectory(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) if (entry !== 'instance.json') rmSync(join(dir, entry), { recursive: true, force: true, maxRetries: 3 });
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Removes everything `record` names. Idempotent; never throws. */
export function teardownInstance(record: InstanceRecord): void {
  try {
    for (const id of record.ids) {
      quiet('runc', ['--root', RUNC_ROOT, 'kill', '--all', id, 'KILL']);
      quiet('runc', ['--root', RUNC_ROOT, 'delete', '--force', id]);
    }
    const socket = join(record.dir, 'containerd.sock');
    const daemons = new Set([...pidsMentioning(socket), ...pidsMentioning(join(record.dir, 'config.toml'))]);
    for (const pid of daemons) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    for (const point of mountsUnder(record.dir)) quiet('umount', ['-l', point]);
    quiet('ip', ['link', 'delete', record.bridge]);
    try {
      for (const file of readdirSync(CNI_RESULTS)) if (file.startsWith(`${record.network}-`)) rmSync(join(CNI_RESULTS, file), { force: true });
    } catch {
      // No results directory.
    }
    removeDirectory(record.dir);
  } catch (err) {
    debug('teardown of %s incomplete: %s', record.dir, err);
  }
}

/** How old a directory without instance.json must be before it counts as abandoned. */
const ABANDONED_AFTER_MS = 10 * 60_000;

function removeIfAbandoned(dir: string): void {
  try {
    if (Date.now() - statSync(dir).mtimeMs < ABANDONED_AFTER_MS) return;
  } catch {
    return;
  }
  if (mountsUnder(dir).length > 0 || pidsMentioning(dir).length > 0) return;
  debug('removing abandoned %s', dir);
  removeDirectory(dir);
}

/** Tears down the instances of processes that died without doing so. */
export async function sweepStaleInstances(): Promise<void> {
  let entries: string[] = [];
  try {
    entries = readdirSync(tmpdir()).filter((name) => name.startsWith(INSTANCE_PREFIX));
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = join(tmpdir(), name);
    let record: InstanceRecord | undefined;
    try {
      record = JSON.parse(readFileSync(join(dir, 'instance.json'), 'utf8')) as InstanceRecord;
    } catch {
      // No record: a directory being set up (leave it), or what a teardown
      // cut short by an older version left — long idle, nothing mounted or running there.
      removeIfAbandoned(dir);
      continue;
    }
    if (record.dir !== dir || alive(record.ownerPid)) continue;
    debug('removing stale instance %s of dead process %d', dir, record.ownerPid);
    teardownInstance(record);
  }
}
