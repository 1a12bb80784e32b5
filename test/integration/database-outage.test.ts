import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { createPool } from '../../db/pool';
import { RestartableProxy } from '../faults/proxy';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// PostgreSQL unreachable (a restart, a failover): the API answers 503 loyalty_unavailable, which
// clients retry with the same Idempotency-Key, not 500; it keeps serving and recovers by itself.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let proxy: RestartableProxy;
let pool: Pool;
let api: TestApi;

beforeAll(async () => {
  db = await freshDatabase();
  const direct = new URL(db.url);
  proxy = new RestartableProxy(Number(direct.port || 5432));
  const through = new URL(db.url);
  through.hostname = '127.0.0.1';
  through.port = String(await proxy.listen(0));
  pool = createPool({ connectionString: through.toString(), maxConnections: 5, applicationName: 'outage-test' });
  api = await startApi(pool);
});

afterAll(async () => {
  await api.close();
  await proxy.close();
  await pool.end();
  await db.drop();
});

test('the database down: every kind of request answers 503 loyalty_unavailable, and works again once it is back', async () => {
  const call = httpClient(api);
  const programId = uniqueId('dbout');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
  const accrual = { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 10_000, occurredAt: new Date().toISOString() };

  await proxy.close(); // every connection cut, new ones refused
  const requests: Array<[string, () => ReturnType<typeof call>]> = [
    ['read a member', () => call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' })],
    ['read a program', () => call('GET', `/v1/programs/${programId}`, { role: 'support' })],
    [
      'accrue',
      () => call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', idem: 'acc-1', body: accrual }),
    ],
    ['create a program', () => call('POST', '/v1/programs', { body: programBody(uniqueId('dbout')) })],
    ['read the liability', () => call('GET', `/v1/programs/${programId}/liability`, { role: 'finance' })],
  ];
  for (const [what, send] of requests) {
    const res = await send();
    assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'loyalty_unavailable', what);
  }
  const ready = await call('GET', '/readyz', { key: null });
  assert.deepEqual([ready.status, ready.body.postgres], [503, false]);

  await proxy.listen();
  const again = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    idem: 'acc-1',
    body: accrual,
  });
  assert.equal(again.status, 201, JSON.stringify(again.body));
  assert.equal((await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' })).body.balance, 100);
});
