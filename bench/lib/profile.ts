/** Summarizes a V8 .cpuprofile (node --cpu-prof): the functions with the most self time. */
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

interface CpuProfile {
  startTime: number;
  endTime: number;
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  where: string;
  selfMs: number;
  /** Share of the busy (non-idle) time. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** `window`: only samples taken during the measured transfer; `lifetime`: the whole process (start-up included). */
  scope: 'window' | 'lifetime';
  busyMs: number;
  idleMs: number;
  top: HotFunction[];
}

/**
 * V8 stamps samples with the same monotonic clock as process.hrtime() on
 * Linux, so `window` (from process.hrtime.bigint() / 1000n in the runner)
 * selects the samples taken during the transfer. If none fall inside it, the
 * whole profile is used and `scope` says so.
 */
export async function summarizeProfileDir(dir: string, root: string, window?: { startUs: number; endUs: number }, top = 15): Promise<ProfileSummary | undefined> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return undefined;
  const file = join(dir, files.sort().at(-1)!);
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const stamps: number[] = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    stamps.push(t);
  }
  const inWindow = (i: number): boolean => !window || (stamps[i]! >= window.startUs && stamps[i]! <= window.endUs);
  const scope = window && stamps.some((_, i) => inWindow(i)) ? 'window' : 'lifetime';
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let idleUs = 0;
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (!node || (scope === 'window' && !inWindow(i))) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += dt;
      return;
    }
    busyUs += dt;
    const shortUrl = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
    const where = shortUrl ? `${shortUrl}:${lineNumber + 1}` : '';
    const name = functionName || '(anonymous)';
    const key = `${name} ${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  });
  const sorted = [...selfUs.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    file,
    scope,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    top: sorted.map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: (100 * e.us) / Math.max(1, busyUs) })),
  };
}
