/**
 * Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/GROUP`,
 * `/apis/GROUP/VERSION`. Legacy (unaggregated) discovery only: kubectl since
 * 1.26 asks for aggregated `apidiscovery.k8s.io/v2` first but falls back when
 * the answer's Content-Type is plain `application/json`.
 */
import { RESOURCES } from './resources.js';
import type { ResourceInfo } from './resources.js';

/** The Kubernetes version the simulator claims: within kubectl's skew of the 1.32 client CI uses. */
export const SIM_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-kubesocks-sim' } as const;

export function versionInfo(): Record<string, string> {
  return {
    ...SIM_VERSION,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2024-12-11T00:00:00Z',
    goVersion: 'go1.23.3',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

function groups(): Map<string, ResourceInfo[]> {
  const out = new Map<string, ResourceInfo[]>();
  for (const info of Object.values(RESOURCES)) {
    const key = info.group === '' ? info.version : `${info.group}/${info.version}`;
    out.set(key, [...(out.get(key) ?? []), info]);
  }
  return out;
}

export function coreVersions(serverAddress: string): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupDocument(group: string): Record<string, unknown> | undefined {
  const versions = [...groups().keys()].filter((gv) => gv.startsWith(`${group}/`)).map((gv) => ({ groupVersion: gv, version: gv.slice(group.length + 1) }));
  const preferred = versions[0];
  if (!preferred) return undefined;
  return { name: group, versions, preferredVersion: preferred };
}

export function apiGroupList(): unknown {
  const names = [...new Set(Object.values(RESOURCES).map((r) => r.group).filter((g) => g !== ''))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: names.map((g) => groupDocument(g)) };
}

export function apiGroup(group: string): unknown {
  const doc = groupDocument(group);
  return doc ? { kind: 'APIGroup', apiVersion: 'v1', ...doc } : undefined;
}

/** Only the verbs this server implements are advertised, so `kubectl auth can-i`-style tooling is not misled. */
const VERBS = ['get', 'list', 'watch'];

/** APIResourceList for `v1` or `GROUP/VERSION`; undefined if not served. */
export function apiResourceList(groupVersion: string): unknown {
  const infos = groups().get(groupVersion);
  if (!infos) return undefined;
  const resources: unknown[] = [];
  for (const info of [...infos].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    resources.push({
      name: info.name,
      singularName: info.singularName,
      namespaced: info.namespaced,
      kind: info.kind,
      verbs: VERBS,
      ...(info.shortNames.length > 0 ? { shortNames: info.shortNames } : {}),
      ...(info.categories.length > 0 ? { categories: info.categories } : {}),
    });
    if (info.name === 'pods') {
      resources.push({ name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}
