/**
 * Whether this machine can run real pod sandboxes: Linux, root, and the
 * Debian packages that scripts/containerd/ensure-packages.sh installs.
 */
import { accessSync, constants } from 'node:fs';

/** Programs and CNI plugins a real sandbox needs. */
const REQUIRED_FILES = ['/usr/bin/containerd', '/usr/bin/ctr', '/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/usr/lib/cni/loopback', '/bin/busybox'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasRunc(): boolean {
  return ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc'].some(executable);
}

/** Why real sandboxes cannot run here, or undefined when they can. */
export function runtimeUnsupportedReason(): string | undefined {
  if (process.platform !== 'linux') return `containers need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return `containerd needs root, this is uid ${process.getuid?.()}`;
  const missing = REQUIRED_FILES.filter((f) => !executable(f));
  if (!hasRunc()) missing.push('runc');
  if (missing.length > 0) return `missing ${missing.join(', ')} (run: bash scripts/containerd/ensure-packages.sh)`;
  return undefined;
}
