#!/usr/bin/env node
/** The `kubesocks` command: parses the command line and hands over to src/cli/*. */
import { isKubesocksError } from './errors.js';
import { UsageError } from './cli/flags.js';
import { SERVE_HELP, serve } from './cli/serve.js';

const HELP = `kubesocks — reach Kubernetes services and pods by their cluster DNS names through one local proxy port

Usage:
  kubesocks [serve] [flags]                 the SOCKS5/SOCKS4a/HTTP proxy (default command)
  kubesocks demo [flags]                    the proxy against a simulated cluster, no cluster needed
  kubesocks forward TYPE/NAME [LOCAL:]REMOTE…   like kubectl port-forward, without its failures
  kubesocks exec -- COMMAND [ARGS…]         run a program through a running proxy (proxychains4 when installed)
  kubesocks env                             print export lines: eval "$(kubesocks env)"
  kubesocks status [--listen ADDR] [-o json]   what a running proxy is doing (also http://ADDR/ in a browser)
  kubesocks --version                       the version

Run "kubesocks COMMAND --help" for a command's flags.

${SERVE_HELP}`;

/** The package's version, from the package.json beside dist/ (or src/ under tsx). */
async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  switch (first) {
    // Loaded on demand: `serve` never loads the simulator.
    case 'demo':
      return (await import('./cli/demo.js')).demo(rest);
    case 'forward':
      return (await import('./cli/forward.js')).forward(rest);
    case 'exec':
      return (await import('./cli/exec.js')).exec(rest);
    case 'env':
      return (await import('./cli/exec.js')).env(rest);
    case 'status':
      return (await import('./cli/status.js')).status(rest);
    case 'serve':
      return serve(rest);
    case 'version':
    case '--version':
    case '-V':
      process.stdout.write(`kubesocks ${await version()}\n`);
      return;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    default:
      if (first !== undefined && !first.startsWith('-')) throw new UsageError(`unknown command "${first}" (see kubesocks --help)`);
      return serve(argv);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`kubesocks: ${error.message}\n`);
    process.exit(2);
  }
  const message = isKubesocksError(error) ? `${error.message} [${error.code}]` : (error as Error).message;
  process.stderr.write(`kubesocks: ${message}\n`);
  process.exit(1);
});
