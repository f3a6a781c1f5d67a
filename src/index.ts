/**
 * kubesocks as a library: connections straight to pods and services by their
 * cluster names, through pods/portforward, with no local port.
 *
 *   const dialer = await createDialer({ context: 'prod' });
 *   const socket = await dialer.connect('web.demo.svc.cluster.local:80');
 *   http.get('http://web.demo/', { agent: dialer.agent() });
 *   await dialer.close();
 *
 * Several contexts side by side (docs/contexts.md):
 *
 *   const dialer = await createDialer({ contexts: ['prod', { context: 'gke_acme_eu_staging', alias: 'staging' }] });
 *   await dialer.connect('web.demo.staging:80');
 *   await dialer.connect({ context: 'staging', namespace: 'demo', pod: 'web-0', port: 8080 });
 */
export { createDialer, Dialer, type DialerOptions, type ConnectOptions, type ContextChoice } from './dialer/dialer.js';
export type { ContextInfo } from './dialer/contexts.js';
export type { KubeconfigEvent } from './kube/kubeconfig-reload.js';
export { KubeSocket } from './dialer/kube-socket.js';
export type { DialTarget, PodTarget, ServiceTarget, HostTarget } from './dialer/dial-target.js';
export { KubesocksError, ERROR_CODES, isKubesocksError, type ErrorCode } from './errors.js';
export { createProxyServer, type ProxyServer } from './proxy/server.js';
export type { Connector, Connected, ProxyTarget, PacInfo } from './net/connector.js';
export type { TunnelPoolOptions, PoolStats } from './tunnel/pool.js';
