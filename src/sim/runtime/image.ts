/**
 * The one image every real pod runs, built here because nothing can be
 * pulled: an OCI image of one layer holding the static busybox, the source
 * pattern and two small servers, imported into containerd's `k8s.io`
 * namespace with `ctr images import`. It is also the sandbox ("pause") image:
 * its entrypoint sleeps and exits on TERM, so the runtime never fetches one.
 *
 * OCI image layout: https://github.com/opencontainers/image-spec/blob/main/image-layout.md
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sourceBlock } from '../backends.js';

const run = promisify(execFile);

/** The name the image is imported under (and the CRI `sandbox_image`). */
export const IMAGE_REF = 'docker.io/kubesocks/busybox:1';

/** The static busybox of Debian's busybox-static. */
const BUSYBOX = '/bin/busybox';

/** The pattern file: 16 source blocks (1 MiB), so the source writes in large pieces. */
export const PATTERN_FILE = '/data/pattern';
const PATTERN_BLOCKS = 16;

/**
 * `ks-source`: reads `COUNT\n`, writes COUNT bytes of the simulator's source
 * pattern (backends.ts), ends. Byte i is sourceBlock()[i % 64 KiB], as there:
 * the pattern file is whole blocks, so it repeats as often as needed. Whole
 * files go out with `cat` straight to the socket (no pipe), the tail with `head`.
 */
const SOURCE_SCRIPT = `#!/bin/sh
read n || exit 0
case "$n" in ''|*[!0-9]*) exit 0 ;; esac
size=$(wc -c < ${PATTERN_FILE})
whole=$((n / size))
while [ "$whole" -gt 0 ]; do cat ${PATTERN_FILE} || exit 0; whole=$((whole - 1)); done
[ $((n % size)) -gt 0 ] && head -c $((n % size)) ${PATTERN_FILE}
exit 0
`;

/**
 * \`ks-sink\`: reads \`COUNT\\n\`, hashes the next COUNT bytes and answers
 * \`COUNT SHA256HEX\\n\` — the simulator's sink with its length prefix (a real
 * pod never sees the client's FIN through port-forward, so the prefix is required).
 */
const SINK_SCRIPT = `#!/bin/sh
read n || exit 0
case "$n" in ''|*[!0-9]*) exit 0 ;; esac
h=$(head -c "$n" | sha256sum)
echo "$n \${h%% *}"
`;

/** The entrypoint: sleep until TERM. As PID 1 a shell ignores TERM unless it traps it. */
export const SLEEP_FOREVER = ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"];

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes a blob into the layout's blobs/sha256/ and returns its descriptor. */
async function putBlob(layout: string, mediaType: string, data: Buffer): Promise<{ mediaType: string; digest: string; size: number }> {
  const hex = sha256(data);
  await writeFile(join(layout, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

/**
 * Builds the image under `dir` and returns the path of its OCI archive
 * (a tar of the image layout), ready for `ctr images import`.
 */
export async function buildImage(dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  const layout = join(dir, 'layout');
  for (const d of ['bin', 'data', 'tmp', 'www']) await mkdir(join(rootfs, d), { recursive: true });
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  // Only the applets the pods' scripts call by name; the rest are reached as `busybox APPLET`.
  for (const applet of ['sh', 'sleep', 'cat', 'head', 'sha256sum', 'echo', 'mkdir', 'wc']) await symlink('busybox', join(rootfs, 'bin', applet));
  await chmod(join(rootfs, 'tmp'), 0o1777);
  const block = sourceBlock();
  await writeFile(join(rootfs, PATTERN_FILE), Buffer.concat(Array.from({ length: PATTERN_BLOCKS }, () => block)));
  await writeFile(join(rootfs, 'bin', 'ks-source'), SOURCE_SCRIPT, { mode: 0o755 });
  await writeFile(join(rootfs, 'bin', 'ks-sink'), SINK_SCRIPT, { mode: 0o755 });

  const layerTar = join(dir, 'layer.tar');
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTar, 'bin', 'data', 'tmp', 'www']);
  const layerBytes = await readFile(layerTar);
  const layer = await putBlob(layout, 'application/vnd.oci.image.layer.v1.tar', layerBytes);
  const config = await putBlob(
    layout,
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(
      JSON.stringify({
        architecture: goArch(),
        os: 'linux',
        config: { Entrypoint: SLEEP_FOREVER, Env: ['PATH=/bin'], WorkingDir: '/' },
        // An uncompressed layer's diff id is its own digest.
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = await putBlob(
    layout,
    'application/vnd.oci.image.manifest.v1+json',
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] })),
  );
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...manifest, annotations: { 'io.containerd.image.name': IMAGE_REF, 'org.opencontainers.image.ref.name': '1' } }],
    }),
  );
  const archive = join(dir, 'image.tar');
  await run('tar', ['-C', layout, '-cf', archive, 'oci-layout', 'index.json', 'blobs']);
  return archive;
}

/** The image's architecture in Go's words (the runtime matches it against its platform). */
function goArch(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    default:
      return process.arch; // arm64, arm, ppc64, s390x, riscv64 are spelled alike
  }
}
