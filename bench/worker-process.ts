/**
 * One loyalty worker alone in its process, for bench/member-workflows.ts (so its memory can be
 * read apart from the relay and the load). Prints `READY` once the worker runs; stops on SIGTERM
 * or when its parent goes away.
 *
 *   node --import tsx bench/worker-process.ts --address 127.0.0.1:7233 --database-url postgres://...
 *        --task-queue q --bundle /tmp/workflow-bundle.js [--max-cached 2000] [--max-activities 50] [--pool-size 20]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { createPool } from '../db/pool';
import { createLoyaltyWorker } from '../workers/worker';
import { intFlag, stopOnParentExit } from './lib';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string' },
      'database-url': { type: 'string' },
      'task-queue': { type: 'string' },
      bundle: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      'max-cached': { type: 'string', default: '2000' },
      'max-activities': { type: 'string', default: '50' },
      'pool-size': { type: 'string', default: '20' },
    },
  });
  for (const f of ['address', 'database-url', 'task-queue', 'bundle'] as const)
    if (!values[f]) throw new Error(`--${f} is required`);
  // The SDK's own log lines, warnings and up, go to stderr (its default); stdout is for READY.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const pool = createPool({
    connectionString: values['database-url']!,
    maxConnections: intFlag('pool-size', values['pool-size']),
    applicationName: 'bench-worker',
  });
  const connection = await NativeConnection.connect({ address: values.address! });
  const worker = await createLoyaltyWorker({
    log: pino({ level: 'warn' }),
    connection,
    namespace: values.namespace!,
    taskQueue: values['task-queue']!,
    pool,
    workflowBundle: { code: readFileSync(values.bundle!, 'utf8') },
    maxConcurrentActivities: intFlag('max-activities', values['max-activities']),
    maxCachedWorkflows: intFlag('max-cached', values['max-cached'], 0),
  });
  const running = worker.run();
  stopOnParentExit(async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await connection.close();
    await pool.end();
  });
  running.catch((e) => {
    console.error('worker failed', e);
    process.exit(1);
  });
  process.stdout.write('READY\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
