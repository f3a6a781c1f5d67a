/**
 * How the container runtime behind the simulated kubelet ends a stream pair
 * that failed: real runtimes differ, and kubesocks must read every order the
 * same way (text on the error stream means that pair failed).
 *
 * - `kubelet-1.32`: the kubelet's own streaming code from 1.32 on writes the
 *   error text, then resets both streams (RST_STREAM).
 *   https://github.com/kubernetes/kubernetes/blob/v1.32.0/pkg/kubelet/cri/streaming/portforward/httpstream.go
 * - `containerd`: containerd 1.6/1.7/2.0 vendor an older copy of that code:
 *   FIN on the data stream, then the error text, then FIN on the error
 *   stream, never an RST — the order on the wire from containerd 1.6.20
 *   (test/runtime/frames.test.ts compares these frames with the real
 *   runtime's). Its text names the sandbox id and an empty uid.
 *
 * Both answer SYN_REPLY on both streams before dialling the pod.
 */
import type { SpdyStream } from '../spdy/stream.js';

export const RUNTIME_PROFILES = ['kubelet-1.32', 'containerd'] as const;

export type RuntimeProfile = (typeof RUNTIME_PROFILES)[number];

export const DEFAULT_RUNTIME_PROFILE: RuntimeProfile = 'kubelet-1.32';

export function isRuntimeProfile(value: unknown): value is RuntimeProfile {
  return typeof value === 'string' && (RUNTIME_PROFILES as readonly string[]).includes(value);
}

/** Who the failing pair belongs to, as the runtime names it in its text. */
export interface FailingPod {
  /** Pod name (the kubelet names the pod). */
  name: string;
  uid: string;
  /** The pod sandbox id (containerd names the sandbox, with an empty uid). */
  sandboxId: string;
}

/** `error forwarding port P to pod …: REASON` as the profile words it (kubelet's httpstream.go portForward). */
export function errorForwardingText(profile: RuntimeProfile, port: number, pod: FailingPod, reason: string): string {
  return profile === 'containerd'
    ? `error forwarding port ${port} to pod ${pod.sandboxId}, uid : ${reason}`
    : `error forwarding port ${port} to pod ${pod.name}, uid ${pod.uid}: ${reason}`;
}

/** The dial refusal inside the pod's network namespace (containerd's sandbox_portforward_linux.go). */
export function refusedReason(profile: RuntimeProfile, port: number, sandboxId: string, cause: string): string {
  const netns = `/var/run/netns/cni-${sandboxId.slice(0, 8)}-${sandboxId.slice(8, 12)}-${sandboxId.slice(12, 16)}`;
  // containerd's format is "…, IPv4: %v IPv6 %v ": a trailing space, as on the wire.
  const ipv6 = profile === 'containerd' ? 'IPv6 dial tcp6: address localhost: no suitable address found ' : `IPv6 dial tcp6 [::1]:${port}: connect: ${cause} `;
  return (
    `failed to execute portforward in network namespace "${netns}": failed to connect to localhost:${port} ` +
    `inside namespace "${sandboxId}", IPv4: dial tcp4 127.0.0.1:${port}: connect: ${cause} ${ipv6}`
  );
}

/** Writes `text` on the error stream and ends the pair the way the profile's runtime does. */
export function failPair(profile: RuntimeProfile, errorStream: SpdyStream, dataStream: SpdyStream, text: string): void {
  if (profile === 'containerd') {
    // containerd's portForward closes the data stream inside its network
    // namespace callback (`defer stream.Close()`, sandbox_portforward_linux.go)
    // before the streaming code writes the text; that code's deferred Close()
    // then FINs the error stream. No RST. All three are queued at once (the
    // data stream's end() sends its FIN synchronously when nothing is
    // buffered), so a connection closed right after still carries them.
    if (!dataStream.destroyed && !dataStream.writableEnded) dataStream.end();
    if (!errorStream.destroyed && !errorStream.writableEnded) errorStream.end(text);
    return;
  }
  if (!errorStream.destroyed && !errorStream.writableEnded) errorStream.write(text);
  errorStream.reset();
  dataStream.reset();
}
