/**
 * The API alone, for bench/accrual-ingest.ts: buildApi on --port against --database-url, with the
 * accrual batcher's settings from the flags (DEFAULT_BATCHER where not given). Prints
 * `READY <port>` once listening; stops on SIGTERM or when its parent goes away.
 *
 *   node --import tsx bench/api-server.ts --database-url postgres://... --port 4100 [--max-batch 200]
 *        [--max-in-flight 1] [--max-queued 20000] [--pool-size 20]
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DEFAULT_BATCHER, buildApi } from '../api/server';
import { createPool } from '../db/pool';
import { intFlag, stopOnParentExit } from './lib';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      port: { type: 'string' },
      'max-batch': { type: 'string' },
      'max-in-flight': { type: 'string' },
      'max-queued': { type: 'string' },
      'pool-size': { type: 'string', default: '20' },
      'log-level': { type: 'string', default: 'warn' },
    },
  });
  if (!values['database-url']) throw new Error('--database-url is required');
  const port = intFlag('port', values.port);
  const batcher = {
    ...DEFAULT_BATCHER,
    ...(values['max-batch'] ? { maxBatch: intFlag('max-batch', values['max-batch']) } : {}),
    ...(values['max-in-flight'] ? { maxInFlight: intFlag('max-in-flight', values['max-in-flight']) } : {}),
    ...(values['max-queued'] ? { maxQueued: intFlag('max-queued', values['max-queued']) } : {}),
  };
  const pool = createPool({
    connectionString: values['database-url'],
    maxConnections: intFlag('pool-size', values['pool-size']),
    applicationName: 'bench-api',
  });
  const logger = pino({ level: values['log-level'] }, pino.destination(2));
  const app = await buildApi({ pool, logger, batcher, bodyLimitBytes: 64 * 1024, temporalReachable: async () => true });
  await app.listen({ port, host: '127.0.0.1' });
  stopOnParentExit(async () => {
    await app.close();
    await pool.end();
  });
  process.stdout.write(`READY ${port} ${JSON.stringify(batcher)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
