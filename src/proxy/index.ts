/**
 * The proxy front's public surface: one listener speaking SOCKS5, SOCKS4/4a
 * and HTTP (CONNECT, absolute-form, /proxy.pac, /healthz) in front of a
 * Connector. It knows nothing of Kubernetes.
 */
export {
  createProxyServer,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_HANDSHAKES,
  DEFAULT_MAX_HEADER_BYTES,
  type ConnectionRecord,
  type ProxyServer,
  type ProxyServerOptions,
  type ProxyStats,
} from './server.js';
export type { ProxyProtocol } from './connection.js';
export type { Credentials } from './auth.js';
export { FAILURE_REPLIES, failureReply, renderFailureRepliesMarkdown, SOCKS4_REPLY, SOCKS5_REPLY, type FailureReply } from './replies.js';
export { renderPac, PAC_CONTENT_TYPE, type PacOptions } from './pac.js';
export { isLoopbackHost } from './address.js';
export type { Connected, Connector, PacInfo, ProxyTarget } from './types.js';
