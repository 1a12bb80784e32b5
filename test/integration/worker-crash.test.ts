import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, test } from 'vitest';
import { verifyInvariants } from '../../db/verify';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startWorkerProcess,
  uniqueId,
  type TestApi,
} from '../helpers/stack';

// A worker process killed with SIGKILL while it is expiring points: after a new worker starts,
// every member has expired exactly once, and the ledger's invariants hold.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
const taskQueue = uniqueId('crash');
const children: ChildProcess[] = [];

async function startWorker(): Promise<ChildProcess> {
  const child = await startWorkerProcess({ databaseUrl: db.url, taskQueue });
  children.push(child);
  return child;
}

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await api.close();
  await db.drop();
});

test('SIGKILL mid-expiry: nothing lost or doubled after restart', async () => {
  const call = httpClient(api);
  const programId = uniqueId('crash');
  assert.equal(
    (
      await call('POST', '/v1/programs', {
        body: programBody(programId, { expiry: { policy: 'rolling', window: 'PT3S' } }),
      })
    ).status,
    201,
  );
  const members = Array.from({ length: 60 }, (_, i) => `m-${i}`);
  await Promise.all(
    members.map((m) =>
      call('POST', `/v1/programs/${programId}/accruals`, {
        role: 'billing',
        body: { memberId: m, invoiceId: `inv-${m}`, amountMinor: 10_000, occurredAt: new Date().toISOString() },
      }),
    ),
  );
  const expiredCount = async () =>
    (
      await db.pool.query(`select count(*)::int as n from ledger_entries where program_id = $1 and type = 'expire'`, [
        programId,
      ])
    ).rows[0].n as number;

  const first = await startWorker();
  await eventually('expiries under way', async () => (await expiredCount()) > 0, 30_000, 20);
  first.kill('SIGKILL');
  const atKill = await expiredCount();

  await startWorker();
  await eventually('every member expired', async () => (await expiredCount()) === members.length, 90_000, 200);
  const { rows } = await db.pool.query(
    `select count(*)::int as members_at_zero, (select count(*)::int from ledger_entries where program_id = $1 and type = 'expire' and points <> -100) as odd
       from members where program_id = $1 and balance = 0`,
    [programId],
  );
  assert.deepEqual(rows[0], { members_at_zero: members.length, odd: 0 });
  console.log(`worker killed after ${atKill} of ${members.length} expiries`);
  assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
});
