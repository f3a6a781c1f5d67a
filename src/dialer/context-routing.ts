/**
 * The name-routing step that runs before a context's own resolution: which
 * context a host name belongs to, and the name to resolve there. Pure.
 *
 * A name belongs to context ALIAS when its last label is ALIAS and what is
 * left before it is one of the cluster's name forms with at least a
 * namespace: `svc.ns.ALIAS`, `pod.ns.ALIAS`, `svc.ns.svc.ALIAS`,
 * `host.svc.ns.svc.ALIAS`, `a-b-c-d.ns.pod.ALIAS`. Everything else belongs to
 * the connection's selected context (the default, or the one its proxy
 * username chose), which keeps every form it has without contexts:
 *
 * - `web.staging` (two labels) is service web in namespace staging of the
 *   selected context, even when `staging` is also an alias: an alias needs a
 *   namespace before it.
 * - `web.demo.svc.cluster.local` and other names under the cluster domain
 *   are the selected context's (the cluster domain is checked first).
 * - IP literals are the selected context's: ClusterIP and pod ranges overlap
 *   between clusters (10.96.0.1 is in every one), so an address alone cannot
 *   name a cluster. Use `a-b-c-d.ns.pod.ALIAS` for a pod IP elsewhere.
 * - `a.b.c.d.ALIAS` (no cluster form before the alias) is not the context's:
 *   it goes on as an ordinary host name.
 */
import { canonicalIP, normalizeHost, parseName } from '../resolve/names.js';

export interface RoutedName {
  /** The alias of the context the name belongs to. */
  alias: string;
  /** The name to resolve in that context (the alias removed). */
  name: string;
}

export interface RouteOptions {
  /** Every alias served. */
  aliases: ReadonlySet<string>;
  /** The cluster DNS domain (names under it are never alias names). */
  clusterDomain: string;
}

/** The context a name ending in an alias belongs to, or null when it is the selected context's. */
export function routeByAlias(host: string, options: RouteOptions): RoutedName | null {
  const name = normalizeHost(host);
  if (name === '' || canonicalIP(name) !== null) return null;
  const domain = normalizeHost(options.clusterDomain);
  if (domain !== '' && (name === domain || name.endsWith(`.${domain}`))) return null;
  const labels = name.split('.');
  if (labels.length < 3) return null;
  const alias = labels[labels.length - 1] as string;
  if (!options.aliases.has(alias)) return null;
  const rest = labels.slice(0, -1).join('.');
  // Which context's namespace single labels would use does not matter: `rest` has two labels or more.
  const readings = parseName(rest, { clusterDomain: domain, namespace: 'default' });
  const first = readings[0];
  if (first && (first.kind === 'ip' || (first.kind === 'external' && readings.length === 1))) return null;
  return { alias, name: rest };
}
