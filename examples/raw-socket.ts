/**
 * A raw TCP connection to a cluster service, no local port, no proxy:
 *   KUBECONFIG=~/.kube/config npx tsx examples/raw-socket.ts echo.demo:7
 */
import { createDialer } from 'kubesocks';

const target = process.argv[2] ?? 'echo.demo.svc.cluster.local:7';
const dialer = await createDialer(); // KUBECONFIG / ~/.kube/config, current context
try {
  const socket = await dialer.connect(target);
  console.log(`connected to ${target} via ${socket.via}`);
  socket.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  socket.end('hello from kubesocks\n');
  await new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
} finally {
  await dialer.close();
}
