/**
 * node-postgres through the dialer: pg's `stream` option takes a factory,
 * and dialer.socket() returns a socket that is already connecting.
 *   PGUSER=app PGPASSWORD=… npx tsx examples/postgres.ts postgres.db:5432
 */
import pg from 'pg';
import { createDialer } from 'kubesocks';

const target = process.argv[2] ?? 'postgres.db.svc.cluster.local:5432';
const dialer = await createDialer();
const client = new pg.Client({
  // host and port are ignored by the stream; the dialer's target decides.
  stream: () => dialer.socket(target),
  user: process.env.PGUSER ?? 'postgres',
  password: process.env.PGPASSWORD,
  database: process.env.PGDATABASE ?? 'postgres',
});
try {
  await client.connect();
  const result = await client.query('select version() as version');
  console.log(result.rows[0]);
} finally {
  await client.end();
  await dialer.close();
}
