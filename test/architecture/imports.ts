/**
 * The import edges of src/: every static import, `export … from`, `import type`
 * and dynamic `import()` of a relative module, found by TypeScript's own
 * pre-processor (no regular expression to fool with comments or strings).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
import { mayImport, roomOf, ROOMS, type Room } from './layer-map.js';

export const REPO = join(import.meta.dirname, '..', '..');

/** Every `.ts` file under src/, as repository-relative paths with `/`, and its text. */
export function readSources(dir = 'src'): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(join(REPO, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = relative(REPO, join(entry.parentPath, entry.name)).split('\\').join('/');
    files.set(path, readFileSync(join(REPO, path), 'utf8'));
  }
  return files;
}

export interface Edge {
  from: string;
  to: string;
}

/** The relative imports of each file, resolved to repository paths (`./x.js` → `src/room/x.ts`). */
export function importEdges(files: Map<string, string>): Edge[] {
  const edges: Edge[] = [];
  for (const [from, text] of files) {
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const to = posix.normalize(posix.join(posix.dirname(from), fileName)).replace(/\.js$/, '.ts');
      edges.push({ from, to });
    }
  }
  return edges;
}

/** One line per file outside the map and per edge the map does not allow. */
export function layerViolations(files: Map<string, string>, rooms: Room[] = ROOMS): string[] {
  const problems: string[] = [];
  for (const path of files.keys()) {
    if (!roomOf(path, rooms)) problems.push(`${path} belongs to no room: add it to test/architecture/layer-map.ts and docs/design.md`);
  }
  for (const { from, to } of importEdges(files)) {
    const a = roomOf(from, rooms);
    const b = roomOf(to, rooms);
    if (!a) continue;
    if (!b) {
      problems.push(`${from} imports ${to}, which is outside src/ or in no room`);
    } else if (!mayImport(a, b)) {
      problems.push(`${from} (${a.name}) imports ${to} (${b.name}): the layer map does not allow ${a.name} → ${b.name}`);
    }
  }
  return problems;
}
