/**
 * Plain node:http requests to cluster services through the dialer's Agent:
 *   npx tsx examples/http-agent.ts http://web.demo/
 */
import http from 'node:http';
import { createDialer } from 'kubesocks';

const url = process.argv[2] ?? 'http://web.demo/';
const dialer = await createDialer();
const agent = dialer.agent(); // keep-alive: requests reuse sockets, sockets share one SPDY connection per pod
try {
  for (let i = 0; i < 3; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.once('end', () => resolve(`${res.statusCode} ${text.trim()}`));
        })
        .once('error', reject);
    });
    console.log(body);
  }
} finally {
  agent.destroy();
  await dialer.close();
}
