import { SimCluster } from './src/sim/cluster.js';
import { writeFileSync } from 'node:fs';
const c = await SimCluster.start({ control: true });
await c.writeKubeconfig('/tmp/kc.yaml');
writeFileSync('/tmp/sim.env', `URL=${c.url}\nTOKEN=${c.adminToken}\nCTL=${c.controlUrl}\nVIEWER=${c.tokenFor('viewer')}\n`);
writeFileSync('/tmp/ca2.pem', c.caPem);
console.log('ready', c.url);
process.on('SIGTERM', async () => { await c.close(); console.log('closed'); });
