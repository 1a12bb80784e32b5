import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../../cli/stack/process';
import { startTemporalDevServer, temporalAnswers, type DevServer } from '../../cli/stack/temporal-dev-server';
import { countPendingWakeups } from '../../db/wakeups';
import { verifyInvariants } from '../../db/verify';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Temporal unreachable: accruals are still accepted and durably recorded (the request path never
// calls Temporal); their wake-ups wait in the outbox and reach the member workflows when it is back.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
let server: DevServer;
let worker: TestWorker | null = null;
let port: number;
const dbFile = join(process.env.LOYALTY_TEST_WORK_DIR ?? '/tmp', `${uniqueId('outage')}.sqlite`);

const startServer = () =>
  startTemporalDevServer({ dbFile, port, uiPort: null, logFile: `${dbFile}.log`, namespace: 'default' });

beforeAll(async () => {
  db = await freshDatabase();
  port = await freePort();
  server = await startServer();
  api = await startApi(db.pool, () => temporalAnswers(server.address));
});

afterAll(async () => {
  await worker?.stop();
  await api.close();
  await server.stop();
  await db.drop();
});

test('accruals while Temporal is down are kept and reach the member workflows when it returns', async () => {
  const call = httpClient(api);
  const programId = uniqueId('out');
  assert.equal(
    (
      await call('POST', '/v1/programs', {
        body: programBody(programId, { expiry: { policy: 'rolling', window: 'PT3S' } }),
      })
    ).status,
    201,
  );

  await server.stop();
  const ready = await call('GET', '/readyz', { key: null });
  assert.equal(ready.status, 503);
  assert.deepEqual([ready.body.postgres, ready.body.temporal], [true, false]);

  const members = ['m-1', 'm-2', 'm-3', 'm-4', 'm-5'];
  for (const m of members) {
    const res = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: m, invoiceId: `inv-${m}`, amountMinor: 10_000, occurredAt: new Date().toISOString() },
    });
    assert.equal(res.status, 201, 'accepted while Temporal is down');
  }
  assert.equal(await countPendingWakeups(db.pool), members.length, 'their wake-ups wait in the outbox');

  // The relay keeps retrying against the stopped server, then delivers once it is back.
  worker = await startWorker(db.pool, { address: server.address }).catch(() => null);
  server = await startServer();
  worker ??= await startWorker(db.pool, { address: server.address });
  await eventually('outbox drained', async () => (await countPendingWakeups(db.pool)) === 0, 30_000);
  await eventually(
    'every member expired by its own workflow',
    async () => {
      const { rows } = await db.pool.query(
        `select count(*)::int as n from members where program_id = $1 and balance = 0`,
        [programId],
      );
      return rows[0].n === members.length;
    },
    30_000,
  );
  const { rows } = await db.pool.query(
    `select count(*)::int as n from ledger_entries where program_id = $1 and type = 'expire' and points = -100`,
    [programId],
  );
  assert.equal(rows[0].n, members.length);
  assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
});

test('a request that starts or signals a workflow while Temporal is down answers 503 loyalty_unavailable; sent again, it is done', async () => {
  const connection = await Connection.connect({ address: server.address });
  const withTemporal = await startApi(db.pool, () => temporalAnswers(server.address), {
    client: new Client({ connection }),
    taskQueue: uniqueId('outage'),
  });
  try {
    const call = httpClient(withTemporal);
    const programId = uniqueId('out');
    const { programId: _p, name: _n, currency: _c, ...rules } = programBody(programId);
    assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
    const proposal = {
      changeId: 'c-1',
      effectiveAt: new Date(Date.now() + 86_400_000).toISOString(),
      rules: { ...rules, pointValueMinor: 3 },
    };

    await server.stop();
    const down = await call('POST', `/v1/programs/${programId}/rule-changes`, {
      role: 'program_owner',
      idem: 'rc-1',
      body: proposal,
    });
    assert.deepEqual([down.status, down.body.error?.code], [503, 'loyalty_unavailable'], JSON.stringify(down.body));

    server = await startServer();
    const again = await call('POST', `/v1/programs/${programId}/rule-changes`, {
      role: 'program_owner',
      idem: 'rc-1',
      body: proposal,
    });
    assert.equal(again.status, 202, JSON.stringify(again.body));
  } finally {
    await withTemporal.close();
    await connection.close();
  }
});
