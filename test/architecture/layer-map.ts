/**
 * The layer map of src/, as data: which room each file belongs to and which
 * rooms it may import. docs/design.md shows the same map as a table, and
 * layers.test.ts holds the code to it.
 *
 * To add a room: one line here (and a row in docs/design.md). A room at the
 * bottom (e.g. metrics) gets layer 1; a folder inside a room (tunnel/websocket/,
 * sim/cri/) needs nothing, it belongs to its room.
 */

export interface Room {
  name: string;
  /** Files (`src/x.ts`) or folders (`src/x/`) that belong to the room. */
  paths: string[];
  /**
   * A room may import every room on a lower layer, never one on its own layer
   * or above (siblings such as tunnel and resolve know nothing of each other).
   * Rooms without a layer stand beside the stack and import only `uses`.
   */
  layer?: number;
  /** Rooms it may import besides those below it. */
  uses?: string[];
}

export const ROOMS: Room[] = [
  { name: 'errors', paths: ['src/errors.ts'], layer: 0 },
  { name: 'net', paths: ['src/net/'], layer: 1 },
  // What kubesocks is doing (counters, open connections, failures): every room records into it.
  { name: 'observe', paths: ['src/observe/'], layer: 1 },
  { name: 'kube', paths: ['src/kube/'], layer: 2 },
  { name: 'spdy', paths: ['src/spdy/'], layer: 2 },
  { name: 'tunnel', paths: ['src/tunnel/'], layer: 3 },
  { name: 'resolve', paths: ['src/resolve/'], layer: 3 },
  { name: 'dialer', paths: ['src/dialer/'], layer: 4 },
  { name: 'proxy', paths: ['src/proxy/'], layer: 5 },
  { name: 'forward', paths: ['src/forward/'], layer: 5 },
  // `kubesocks demo` starts the simulated cluster in the same process.
  { name: 'cli', paths: ['src/cli/', 'src/cli.ts'], layer: 6, uses: ['sim'] },
  { name: 'library entry', paths: ['src/index.ts'], layer: 6 },
  // The simulated cluster speaks SPDY like a kubelet, and nothing of the proxy or the client.
  { name: 'sim', paths: ['src/sim/'], uses: ['spdy', 'net', 'errors'] },
];

/** The room of a repository-relative path such as `src/tunnel/pool.ts`, or undefined. */
export function roomOf(path: string, rooms: Room[] = ROOMS): Room | undefined {
  return rooms.find((room) => room.paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p)));
}

/** Whether code in `from` may import code in `to`. */
export function mayImport(from: Room, to: Room): boolean {
  if (from === to || from.uses?.includes(to.name)) return true;
  return from.layer !== undefined && to.layer !== undefined && to.layer < from.layer;
}
