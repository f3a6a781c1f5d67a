/**
 * URL paths of the simulated API server, parsed into what they address —
 * the same shapes apiserver's RequestInfoFactory recognises:
 *
 *   /api/v1/pods                                 list across namespaces
 *   /api/v1/namespaces/NS/pods[/NAME[/SUB]]      namespaced list / get / subresource
 *   /api/v1/namespaces[/NAME]                    cluster-scoped
 *   /apis/GROUP/v1/...                           the same under a group (apps, discovery.k8s.io)
 *   /api/v1/watch/...                            the deprecated watch prefix
 */
import { findResource } from './resources.js';
import type { ResourceInfo } from './resources.js';

export type Route =
  | { kind: 'version' }
  | { kind: 'health' }
  | { kind: 'coreVersions' }
  | { kind: 'groupList' }
  | { kind: 'group'; group: string }
  | { kind: 'resourceList'; groupVersion: string }
  | {
      kind: 'resource';
      info: ResourceInfo;
      namespace?: string;
      name?: string;
      subresource?: string;
      /** Reached through `/watch/`: always a watch. */
      legacyWatch: boolean;
    }
  | { kind: 'unknown' };

function resourceRoute(group: string, version: string, rest: string[]): Route {
  const legacyWatch = rest[0] === 'watch';
  const parts = legacyWatch ? rest.slice(1) : rest;
  const build = (resource: string | undefined, namespace?: string, name?: string, subresource?: string): Route => {
    const info = resource === undefined ? undefined : findResource(group, version, resource);
    if (!info) return { kind: 'unknown' };
    if (!info.namespaced && namespace !== undefined) return { kind: 'unknown' };
    return {
      kind: 'resource',
      info,
      legacyWatch,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(subresource !== undefined ? { subresource } : {}),
    };
  };
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    if (parts.length > 5) return { kind: 'unknown' };
    return build(parts[2], parts[1], parts[3], parts[4]);
  }
  if (parts.length === 1 || parts.length === 2) {
    const info = parts[0] === undefined ? undefined : findResource(group, version, parts[0]);
    // A namespaced resource has no /RESOURCE/NAME form.
    if (parts.length === 2 && info?.namespaced) return { kind: 'unknown' };
    return build(parts[0], undefined, parts[1]);
  }
  return { kind: 'unknown' };
}

export function parseRoute(pathname: string): Route {
  let segments: string[];
  try {
    segments = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    return { kind: 'unknown' };
  }
  const [first, second, third, ...rest] = segments;
  switch (first) {
    case 'version':
      return segments.length === 1 ? { kind: 'version' } : { kind: 'unknown' };
    case 'healthz':
    case 'livez':
    case 'readyz':
      return segments.length === 1 ? { kind: 'health' } : { kind: 'unknown' };
    case 'api':
      if (second === undefined) return { kind: 'coreVersions' };
      if (second !== 'v1') return { kind: 'unknown' };
      if (third === undefined) return { kind: 'resourceList', groupVersion: 'v1' };
      return resourceRoute('', 'v1', [third, ...rest]);
    case 'apis': {
      if (second === undefined) return { kind: 'groupList' };
      if (third === undefined) return { kind: 'group', group: second };
      const [resource, ...tail] = rest;
      if (resource === undefined) return { kind: 'resourceList', groupVersion: `${second}/${third}` };
      return resourceRoute(second, third, [resource, ...tail]);
    }
    default:
      return { kind: 'unknown' };
  }
}
