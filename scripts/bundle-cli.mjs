/**
 * Bundles the `kubesocks` command into dist/cli.js (run by `npm run build`
 * after tsc; dist/index.js, the library, stays tsc's one file per module).
 *
 * Why: Node 20 loads ES modules one by one — resolve, read, compile, link —
 * and runs every CommonJS package imported from ESM through its CJS lexer
 * first. The ~100 modules `kubesocks serve` loaded cost about 90 ms of CPU
 * and 10 MiB of RSS before the `listening on` line (the bundle: ≈ 100 ms
 * of CPU in all, where `node -e 0` alone is 50; docs/performance.md).
 *
 * - Code splitting: `demo`, `forward`, `exec`, `status` stay separate files
 *   (dist/cli-*.js), loaded only by their command, as the dynamic imports in
 *   src/cli.ts say.
 * - Bundled packages: those the proxy loads at start (ws, js-yaml, lru-cache,
 *   pako). Every other package stays an import of node_modules as published:
 *   client-node's authenticators and the proxy agents load only when a
 *   kubeconfig needs them (src/kube/lazy-kubeconfig.ts), exactly the code
 *   client-node ships; bufferutil is a native addon.
 * - Every output file sits directly in dist/, and each module's
 *   `import.meta.url` is rewritten to the URL its own file has in tsc's dist/
 *   (dist/observe/observer.js, …), so paths relative to it — package.json for
 *   the version, proto/ for the containerd runtime — resolve as unbundled.
 * - `require` is defined in each output file for the bundled CommonJS
 *   packages' own require() of a package left outside (ws → bufferutil):
 *   without it esbuild's shim throws and ws would fall back to masking in
 *   JavaScript without a word.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');
/** Packages bundled into the command; every other package is imported from node_modules at run time. */
const BUNDLED_PACKAGES = ['ws', 'js-yaml', 'lru-cache', 'pako'];
const CHUNK_PREFIX = 'cli-';

/** A bare specifier's package name: `@scope/name/sub` → `@scope/name`, `ws/lib/x` → `ws`. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const packagesOutside = {
  name: 'packages-outside',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { path: args.path, external: true };
      return BUNDLED_PACKAGES.includes(packageName(args.path)) ? undefined : { path: args.path, external: true };
    });
  },
};

const importMetaAsInDist = {
  name: 'import-meta-url-as-in-dist',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!args.path.startsWith(SRC + '/') || !source.includes('import.meta.url')) return { contents: source, loader: 'ts' };
      const inDist = './' + relative(SRC, args.path).replace(/\.ts$/, '.js');
      return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(inDist)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

async function main() {
  // Chunks of an earlier build have other hashes: remove them, not tsc's files.
  for (const name of await readdir(DIST).catch(() => [])) {
    if (name.startsWith(CHUNK_PREFIX) && name.endsWith('.js')) await rm(join(DIST, name));
  }
  await build({
    entryPoints: { cli: join(SRC, 'cli.ts') },
    outdir: DIST,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: `${CHUNK_PREFIX}[name]-[hash]`,
    allowOverwrite: true,
    tsconfig: join(ROOT, 'tsconfig.json'),
    banner: { js: "import { createRequire as __kubesocksCreateRequire } from 'node:module';\nconst require = __kubesocksCreateRequire(import.meta.url);" },
    plugins: [packagesOutside, importMetaAsInDist],
    logLevel: 'warning',
  });
}

await main();
