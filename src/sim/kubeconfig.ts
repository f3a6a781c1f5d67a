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
  const caData = Buffer.from(o.caPem, 'utf8').toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${q(o.contextName)}`,
    '  cluster:',
    `    server: ${q(o.server)}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    `- name: ${q(o.userName)}`,
    '  user:',
    `    token: ${q(o.token)}`,
    'contexts:',
    `- name: ${q(o.contextName)}`,
    '  context:',
    `    cluster: ${q(o.contextName)}`,
    `    user: ${q(o.userName)}`,
    `    namespace: ${q(o.namespace)}`,
    `current-context: ${q(o.contextName)}`,
    'preferences: {}',
    '',
  ].join('\n');
}
