/**
 * `labelSelector` and `fieldSelector` query parameters, parsed with the
 * grammar of k8s.io/apimachinery/pkg/labels and pkg/fields. A selector that
 * does not parse is a 400 BadRequest, as on a real server.
 */
import type { KubeObject, PodObject, ServiceObject } from './objects.js';
import type { ResourceName } from './resources.js';
import { badRequest } from './status.js';
import type { ScenarioLabelSelector } from './types.js';
import type { ReplicaSetObject } from './workloads.js';

export type Selector = (object: KubeObject) => boolean;

type LabelOp = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists' | 'gt' | 'lt';

interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

const IDENT = /[A-Za-z0-9._/-]/;

type Token = { kind: 'ident'; text: string } | { kind: 'op'; text: string };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i] ?? '';
    if (c === ' ' || c === '\t') {
      i++;
    } else if (IDENT.test(c)) {
      let j = i;
      while (j < input.length && IDENT.test(input[j] ?? '')) j++;
      tokens.push({ kind: 'ident', text: input.slice(i, j) });
      i = j;
    } else if (input.startsWith('==', i) || input.startsWith('!=', i)) {
      tokens.push({ kind: 'op', text: input.slice(i, i + 2) });
      i += 2;
    } else if ('=!(),<>'.includes(c)) {
      tokens.push({ kind: 'op', text: c });
      i++;
    } else {
      throw badRequest(`unable to parse requirement: found '${c}', expected: identifier`);
    }
  }
  return tokens;
}

/** Parses a label selector such as `app=web,tier!=db,env in (a,b),!legacy`. Empty → matches everything. */
export function parseLabelSelector(input: string): LabelRequirement[] {
  const tokens = tokenize(input);
  const requirements: LabelRequirement[] = [];
  let pos = 0;
  const peek = () => tokens[pos];
  const fail = (expected: string): never => {
    const found = peek()?.text ?? '';
    throw badRequest(`unable to parse requirement: found '${found}', expected: ${expected}`);
  };
  const ident = (): string => {
    const t = peek();
    if (t?.kind !== 'ident') return fail('identifier');
    pos++;
    return t.text;
  };
  const isOp = (text: string) => {
    const t = peek();
    return t?.kind === 'op' && t.text === text;
  };

  if (tokens.length === 0) return requirements;
  for (;;) {
    if (isOp('!')) {
      pos++;
      requirements.push({ key: ident(), op: 'notexists', values: [] });
    } else {
      const k = ident();
      const t = peek();
      if (t === undefined || (t.kind === 'op' && t.text === ',')) {
        requirements.push({ key: k, op: 'exists', values: [] });
      } else if (t.kind === 'op' && (t.text === '=' || t.text === '==' || t.text === '!=')) {
        pos++;
        // `a=` selects an empty value.
        const next = peek();
        const value = next?.kind === 'ident' ? ident() : '';
        requirements.push({ key: k, op: t.text === '!=' ? 'neq' : 'eq', values: [value] });
      } else if (t.kind === 'op' && (t.text === '>' || t.text === '<')) {
        pos++;
        const value = ident();
        if (!/^-?\d+$/.test(value)) throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`);
        requirements.push({ key: k, op: t.text === '>' ? 'gt' : 'lt', values: [value] });
      } else if (t.kind === 'ident' && (t.text === 'in' || t.text === 'notin')) {
        pos++;
        if (!isOp('(')) fail('(');
        pos++;
        const values: string[] = [];
        while (!isOp(')')) {
          const next = peek();
          values.push(next?.kind === 'ident' ? ident() : '');
          if (isOp(',')) pos++;
          else if (!isOp(')')) fail(', or )');
        }
        pos++;
        requirements.push({ key: k, op: t.text === 'in' ? 'in' : 'notin', values });
      } else {
        fail('=, !=, ==, in, notin');
      }
    }
    if (pos >= tokens.length) break;
    if (!isOp(',')) fail(',');
    pos++;
  }
  return requirements;
}

function matchesRequirement(labels: Record<string, string>, r: LabelRequirement): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case 'eq':
    case 'in':
      return has && r.values.includes(value ?? '');
    case 'neq':
    case 'notin':
      return !has || !r.values.includes(value ?? '');
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(value ?? '')) return false;
      const a = Number(value);
      const b = Number(r.values[0]);
      return r.op === 'gt' ? a > b : a < b;
    }
  }
}

export function labelSelector(input: string | null): Selector {
  const requirements = parseLabelSelector(input ?? '');
  return (object) => {
    const labels = object.metadata.labels ?? {};
    return requirements.every((r) => matchesRequirement(labels, r));
  };
}

/** Whether every key=value of a service-style selector map is among the labels. */
export function matchesSelectorMap(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/**
 * metav1.LabelSelectorAsSelector: every matchLabels pair and every
 * expression must hold. An empty selector matches everything (workloads never
 * have one: the scenario rejects it, as apps/v1 validation does).
 */
export function matchesLabelSelector(selector: ScenarioLabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  if (!matchesSelectorMap(selector.matchLabels ?? {}, l)) return false;
  return (selector.matchExpressions ?? []).every((e) => {
    const has = Object.hasOwn(l, e.key);
    switch (e.operator) {
      case 'In':
        return has && (e.values ?? []).includes(l[e.key] ?? '');
      case 'NotIn':
        return !has || !(e.values ?? []).includes(l[e.key] ?? '');
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
    }
  });
}

/** metav1.FormatLabelSelector: requirements sorted by key, `<none>` when empty (kubectl's SELECTOR column). */
export function formatLabelSelector(selector: ScenarioLabelSelector | undefined): string {
  const terms: Array<[string, string]> = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => [k, `${k}=${v}`]);
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...new Set(e.values ?? [])].sort().join(',');
    const text = e.operator === 'In' ? `${e.key} in (${values})` : e.operator === 'NotIn' ? `${e.key} notin (${values})` : e.operator === 'Exists' ? e.key : `!${e.key}`;
    terms.push([e.key, text]);
  }
  // A stable sort by key, as labels.internalSelector keeps its requirements.
  terms.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return terms.length > 0 ? terms.map(([, t]) => t).join(',') : '<none>';
}

type FieldGetter = (object: KubeObject) => string;

const COMMON_FIELDS: Record<string, FieldGetter> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace ?? '',
};

/** The field labels each resource supports (pkg/registry/core/*\/strategy.go ToSelectableFields). */
const RESOURCE_FIELDS: Record<ResourceName, Record<string, FieldGetter>> = {
  pods: {
    'spec.nodeName': (o) => (o as PodObject).spec.nodeName ?? '',
    'spec.restartPolicy': (o) => (o as PodObject).spec.restartPolicy,
    'spec.schedulerName': () => 'default-scheduler',
    'spec.serviceAccountName': () => 'default',
    'spec.hostNetwork': () => 'false',
    'status.phase': (o) => (o as PodObject).status.phase,
    'status.podIP': (o) => (o as PodObject).status.podIP ?? '',
    'status.nominatedNodeName': () => '',
  },
  services: {
    'spec.clusterIP': (o) => (o as ServiceObject).spec.clusterIP ?? '',
    'spec.type': (o) => (o as ServiceObject).spec.type,
  },
  namespaces: {
    'status.phase': () => 'Active',
  },
  endpoints: {},
  endpointslices: {},
  deployments: {},
  statefulsets: {},
  replicasets: {
    'status.replicas': (o) => String((o as ReplicaSetObject).status.replicas),
  },
};

/** Splits on unescaped commas; `\,` `\=` `\\` escape as in fields.ParseSelector. */
function splitTerms(input: string, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i] ?? '';
    if (c === '\\' && i + 1 < input.length) {
      current += c + (input[i + 1] ?? '');
      i++;
    } else if (c === separator) {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out;
}

function unescape(value: string): string {
  return value.replace(/\\(.)/g, '$1');
}

/** Parses `metadata.name=x,status.phase!=Failed`. Empty → matches everything. */
export function fieldSelector(resource: ResourceName, input: string | null): Selector {
  if (!input) return () => true;
  const getters = { ...COMMON_FIELDS, ...RESOURCE_FIELDS[resource] };
  const terms = splitTerms(input, ',').map((term) => {
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/s.exec(term);
    if (!m) throw badRequest(`invalid selector: '${input}'; can't understand '${term}'`);
    const field = (m[1] ?? '').trim();
    const getter = getters[field];
    if (!getter) throw badRequest(`field label not supported: ${field}`);
    return { getter, negate: m[2] === '!=', value: unescape(m[3] ?? '') };
  });
  return (object) => terms.every((t) => (t.getter(object) === t.value) !== t.negate);
}

/** The name a `metadata.name=X` field selector pins, if it pins one (for RBAC's name attribute). */
export function selectedName(input: string | null): string | undefined {
  if (!input) return undefined;
  const terms = splitTerms(input, ',');
  for (const term of terms) {
    const m = /^\s*metadata\.name\s*==?\s*(.*)$/s.exec(term);
    if (m) return unescape(m[1] ?? '');
  }
  return undefined;
}
