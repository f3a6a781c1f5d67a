/**
 * What a program needs to use a running kubesocks proxy: the proxy
 * variables (both spellings: curl reads `http_proxy` only in lower case,
 * Go and Python read either), and, for programs that ignore them (libpq's
 * psql, mysql, redis-cli), a proxychains-ng configuration that sends their
 * TCP connections and name lookups through the SOCKS5 port.
 */

export interface ProxyEndpoint {
  host: string;
  port: number;
  auth?: { username: string; password: string } | undefined;
}

/** Loopback stays direct: the proxy itself, and local servers the program talks to. */
export const NO_PROXY = 'localhost,127.0.0.1,::1';

function hostPort(endpoint: ProxyEndpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

function userinfo(endpoint: ProxyEndpoint): string {
  if (!endpoint.auth) return '';
  return `${encodeURIComponent(endpoint.auth.username)}:${encodeURIComponent(endpoint.auth.password)}@`;
}

/**
 * The variables, upper and lower case. `socks5h` (not `socks5`): the proxy
 * resolves the name, which is the whole point for cluster names.
 */
export function proxyVariables(endpoint: ProxyEndpoint): Record<string, string> {
  const at = `${userinfo(endpoint)}${hostPort(endpoint)}`;
  const values: Record<string, string> = {
    ALL_PROXY: `socks5h://${at}`,
    HTTP_PROXY: `http://${at}`,
    HTTPS_PROXY: `http://${at}`,
    NO_PROXY,
  };
  const both: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    both[name] = value;
    both[name.toLowerCase()] = value;
  }
  return both;
}

/** POSIX-shell single quoting. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@,+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME=value` lines for `eval "$(kubesocks env)"`. */
export function exportLines(variables: Record<string, string>): string {
  return Object.entries(variables)
    .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
    .join('');
}

/**
 * A proxychains-ng configuration: one SOCKS5 hop to the proxy, names
 * resolved by the proxy (`proxy_dns`: the program gets a placeholder address
 * from 224.0.0.0/8 that proxychains maps back to the name when it
 * connects), loopback excluded so the program still reaches local servers —
 * and so a program that also honours ALL_PROXY reaches the proxy directly.
 * See proxychains-ng's src/proxychains.conf for the directives.
 */
/**
 * Why proxychains4 cannot carry these credentials, or undefined. Its
 * configuration is whitespace-separated with `#` comments and no quoting, so
 * such a user or password would be cut short and every connection refused.
 */
export function proxychainsCredentialsProblem(auth: ProxyEndpoint['auth']): string | undefined {
  if (!auth) return undefined;
  for (const [what, value] of [['user', auth.username], ['password', auth.password]] as const) {
    if (/[\s#]/.test(value)) return `the proxy ${what} in KUBESOCKS_AUTH holds a space or "#", which proxychains4's configuration cannot carry`;
  }
  return undefined;
}

export function proxychainsConfig(endpoint: ProxyEndpoint): string {
  // proxychains takes the proxy as an IP address.
  const host = endpoint.host === 'localhost' ? '127.0.0.1' : endpoint.host;
  const credentials = endpoint.auth ? ` ${endpoint.auth.username} ${endpoint.auth.password}` : '';
  return [
    '# written by kubesocks exec; removed when the program exits',
    'strict_chain',
    'proxy_dns',
    'remote_dns_subnet 224',
    'tcp_read_time_out 15000',
    'tcp_connect_time_out 8000',
    'localnet 127.0.0.0/255.0.0.0',
    '[ProxyList]',
    `socks5 ${host} ${endpoint.port}${credentials}`,
    '',
  ].join('\n');
}
