/**
 * Every failure a user can meet is a KubesocksError with a stable `code`.
 * Match on `error.code`, never on the message: messages are for people and
 * may be reworded; codes are part of the public API.
 *
 * Messages are one line that says what happened and what to do. They never
 * carry tokens, certificates or whole option objects.
 */

export const ERROR_CODES = {
  /** The kubelet could not connect to the port inside the pod (nothing listens there). */
  POD_REFUSED: 'the pod refused the connection on that port',
  /** The kubelet reported another port-forward failure on the error stream. */
  PORTFORWARD_FAILED: 'the kubelet could not forward the port',
  /** The pod's sandbox is gone (pod deleted or restarted) while a socket used it. */
  POD_GONE: 'the pod went away',
  /** No such service, pod or namespace. */
  NOT_FOUND: 'no such target in the cluster',
  /** The service exists but no endpoint is ready. */
  NO_READY_ENDPOINTS: 'the service has no ready endpoints',
  /** The service's endpoints are not pods (e.g. a manually managed EndpointSlice). */
  NOT_FORWARDABLE: 'the target cannot be reached through port-forward',
  /** The pod exists but is not running. */
  POD_NOT_RUNNING: 'the pod is not running',
  /** The service has no port with that number or name. */
  NO_SUCH_PORT: 'the target has no such port',
  /** RBAC (or the proxy's own policy) denied the request. */
  FORBIDDEN: 'forbidden',
  /** The API server rejected the credentials, even after one refresh. */
  UNAUTHORIZED: 'the API server rejected the credentials',
  /** Something took longer than its deadline. */
  TIMEOUT: 'timed out',
  /** The SPDY connection to the pod broke (API server or node went away, missed pings). */
  CONNECTION_LOST: 'the port-forward connection was lost',
  /** The peer reset the stream. */
  STREAM_RESET: 'the stream was reset',
  /** The API server answered the upgrade with something other than 101. */
  UPGRADE_FAILED: 'the API server refused the port-forward upgrade',
  /**
   * A peer spoke its protocol wrongly or asked for what the protocol allows
   * but port-forward cannot carry: a malformed SOCKS or HTTP request (or a
   * SOCKS BIND/UDP request), a destination's response that cannot be relayed,
   * a SPDY frame the session cannot accept. The message names the peer.
   */
  PROTOCOL_ERROR: 'a peer broke its protocol',
  /** A target that cannot be parsed (bad host or port). */
  BAD_TARGET: 'bad target',
  /** A destination outside the cluster while direct connections are denied. */
  DIRECT_DENIED: 'destinations outside the cluster are denied',
  /** A direct (non-cluster) connection failed. */
  DIRECT_FAILED: 'the direct connection failed',
  /** The kubeconfig is missing, unreadable or incomplete. */
  CONFIG: 'kubeconfig problem',
  /** The API server could not be reached at all. */
  API_UNREACHABLE: 'the API server is unreachable',
  /** A client of the proxy sent no or wrong proxy credentials. */
  PROXY_AUTH: 'proxy credentials missing or wrong',
  /** The proxy is at one of its limits (handshakes in flight) and closed a connection to make room. */
  OVERLOADED: 'the proxy is at a limit',
  /** The request uses a protocol feature the proxy does not implement (e.g. an unknown transfer coding). */
  NOT_IMPLEMENTED: 'not implemented by the proxy',
  /**
   * The work was abandoned because something closed: the client went away,
   * or the object asked (dialer, pool, proxy, connection) is closed.
   */
  CLOSED: 'closed',
  /** A listener could not start or stopped accepting connections (e.g. EMFILE: too many open files). */
  LISTEN_FAILED: 'the listener failed',
  /** A bug in kubesocks (or in a callback it was given) was caught; the one connection it hit was closed. */
  INTERNAL: 'internal error (a bug; please report it)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class KubesocksError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubesocksError';
    this.code = code;
  }
}

export function isKubesocksError(err: unknown): err is KubesocksError {
  return err instanceof KubesocksError;
}

/** Wraps anything thrown into a KubesocksError, keeping an existing code. */
export function asKubesocksError(err: unknown, fallback: ErrorCode = 'CONNECTION_LOST'): KubesocksError {
  if (err instanceof KubesocksError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ETIMEDOUT') return new KubesocksError('TIMEOUT', message, { cause: err });
  return new KubesocksError(fallback, message, { cause: err });
}

/**
 * The first non-empty line of an error's message (or of any text), trimmed
 * and capped at 300 characters: how a multi-line message from a library or
 * a plugin's stderr goes into a one-line KubesocksError message.
 */
export function firstLine(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  return (text.split('\n').find((line) => line.trim() !== '') ?? '').trim().slice(0, 300);
}
