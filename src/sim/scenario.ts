/**
 * Scenarios for the simulated cluster: loading and validating a scenario file
 * (shared/design.md), and the built-in demo scenario.
 *
 * Validation is strict — unknown fields are errors — and every message names
 * the offending field, so a typo in a hand-written file is found at once:
 * `scenario pods[2].ports[0].containerPort: expected an integer 1-65535, got "x"`.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { ADMIN_USER, randomToken } from './rbac.js';
import { RUNTIME_PROFILES, isRuntimeProfile } from './runtime-profile.js';
import type {
  BuiltinBackend,
  SandboxMode,
  Scenario,
  SimFeatureGates,
  ScenarioLabelSelector,
  ScenarioPod,
  ScenarioPort,
  ScenarioService,
  ScenarioServicePort,
  ScenarioUser,
  ScenarioWorkload,
  WorkloadResource,
} from './types.js';

const WORKLOAD_KEYS: readonly WorkloadResource[] = ['deployments', 'statefulsets', 'replicasets'];

/** A scenario (file or single entry) that does not validate. */
export class ScenarioError extends Error {
  readonly code = 'SCENARIO_INVALID';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScenarioError';
  }
}

export const BUILTIN_BACKENDS: readonly BuiltinBackend[] = ['http', 'echo', 'source', 'sink', 'closed'];

export type ParsedBackend = { kind: 'builtin'; name: BuiltinBackend } | { kind: 'address'; host: string; port: number };

/** A port's `backend`: a built-in name or `HOST:PORT` (`[v6]:PORT` for IPv6). Absent → `http`. */
export function parseBackend(backend: string | undefined): ParsedBackend | undefined {
  if (backend === undefined) return { kind: 'builtin', name: 'http' };
  if ((BUILTIN_BACKENDS as readonly string[]).includes(backend)) return { kind: 'builtin', name: backend as BuiltinBackend };
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(backend) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(backend);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { kind: 'address', host: m[1] ?? '', port };
}

// ---------------------------------------------------------------------------
// Validation helpers

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return JSON.stringify(value);
}

function fail(path: string, expected: string, value: unknown): never {
  throw new ScenarioError(`${path}: expected ${expected}, got ${describe(value)}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(path: string, value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!isRecord(value)) fail(path, 'an object', value);
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) throw new ScenarioError(`${path}: unknown field "${k}" (known: ${allowed.join(', ')})`);
  }
  return value;
}

function array(path: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) fail(path, 'an array', value);
  return value;
}

function string(path: string, value: unknown): string {
  if (typeof value !== 'string') fail(path, 'a string', value);
  return value;
}

function boolean(path: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(path, 'true or false', value);
  return value;
}

function integer(path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `an integer ${min}-${max}`, value);
  }
  return value;
}

function oneOf<T extends string>(path: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) fail(path, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** IANA_SVC_NAME: port names (≤ 15 chars, a letter, no double hyphen). */
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function dnsLabel(path: string, value: unknown): string {
  const s = string(path, value);
  if (s.length > 63 || !DNS1123_LABEL.test(s)) fail(path, 'a DNS-1123 label (lower-case letters, digits, "-", at most 63)', value);
  return s;
}

function serviceName(path: string, value: unknown): string {
  const s = string(path, value);
  if (s.length > 63 || !DNS1035_LABEL.test(s)) fail(path, 'a DNS-1035 label (starts with a letter; lower-case letters, digits, "-")', value);
  return s;
}

function dnsSubdomain(path: string, value: unknown): string {
  const s = string(path, value);
  if (s.length > 253 || !DNS1123_SUBDOMAIN.test(s)) fail(path, 'a DNS-1123 subdomain (lower-case letters, digits, "-", ".")', value);
  return s;
}

function portName(path: string, value: unknown): string {
  const s = string(path, value);
  if (s.length > 15 || !IANA_SVC_NAME.test(s) || !/[a-z]/.test(s) || s.includes('--')) {
    fail(path, 'a port name (IANA_SVC_NAME: at most 15 lower-case letters, digits, "-", with a letter)', value);
  }
  return s;
}

function ip(path: string, value: unknown): string {
  const s = string(path, value);
  if (isIP(s) === 0) fail(path, 'an IP address', value);
  return s;
}

/** A label key: `[PREFIX/]NAME`, PREFIX a DNS subdomain, NAME at most 63 letters, digits, `-_.`. */
function checkLabelKey(path: string, k: string, what: 'labels' | 'selector'): void {
  const name = k.includes('/') ? k.slice(k.lastIndexOf('/') + 1) : k;
  const prefix = k.includes('/') ? k.slice(0, k.lastIndexOf('/')) : undefined;
  if (name.length > 63 || !LABEL_NAME.test(name) || (prefix !== undefined && !DNS1123_SUBDOMAIN.test(prefix))) {
    throw new ScenarioError(`${path}: invalid ${what} key ${JSON.stringify(k)}`);
  }
}

function stringMap(path: string, value: unknown, what: 'labels' | 'selector'): Record<string, string> {
  if (!isRecord(value)) fail(path, 'an object of strings', value);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    checkLabelKey(path, k, what);
    const s = string(`${path}.${k}`, v);
    if (s.length > 63 || (s !== '' && !LABEL_NAME.test(s))) fail(`${path}.${k}`, 'a label value (at most 63 letters, digits, "-", "_", ".")', v);
    out[k] = s;
  }
  return out;
}

function protocol(path: string, value: unknown): 'TCP' | 'UDP' | 'SCTP' {
  return oneOf(path, value, ['TCP', 'UDP', 'SCTP'] as const);
}

// ---------------------------------------------------------------------------
// Entries

function validatePort(path: string, value: unknown): ScenarioPort {
  const o = object(path, value, ['name', 'containerPort', 'protocol', 'backend']);
  const port: ScenarioPort = { containerPort: integer(`${path}.containerPort`, o.containerPort, 1, 65535) };
  if (o.name !== undefined) port.name = portName(`${path}.name`, o.name);
  if (o.protocol !== undefined) port.protocol = protocol(`${path}.protocol`, o.protocol);
  if (o.backend !== undefined) {
    const backend = string(`${path}.backend`, o.backend);
    if (!parseBackend(backend)) fail(`${path}.backend`, `HOST:PORT or one of ${BUILTIN_BACKENDS.join(', ')}`, backend);
    port.backend = backend;
  }
  return port;
}

/** Validates one pod entry; `where` prefixes messages (e.g. `scenario pods[2]`). */
export function validatePod(value: unknown, where = 'pod'): ScenarioPod {
  const o = object(where, value, ['name', 'namespace', 'labels', 'ip', 'phase', 'ready', 'hostname', 'subdomain', 'terminating', 'nodeName', 'restartCount', 'ports']);
  const pod: ScenarioPod = { name: dnsSubdomain(`${where}.name`, o.name), namespace: dnsLabel(`${where}.namespace`, o.namespace) };
  if (o.labels !== undefined) pod.labels = stringMap(`${where}.labels`, o.labels, 'labels');
  if (o.ip !== undefined) pod.ip = ip(`${where}.ip`, o.ip);
  if (o.phase !== undefined) pod.phase = oneOf(`${where}.phase`, o.phase, ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const);
  if (o.ready !== undefined) pod.ready = boolean(`${where}.ready`, o.ready);
  if (o.hostname !== undefined) pod.hostname = dnsLabel(`${where}.hostname`, o.hostname);
  if (o.subdomain !== undefined) pod.subdomain = dnsLabel(`${where}.subdomain`, o.subdomain);
  if (o.terminating !== undefined) pod.terminating = boolean(`${where}.terminating`, o.terminating);
  if (o.nodeName !== undefined) pod.nodeName = o.nodeName === null ? null : dnsSubdomain(`${where}.nodeName`, o.nodeName);
  if (o.restartCount !== undefined) pod.restartCount = integer(`${where}.restartCount`, o.restartCount, 0, 2 ** 31 - 1);
  if (o.ports !== undefined) {
    pod.ports = array(`${where}.ports`, o.ports).map((p, i) => validatePort(`${where}.ports[${i}]`, p));
    const seen = new Set<string>();
    pod.ports.forEach((p, i) => {
      const key = `${p.containerPort}/${p.protocol ?? 'TCP'}`;
      if (seen.has(key)) throw new ScenarioError(`${where}.ports[${i}].containerPort: duplicate port ${key}`);
      seen.add(key);
      if (p.name !== undefined) {
        if (seen.has(`name:${p.name}`)) throw new ScenarioError(`${where}.ports[${i}].name: duplicate port name "${p.name}"`);
        seen.add(`name:${p.name}`);
      }
    });
  }
  return pod;
}

function validateServicePort(path: string, value: unknown): ScenarioServicePort {
  const o = object(path, value, ['name', 'port', 'targetPort', 'protocol']);
  const port: ScenarioServicePort = { port: integer(`${path}.port`, o.port, 1, 65535) };
  if (o.name !== undefined) port.name = portName(`${path}.name`, o.name);
  if (o.protocol !== undefined) port.protocol = protocol(`${path}.protocol`, o.protocol);
  if (o.targetPort !== undefined) {
    port.targetPort = typeof o.targetPort === 'string' ? portName(`${path}.targetPort`, o.targetPort) : integer(`${path}.targetPort`, o.targetPort, 1, 65535);
  }
  return port;
}

/** Validates one service entry; `where` prefixes messages (e.g. `scenario services[0]`). */
export function validateService(value: unknown, where = 'service'): ScenarioService {
  const o = object(where, value, ['name', 'namespace', 'type', 'clusterIP', 'selector', 'ports', 'externalName']);
  const svc: ScenarioService = { name: serviceName(`${where}.name`, o.name), namespace: dnsLabel(`${where}.namespace`, o.namespace) };
  if (o.type !== undefined) svc.type = oneOf(`${where}.type`, o.type, ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const);
  if (o.clusterIP !== undefined) svc.clusterIP = o.clusterIP === 'None' ? 'None' : ip(`${where}.clusterIP`, o.clusterIP);
  if (o.selector !== undefined) svc.selector = stringMap(`${where}.selector`, o.selector, 'selector');
  if (o.externalName !== undefined) {
    const name = string(`${where}.externalName`, o.externalName);
    if (!DNS1123_SUBDOMAIN.test(name.toLowerCase())) fail(`${where}.externalName`, 'a DNS name', o.externalName);
    svc.externalName = name;
  }
  if (o.ports !== undefined) {
    svc.ports = array(`${where}.ports`, o.ports).map((p, i) => validateServicePort(`${where}.ports[${i}]`, p));
    const names = new Set<string>();
    svc.ports.forEach((p, i) => {
      // The API server requires names once a service has several ports: slices match ports by name.
      if (svc.ports && svc.ports.length > 1 && p.name === undefined) throw new ScenarioError(`${where}.ports[${i}].name: required when a service has more than one port`);
      if (p.name !== undefined) {
        if (names.has(p.name)) throw new ScenarioError(`${where}.ports[${i}].name: duplicate port name "${p.name}"`);
        names.add(p.name);
      }
    });
  }
  const type = svc.type ?? (svc.externalName !== undefined ? 'ExternalName' : 'ClusterIP');
  if (type === 'ExternalName' && svc.externalName === undefined) throw new ScenarioError(`${where}.externalName: required for type ExternalName`);
  if (type === 'ExternalName' && svc.clusterIP !== undefined) throw new ScenarioError(`${where}.clusterIP: must be absent for type ExternalName`);
  if (type !== 'ExternalName' && svc.externalName !== undefined) throw new ScenarioError(`${where}.externalName: only for type ExternalName`);
  if (svc.clusterIP === 'None' && type !== 'ClusterIP') throw new ScenarioError(`${where}.clusterIP: "None" (headless) needs type ClusterIP`);
  return svc;
}

const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

function labelSelector(path: string, value: unknown): ScenarioLabelSelector {
  const o = object(path, value, ['matchLabels', 'matchExpressions']);
  const selector: ScenarioLabelSelector = {};
  if (o.matchLabels !== undefined) selector.matchLabels = stringMap(`${path}.matchLabels`, o.matchLabels, 'selector');
  if (o.matchExpressions !== undefined) {
    selector.matchExpressions = array(`${path}.matchExpressions`, o.matchExpressions).map((e, i) => {
      const where = `${path}.matchExpressions[${i}]`;
      const x = object(where, e, ['key', 'operator', 'values']);
      const key = string(`${where}.key`, x.key);
      checkLabelKey(`${where}.key`, key, 'selector');
      const operator = oneOf(`${where}.operator`, x.operator, SELECTOR_OPERATORS);
      const values =
        x.values === undefined
          ? undefined
          : array(`${where}.values`, x.values).map((v, j) => {
              const text = string(`${where}.values[${j}]`, v);
              if (text.length > 63 || (text !== '' && !LABEL_NAME.test(text))) fail(`${where}.values[${j}]`, 'a label value (at most 63 letters, digits, "-", "_", ".")', v);
              return text;
            });
      // metav1 validation: In/NotIn need values, Exists/DoesNotExist must have none.
      if ((operator === 'In' || operator === 'NotIn') && (values ?? []).length === 0) {
        throw new ScenarioError(`${where}.values: must be specified when \`operator\` is 'In' or 'NotIn'`);
      }
      if ((operator === 'Exists' || operator === 'DoesNotExist') && (values ?? []).length > 0) {
        throw new ScenarioError(`${where}.values: may not be specified when \`operator\` is 'Exists' or 'DoesNotExist'`);
      }
      return { key, operator, ...(values !== undefined ? { values } : {}) };
    });
  }
  if (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0) {
    throw new ScenarioError(`${path}: empty selector is invalid for an apps/v1 workload`);
  }
  return selector;
}

/** Validates one Deployment, StatefulSet or ReplicaSet entry; `where` prefixes messages (e.g. `scenario deployments[0]`). */
export function validateWorkload(value: unknown, resource: WorkloadResource, where: string = resource.slice(0, -1)): ScenarioWorkload {
  const fields = ['name', 'namespace', 'selector', 'replicas', ...(resource === 'statefulsets' ? ['serviceName'] : [])];
  const o = object(where, value, fields);
  const workload: ScenarioWorkload = {
    name: dnsSubdomain(`${where}.name`, o.name),
    namespace: dnsLabel(`${where}.namespace`, o.namespace),
    selector: labelSelector(`${where}.selector`, o.selector),
  };
  if (o.replicas !== undefined) workload.replicas = integer(`${where}.replicas`, o.replicas, 0, 2 ** 31 - 1);
  if (o.serviceName !== undefined) workload.serviceName = serviceName(`${where}.serviceName`, o.serviceName);
  return workload;
}

/** Validates one user entry; `where` prefixes messages (e.g. `scenario users[0]`). */
export function validateUser(value: unknown, where = 'user'): ScenarioUser {
  const o = object(where, value, ['name', 'token', 'rules']);
  const name = string(`${where}.name`, o.name);
  if (name === '' || name === ADMIN_USER) fail(`${where}.name`, `a user name other than "${ADMIN_USER}"`, o.name);
  const token = string(`${where}.token`, o.token);
  if (!/^[\x21-\x7e]+$/.test(token)) fail(`${where}.token`, 'a non-empty token of printable ASCII without spaces', '<redacted>');
  const user: ScenarioUser = { name, token };
  if (o.rules !== undefined) {
    user.rules = array(`${where}.rules`, o.rules).map((r, i) => {
      const path = `${where}.rules[${i}]`;
      const rule = object(path, r, ['verbs', 'resources', 'namespaces']);
      const strings = (field: string, v: unknown) => array(`${path}.${field}`, v).map((s, j) => string(`${path}.${field}[${j}]`, s));
      return {
        verbs: strings('verbs', rule.verbs),
        resources: strings('resources', rule.resources),
        ...(rule.namespaces !== undefined ? { namespaces: strings('namespaces', rule.namespaces) } : {}),
      };
    });
  }
  return user;
}

export const SANDBOX_MODES: readonly SandboxMode[] = ['simulated', 'containerd'];

/**
 * A pod with a real sandbox serves its ports inside its own network
 * namespace, where a `HOST:PORT` on this machine cannot be: built-in backends only.
 */
export function checkRealPod(pod: ScenarioPod, path = 'pod'): void {
  (pod.ports ?? []).forEach((port, i) => {
    if (parseBackend(port.backend)?.kind === 'address') {
      fail(`${path}.ports[${i}].backend`, `one of ${BUILTIN_BACKENDS.join(', ')} (with real sandboxes a port is served inside the pod)`, port.backend);
    }
  });
}

/** Validates a whole scenario (a parsed JSON value). */
export function validateScenario(value: unknown): Scenario {
  const o = object('scenario', value, ['runtime', 'sandboxes', 'namespaces', 'pods', 'services', ...WORKLOAD_KEYS, 'users', 'featureGates']);
  const scenario: Scenario = {
    pods: o.pods === undefined ? [] : array('scenario pods', o.pods).map((p, i) => validatePod(p, `scenario pods[${i}]`)),
    services: o.services === undefined ? [] : array('scenario services', o.services).map((s, i) => validateService(s, `scenario services[${i}]`)),
  };
  if (o.runtime !== undefined) {
    if (!isRuntimeProfile(o.runtime)) fail('scenario runtime', `one of ${RUNTIME_PROFILES.map((r) => `"${r}"`).join(', ')}`, o.runtime);
    scenario.runtime = o.runtime;
  }
  if (o.namespaces !== undefined) scenario.namespaces = array('scenario namespaces', o.namespaces).map((n, i) => dnsLabel(`scenario namespaces[${i}]`, n));
  for (const resource of WORKLOAD_KEYS) {
    const entries = o[resource];
    if (entries !== undefined) {
      scenario[resource] = array(`scenario ${resource}`, entries).map((w, i) => validateWorkload(w, resource, `scenario ${resource}[${i}]`));
    }
  }
  if (o.users !== undefined) scenario.users = array('scenario users', o.users).map((u, i) => validateUser(u, `scenario users[${i}]`));
  if (o.sandboxes !== undefined) {
    const mode = string('scenario sandboxes', o.sandboxes);
    if (!(SANDBOX_MODES as readonly string[]).includes(mode)) fail('scenario sandboxes', `one of ${SANDBOX_MODES.join(', ')}`, mode);
    scenario.sandboxes = mode as SandboxMode;
    if (mode === 'containerd') scenario.pods.forEach((p, i) => checkRealPod(p, `scenario pods[${i}]`));
  }
  if (o.featureGates !== undefined) scenario.featureGates = validateFeatureGates(o.featureGates, 'scenario featureGates');

  const unique = (kind: string, keys: string[]) => {
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      if (seen.has(k)) throw new ScenarioError(`scenario ${kind}[${i}]: duplicate ${k}`);
      seen.add(k);
    });
  };
  unique('pods', scenario.pods.map((p) => `pod ${p.namespace}/${p.name}`));
  unique('services', scenario.services.map((s) => `service ${s.namespace}/${s.name}`));
  for (const resource of WORKLOAD_KEYS) unique(resource, (scenario[resource] ?? []).map((w) => `${resource.slice(0, -1)} ${w.namespace}/${w.name}`));
  unique('users', (scenario.users ?? []).map((u) => `user ${u.name}`));
  const tokens = new Set<string>();
  (scenario.users ?? []).forEach((u, i) => {
    // Never echo a token in a message.
    if (tokens.has(u.token)) throw new ScenarioError(`scenario users[${i}].token: the same token as another user`);
    tokens.add(u.token);
  });
  return scenario;
}

/** Reads and validates a scenario file (JSON). */
export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(`scenario ${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ScenarioError(`scenario ${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  return validateScenario(parsed);
}

// ---------------------------------------------------------------------------
// The built-in demo scenario

/**
 * Namespace `demo`: service `web` (80 → named port `http`, 8080) over three
 * ready pods and a not-ready one, `web-0` also declaring a `metrics` port where
 * nothing listens, all selected by deployment `web` (4 replicas); `echo` (7)
 * over two echo pods; headless `db` (5432) over `db-0`, `db-1` (echo backend),
 * selected by statefulset `db`; ExternalName `docs` → example.com; pod
 * `lonely` with no service. Namespace `other`: service `api` (80 → 8080) over
 * `api-0`. Users besides admin: `viewer` (read everything, no port-forward),
 * `nowatch` (get — endpoints included — and port-forward, no list/watch),
 * `scoped` (everything, in `demo` only). Tokens are fresh on every call.
 */
export function demoScenario(): Scenario {
  const web = (i: number, ready: boolean): ScenarioPod => ({
    name: `web-${i}`,
    namespace: 'demo',
    labels: { app: 'web' },
    ip: `10.244.0.${10 + i}`,
    ready,
    ports: [
      { name: 'http', containerPort: 8080, backend: 'http' },
      ...(i === 0 ? [{ name: 'metrics', containerPort: 9090, backend: 'closed' }] : []),
    ],
  });
  const echo = (i: number): ScenarioPod => ({
    name: `echo-${i}`,
    namespace: 'demo',
    labels: { app: 'echo' },
    ip: `10.244.0.${20 + i}`,
    ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }],
  });
  const db = (i: number): ScenarioPod => ({
    name: `db-${i}`,
    namespace: 'demo',
    labels: { app: 'db' },
    ip: `10.244.0.${30 + i}`,
    hostname: `db-${i}`,
    subdomain: 'db',
    ports: [{ name: 'postgres', containerPort: 5432, backend: 'echo' }],
  });
  const read = ['get', 'list', 'watch'];
  const everything = ['pods', 'services', 'endpointslices', 'endpoints', 'namespaces', 'deployments', 'statefulsets', 'replicasets'];
  return {
    namespaces: ['demo', 'other'],
    pods: [
      web(0, true),
      web(1, true),
      web(2, true),
      web(3, false),
      echo(0),
      echo(1),
      db(0),
      db(1),
      { name: 'lonely', namespace: 'demo', labels: { app: 'lonely' }, ip: '10.244.0.40', ports: [{ name: 'http', containerPort: 8080, backend: 'http' }] },
      { name: 'api-0', namespace: 'other', labels: { app: 'api' }, ip: '10.244.1.10', ports: [{ name: 'http', containerPort: 8080, backend: 'http' }] },
    ],
    services: [
      { name: 'web', namespace: 'demo', clusterIP: '10.96.100.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      { name: 'echo', namespace: 'demo', clusterIP: '10.96.100.7', selector: { app: 'echo' }, ports: [{ name: 'echo', port: 7, targetPort: 7 }] },
      { name: 'db', namespace: 'demo', clusterIP: 'None', selector: { app: 'db' }, ports: [{ name: 'postgres', port: 5432, targetPort: 5432 }] },
      { name: 'docs', namespace: 'demo', type: 'ExternalName', externalName: 'example.com', ports: [{ name: 'https', port: 443 }] },
      { name: 'api', namespace: 'other', clusterIP: '10.96.200.10', selector: { app: 'api' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    ],
    deployments: [{ name: 'web', namespace: 'demo', selector: { matchLabels: { app: 'web' } }, replicas: 4 }],
    statefulsets: [{ name: 'db', namespace: 'demo', selector: { matchLabels: { app: 'db' } }, replicas: 2, serviceName: 'db' }],
    users: [
      { name: 'viewer', token: randomToken(), rules: [{ verbs: read, resources: everything }] },
      {
        name: 'nowatch',
        token: randomToken(),
        rules: [
          { verbs: ['get'], resources: everything },
          { verbs: ['create'], resources: ['pods/portforward'] },
        ],
      },
      { name: 'scoped', token: randomToken(), rules: [{ verbs: ['*'], resources: ['*'], namespaces: ['demo'] }] },
    ],
  };
}

/** `{"PortForwardWebsockets": false}`: known gates only, booleans only. */
export function validateFeatureGates(value: unknown, where: string): Partial<SimFeatureGates> {
  const o = object(where, value, ['PortForwardWebsockets']);
  const gates: Partial<SimFeatureGates> = {};
  if (o.PortForwardWebsockets !== undefined) {
    if (typeof o.PortForwardWebsockets !== 'boolean') throw new ScenarioError(`${where}.PortForwardWebsockets: expected true or false`);
    gates.PortForwardWebsockets = o.PortForwardWebsockets;
  }
  return gates;
}
