/**
 * The proxy auto-config file served at /proxy.pac: cluster names go through
 * this proxy, everything else DIRECT, so a browser configured with it keeps
 * its normal internet access.
 *
 * PAC is JavaScript evaluated by the browser with helper functions
 * (https://developer.mozilla.org/en-US/docs/Web/HTTP/Proxy_servers_and_tunneling/Proxy_Auto-Configuration_PAC_file).
 * Every value from the cluster is embedded with JSON.stringify, and only
 * names that look like DNS names are embedded at all.
 */
import type { PacInfo } from '../net/connector.js';

export const PAC_CONTENT_TYPE = 'application/x-ns-proxy-autoconfig';

/** A DNS name (labels of letters, digits, hyphens; dots between). */
const DNS_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

export interface PacOptions extends PacInfo {
  /** `host:port` clients should use to reach this proxy (the address they fetched the PAC from). */
  proxyAddress: string;
}

/**
 * Renders the PAC file. A host goes through the proxy when it is
 * - `*.svc` (the short service forms `web.demo.svc`),
 * - the cluster domain or anything under it (`*.svc.cluster.local`, `*.pod.cluster.local`),
 * - `*.NS` for each namespace that exists (`web.demo`), except namespaces
 *   named like a public domain (`dev`, `com`): their services and pods are
 *   listed by exact name (`hosts`), so `go.dev` stays direct.
 * - `*.*.ALIAS` for each context alias (`web.demo.staging`, `web.demo.svc.staging`).
 * The proxy is offered as HTTP first and SOCKS5 second.
 */
export function renderPac(options: PacOptions): string {
  const clusterDomain = options.clusterDomain.toLowerCase().replace(/^\.+|\.+$/g, '');
  const namespaces = [...new Set(options.namespaces.map((ns) => ns.toLowerCase()))].filter((ns) => DNS_NAME.test(ns)).sort();
  const suffixes = ['.svc'];
  const exact: string[] = [];
  if (DNS_NAME.test(clusterDomain)) {
    suffixes.push(`.${clusterDomain}`);
    exact.push(clusterDomain);
  }
  for (const ns of namespaces) suffixes.push(`.${ns}`);
  for (const host of new Set((options.hosts ?? []).map((h) => h.toLowerCase()))) if (DNS_NAME.test(host)) exact.push(host);
  const aliases = [...new Set((options.aliases ?? []).map((a) => a.toLowerCase()))].filter((a) => DNS_NAME.test(a) && !a.includes('.')).sort();
  const proxy = `PROXY ${options.proxyAddress}; SOCKS5 ${options.proxyAddress}`;
  return `// kubesocks: cluster names through the proxy, everything else direct.
var proxy = ${JSON.stringify(proxy)};
// Host names ending in one of these go through the proxy: .svc, the cluster domain, and one per namespace.
var suffixes = ${JSON.stringify(suffixes)};
var exact = ${JSON.stringify(exact)};
// Context aliases: a name with at least a namespace before ".ALIAS" (web.demo.staging) goes through the proxy.
var aliases = ${JSON.stringify(aliases)};

function FindProxyForURL(url, host) {
  host = String(host).toLowerCase();
  if (host.charAt(host.length - 1) === ".") host = host.substring(0, host.length - 1);
  for (var i = 0; i < exact.length; i++) {
    if (host === exact[i]) return proxy;
  }
  for (var j = 0; j < suffixes.length; j++) {
    if (dnsDomainIs(host, suffixes[j]) && shExpMatch(host, "?*" + suffixes[j])) return proxy;
  }
  for (var k = 0; k < aliases.length; k++) {
    if (dnsDomainIs(host, "." + aliases[k]) && shExpMatch(host, "?*.?*." + aliases[k])) return proxy;
  }
  return "DIRECT";
}
`;
}
