/**
 * A kubeconfig for the simulated cluster, in the shape `kubectl config view
 * --raw` prints: the CA inline (certificate-authority-data), a bearer token,
 * and a current context with a default namespace.
 */

export interface KubeconfigOptions {
  /** `https://127.0.0.1:PORT` */
  server: string;
  caPem: string;
  userName: string;
  token: string;
  namespace: string;
  contextName: string;
}

/** JSON strings are valid YAML double-quoted scalars: no escaping rules of our own. */
function q(value: string): string {
  return JSON.stringify(value);
}

export function kubeconfigYaml(o: KubeconfigOptions): string {
  return multiKubeconfigYaml([o]);
}

/**
 * One kubeconfig with a context per entry (each its own cluster and user,
 * named after the context, as several clusters' kubeconfigs merged); the
 * first entry is the current context.
 */
export function multiKubeconfigYaml(entries: readonly KubeconfigOptions[]): string {
  const first = entries[0];
  if (!first) throw new Error('multiKubeconfigYaml needs at least one entry');
  const several = entries.length > 1;
  // With several contexts, users are named after their context too: two clusters' "admin" users differ.
  const user = (o: KubeconfigOptions): string => (several ? `${o.contextName}-${o.userName}` : o.userName);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    ...entries.flatMap((o) => [
      `- name: ${q(o.contextName)}`,
      '  cluster:',
      `    server: ${q(o.server)}`,
      `    certificate-authority-data: ${Buffer.from(o.caPem, 'utf8').toString('base64')}`,
    ]),
    'users:',
    ...entries.flatMap((o) => [`- name: ${q(user(o))}`, '  user:', `    token: ${q(o.token)}`]),
    'contexts:',
    ...entries.flatMap((o) => [
      `- name: ${q(o.contextName)}`,
      '  context:',
      `    cluster: ${q(o.contextName)}`,
      `    user: ${q(user(o))}`,
      `    namespace: ${q(o.namespace)}`,
    ]),
    `current-context: ${q(first.contextName)}`,
    'preferences: {}',
    '',
  ].join('\n');
}
