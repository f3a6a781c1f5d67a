/**
 * Authentication (bearer tokens) and authorization (RBAC-like rules) for the
 * simulated API server. Denials are worded exactly as the real API server's
 * (apiserver/pkg/endpoints/handlers/responsewriters/errors.go forbiddenMessage),
 * because users and clients read them.
 */
import { randomBytes } from 'node:crypto';
import type { ScenarioUser } from './types.js';
import { forbidden } from './status.js';
import type { StatusError } from './status.js';

/** The user the simulator always creates, with every right. */
export const ADMIN_USER = 'admin';

/** What a request asks to do, as the real authorizer sees it (authorizer.Attributes). */
export interface RequestAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** Absent for cluster-scoped requests (namespaces, lists across all namespaces). */
  namespace?: string;
  name?: string;
}

export interface SimUser {
  name: string;
  token: string;
  rules: ScenarioUser['rules'];
}

/** A fresh unguessable bearer token. */
export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}

type Rule = NonNullable<ScenarioUser['rules']>[number];

/** rbac/v1 ResourceMatches: `*`, the exact `resource/subresource`, or `*\/subresource`. */
function resourceMatches(rule: Rule, attrs: RequestAttributes): boolean {
  const combined = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  return rule.resources.some(
    (r) => r === '*' || r === combined || (attrs.subresource !== undefined && r === `*/${attrs.subresource}`),
  );
}

function ruleAllows(rule: Rule, attrs: RequestAttributes): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(attrs.verb)) return false;
  if (!resourceMatches(rule, attrs)) return false;
  // A rule limited to namespaces is a RoleBinding: it never grants cluster-scoped requests.
  if (rule.namespaces === undefined) return true;
  return attrs.namespace !== undefined && rule.namespaces.includes(attrs.namespace);
}

export class Users {
  readonly #byToken = new Map<string, SimUser>();
  readonly #byName = new Map<string, SimUser>();
  readonly #revoked = new Set<string>();

  constructor(users: ScenarioUser[], adminToken: string) {
    this.add({ name: ADMIN_USER, token: adminToken });
    for (const u of users) this.add(u);
  }

  /** Adds a user, or replaces the user of that name (its old token stops working). */
  add(user: ScenarioUser): void {
    const old = this.#byName.get(user.name);
    if (old) this.#byToken.delete(old.token);
    const entry: SimUser = { name: user.name, token: user.token, rules: user.rules };
    this.#byName.set(user.name, entry);
    this.#byToken.set(user.token, entry);
  }

  tokenFor(name: string): string {
    const user = this.#byName.get(name);
    if (!user) throw new Error(`simulated cluster: no user named "${name}"`);
    return user.token;
  }

  /** From now on the token gets 401 everywhere. */
  revoke(token: string): void {
    this.#revoked.add(token);
  }

  /** The user an `Authorization` header names, or undefined (→ 401). */
  authenticate(authorization: string | undefined): SimUser | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const token = m?.[1];
    if (!token || this.#revoked.has(token)) return undefined;
    return this.#byToken.get(token);
  }

  allows(user: SimUser, attrs: RequestAttributes): boolean {
    if (user.rules === undefined) return true;
    return user.rules.some((rule) => ruleAllows(rule, attrs));
  }

  /** Throws the real 403 Status unless `user` may do `attrs`. */
  authorize(user: SimUser, attrs: RequestAttributes): void {
    if (!this.allows(user, attrs)) throw forbiddenError(user.name, attrs);
  }
}

/** `User "u" cannot list resource "pods" in API group "" in the namespace "ns"`. */
export function forbiddenMessage(userName: string, attrs: RequestAttributes): string {
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const where = attrs.namespace ? `in the namespace "${attrs.namespace}"` : 'at the cluster scope';
  return `User "${userName}" cannot ${attrs.verb} resource "${resource}" in API group "${attrs.group}" ${where}`;
}

export function forbiddenError(userName: string, attrs: RequestAttributes): StatusError {
  return forbidden({ group: attrs.group, resource: attrs.resource }, attrs.name, forbiddenMessage(userName, attrs));
}
