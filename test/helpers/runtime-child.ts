/**
 * A process that runs a private containerd with one pod, prints
 * `READY DIR BRIDGE SANDBOX_ID` and waits to be killed — for the teardown
 * tests in test/runtime/teardown.test.ts. It installs no signal handler of
 * its own, so a SIGTERM meets only the runtime's.
 */
import { Containerd } from '../../src/sim/runtime/containerd.js';
import { runRealPod } from '../../src/sim/runtime/sandboxes.js';

const runtime = await Containerd.start();
const pod = await runRealPod(runtime, { namespace: 'teardown', name: 'p-0', uid: 'teardown-p-0', ports: [{ port: 7, backend: 'echo' }] });
process.stdout.write(`READY ${runtime.dir} ${runtime.bridge} ${pod.sandboxId}\n`);
setInterval(() => {}, 1 << 30);
