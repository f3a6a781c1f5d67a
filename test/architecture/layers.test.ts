/**
 * The layer map holds: no import goes up or sideways, every file of src/
 * is in a room, and docs/design.md shows the same map as layer-map.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { importEdges, layerViolations, readSources, REPO } from './imports.js';
import { ROOMS } from './layer-map.js';

describe('the layer map', () => {
  const sources = readSources();

  test('src/ has no import the map does not allow, and no file outside a room', () => {
    assert.ok(sources.size > 50, `found only ${sources.size} files under src/`);
    assert.ok(importEdges(sources).length > 100, 'the import reader found almost no imports');
    assert.deepEqual(layerViolations(sources), []);
  });

  test('an upward import fails it, and so do a sideways one, sim reaching into the proxy, and a file in no room', () => {
    const broken = new Map(sources);
    const relay = broken.get('src/net/relay.ts');
    assert.ok(relay !== undefined);
    broken.set('src/net/relay.ts', `${relay}\nimport type { ProxyServer } from '../proxy/server.js';\n`);
    broken.set('src/tunnel/x.ts', `export { NamespaceCaches } from '../resolve/cache.js';\n`);
    broken.set('src/sim/x.ts', `const m = await import('../proxy/server.js');\nexport default m;\n`);
    broken.set('src/metrics/counter.ts', `export const n = 1;\n`);
    assert.deepEqual(layerViolations(broken).sort(), [
      'src/metrics/counter.ts belongs to no room: add it to test/architecture/layer-map.ts and docs/design.md',
      'src/net/relay.ts (net) imports src/proxy/server.ts (proxy): the layer map does not allow net → proxy',
      'src/tunnel/x.ts (tunnel) imports src/resolve/cache.ts (resolve): the layer map does not allow tunnel → resolve',
      'src/sim/x.ts (sim) imports src/proxy/server.ts (proxy): the layer map does not allow sim → proxy',
    ].sort());
  });

  test('imports in comments and strings are not edges', () => {
    const files = new Map([['src/net/x.ts', `// import '../cli/flags.js';\nexport const s = "import '../cli/flags.js'";\n`]]);
    assert.deepEqual(importEdges(files), []);
  });

  test('docs/design.md shows the same rooms and layers, and every room exists', () => {
    const design = readFileSync(join(REPO, 'docs/design.md'), 'utf8');
    const section = design.slice(design.indexOf('## Rooms and layers'));
    const rows = section
      .split('\n')
      .filter((line) => /^\| (\d+|—) \| `src\//.test(line))
      .map((line) => {
        const [layer, paths] = line.split('|').slice(1, 3).map((cell) => cell.trim());
        return { layer: layer === '—' ? undefined : Number(layer), paths: [...paths!.matchAll(/`([^`]+)`/g)].map((m) => m[1]) };
      });
    const byPaths = (a: { paths: unknown[] }, b: { paths: unknown[] }): number => String(a.paths).localeCompare(String(b.paths));
    assert.deepEqual(rows.sort(byPaths), ROOMS.map((room) => ({ layer: room.layer, paths: room.paths })).sort(byPaths));
    for (const room of ROOMS) for (const path of room.paths) assert.ok(existsSync(join(REPO, path)), `${room.name}: ${path} does not exist`);
  });
});
