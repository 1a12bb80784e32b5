import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import { countPendingWakeups } from '../../db/wakeups';
import { WakeupRelay } from '../../workers/wakeup-relay';
import { eventually, freshDatabase, silentLog, startWorker, uniqueId, type TestWorker } from '../helpers/stack';

// Several workers, several relays, one outbox: the leases let each wake-up be signalled once.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let worker: TestWorker;

beforeAll(async () => {
  db = await freshDatabase();
  worker = await startWorker(db.pool);
  await worker.relay.stop(); // the test's two relays are the only ones
});
afterAll(async () => {
  await worker.stop();
  await db.drop();
});

test('two relays drain one outbox: every wake-up signalled exactly once', async () => {
  const programId = uniqueId('lease');
  const members = 300;
  await db.pool.query(`select ll_request_wake($1, 'm-' || i) from generate_series(1, $2) i`, [programId, members]);
  const relay = () =>
    new WakeupRelay({
      pool: db.pool,
      client: worker.client,
      taskQueue: worker.taskQueue,
      log: silentLog,
      batchSize: 25,
      concurrency: 4,
      idleMs: 20,
      maxBackoffMs: 200,
      searchAttributes: true,
    });
  const [a, b] = [relay(), relay()];
  a.start();
  b.start();
  await eventually('the outbox drained', async () => (await countPendingWakeups(db.pool)) === 0, 60_000);
  await Promise.all([a.stop(), b.stop()]);
  assert.equal(a.signalled + b.signalled, members, `signals: ${a.signalled} + ${b.signalled}`);
  assert.ok(a.signalled > 0 && b.signalled > 0, 'both relays took a share');
});
