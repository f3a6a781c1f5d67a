/**
 * Context aliases: the DNS label that names a kubeconfig context inside host
 * names (`web.demo.ALIAS`). Kubeconfig context names are free text (EKS:
 * `arn:aws:eks:eu-west-1:123456789012:cluster/prod`, GKE:
 * `gke_project_europe-west1_prod`); a host name label is `[a-z0-9-]`, at most
 * 63 characters, and starts and ends with a letter or digit (RFC 1123 §2.1).
 */
import { KubesocksError } from '../errors.js';

/**
 * Labels an alias may not be: `svc` and `pod` end the cluster's own short
 * forms (`web.demo.svc`, `10-244-0-10.demo.pod`), so `web.demo.svc` would
 * mean two things.
 */
export const RESERVED_ALIASES: ReadonlySet<string> = new Set(['svc', 'pod']);

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The alias a context gets unless `--alias` names it: lower-cased, every
 * character outside `[a-z0-9-]` folded to `-`, and leading or trailing `-`
 * dropped (a label cannot start or end with one). May return a string that
 * is still no valid alias (empty, too long, reserved): assignAliases says so.
 */
export function foldAlias(contextName: string): string {
  return contextName
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Why `alias` cannot be used, or null when it can. */
export function aliasProblem(alias: string): string | null {
  if (alias === '') return 'is empty';
  if (alias.length > 63) return `is ${alias.length} characters long (a DNS label has at most 63)`;
  if (!LABEL.test(alias)) return 'is not a DNS label (letters a-z, digits and "-", starting and ending with a letter or digit)';
  if (RESERVED_ALIASES.has(alias)) return `is reserved ("${alias}" ends the cluster's own names, e.g. web.demo.${alias})`;
  return null;
}

/** An `--alias NAME=CONTEXT` flag. */
export interface AliasOverride {
  alias: string;
  context: string;
}

/** Parses `NAME=CONTEXT` (the context name may itself contain `=`: the first one splits). */
export function parseAliasOverride(value: string): AliasOverride {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) {
    throw new KubesocksError('CONFIG', `--alias ${JSON.stringify(value)}: expected NAME=CONTEXT, e.g. --alias prod=arn:aws:eks:eu-west-1:123456789012:cluster/prod`);
  }
  const alias = value.slice(0, eq);
  const problem = aliasProblem(alias);
  if (problem) throw new KubesocksError('CONFIG', `--alias ${value}: the alias "${alias}" ${problem}`);
  return { alias, context: value.slice(eq + 1) };
}

/**
 * One alias per context, in the order given. Overrides name a context
 * explicitly; every other context gets foldAlias(). Two contexts with the
 * same alias, or an alias that is no DNS label, are a start-up error that
 * names the `--alias` flag that fixes it — except for a lone context, which
 * then has no alias ('') and is reached by its other names.
 */
export function assignAliases(contexts: readonly string[], overrides: readonly AliasOverride[] = []): Map<string, string> {
  const served = new Set(contexts);
  const chosen = new Map<string, string>();
  for (const o of overrides) {
    if (!served.has(o.context)) {
      throw new KubesocksError('CONFIG', `--alias ${o.alias}=${o.context}: context "${o.context}" is not served (add --context ${o.context}, or --all-contexts)`);
    }
    const earlier = chosen.get(o.context);
    if (earlier !== undefined && earlier !== o.alias) {
      throw new KubesocksError('CONFIG', `--alias: context "${o.context}" is given two aliases, "${earlier}" and "${o.alias}"; keep one`);
    }
    chosen.set(o.context, o.alias);
  }
  const byAlias = new Map<string, string>();
  const byContext = new Map<string, string>();
  for (const context of contexts) {
    const explicit = chosen.get(context);
    const alias = explicit ?? foldAlias(context);
    if (explicit === undefined) {
      const problem = aliasProblem(alias);
      // A lone context needs no alias to be reached: it keeps working without one ('').
      if (problem && contexts.length === 1) {
        byContext.set(context, '');
        continue;
      }
      if (problem) {
        throw new KubesocksError('CONFIG', `context "${context}" gives the alias "${alias}", which ${problem}: name it with --alias NAME=${context}`);
      }
    }
    const other = byAlias.get(alias);
    if (other !== undefined) {
      // Suggest renaming the one whose alias was not chosen by hand.
      const rename = chosen.get(context) === undefined ? context : other;
      throw new KubesocksError(
        'CONFIG',
        `contexts "${other}" and "${context}" both get the alias "${alias}": name one with --alias NAME=${rename}`,
      );
    }
    byAlias.set(alias, context);
    byContext.set(context, alias);
  }
  return byContext;
}
