import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, test } from 'vitest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createMemberActivities } from '../../activities/member';
import { temporalTestServerPath } from '../../cli/stack/binaries';
import { accrueBatch, getMember, type AccrualItem } from '../../db/ledger';
import { verifyInvariants } from '../../db/verify';
import { WakeupRelay } from '../../workers/wakeup-relay';
import { eventually, freshDatabase, silentLog, uniqueId } from '../helpers/stack';

// A 365-day window, on the Java time-skipping test server: a purchase on day 200 protects the
// points past day 365; with no purchase after it, they expire on day 565.
const DAY = 86_400_000;
let env: TestWorkflowEnvironment;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
  });
  db = await freshDatabase();
  pool = db.pool;
});
afterAll(async () => {
  await db?.drop();
  await env?.teardown();
});

function accrualAt(programId: string, invoiceId: string, atMs: number): AccrualItem {
  return {
    programId,
    idemKey: invoiceId,
    requestHash: invoiceId,
    accrualId: randomUUID(),
    memberId: 'm-1',
    invoiceId,
    amountMinor: '10000',
    points: '100',
    allocatedMinor: '79',
    allocatedMicro: '79207920',
    cohort: '2026-Q4',
    occurredAt: new Date(atMs).toISOString(),
    expiry: { policy: 'rolling', window: 'P365D' },
    expectedRedemptionRate: 0.8,
    ruleVersion: 1,
    debitAccount: 'revenue',
    creditAccount: 'loyalty_contract_liability',
    actor: 'test',
  };
}

test('a 365-day window: a purchase resets it, and a full window without one expires the points', async () => {
  const programId = uniqueId('long');
  await pool.query(
    `insert into programs (program_id, name, currency, currency_digits, created_by) values ($1, 'Long', 'USD', 2, 'test')`,
    [programId],
  );
  const taskQueue = uniqueId('tq');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    activities: createMemberActivities(pool),
    workflowBundle: { code: readFileSync(process.env.LOYALTY_TEST_WORKFLOW_BUNDLE!, 'utf8') },
  });
  const relay = new WakeupRelay({
    pool,
    client: env.client,
    taskQueue,
    log: silentLog,
    batchSize: 10,
    concurrency: 2,
    idleMs: 50,
    maxBackoffMs: 500,
    searchAttributes: false, // the test server has no custom search attributes registered
  });
  const armedFor = async () =>
    (await pool.query(`select armed_deadline from members where program_id = $1 and member_id = 'm-1'`, [programId]))
      .rows[0]?.armed_deadline as Date | null;

  await worker.runUntil(async () => {
    relay.start();
    const day0 = await env.currentTimeMs();
    const [first] = await accrueBatch(pool, [accrualAt(programId, 'inv-1', day0)]);
    assert.equal((first as { status: number }).status, 201);
    await eventually('timer armed for day 365', async () => (await armedFor())?.getTime() === day0 + 365 * DAY);

    await env.sleep(200 * DAY);
    const day200 = await env.currentTimeMs();
    await accrueBatch(pool, [accrualAt(programId, 'inv-2', day200)]);
    assert.equal((await getMember(pool, programId, 'm-1'))!.expiresAt, new Date(day200 + 365 * DAY).toISOString());

    await env.sleep(200 * DAY); // day 400: past the first deadline, protected by the second purchase
    await eventually('re-armed for day 565', async () => (await armedFor())?.getTime() === day200 + 365 * DAY);
    assert.equal((await getMember(pool, programId, 'm-1'))!.balance, 200);

    await env.sleep(200 * DAY); // day 600: a full window since the last purchase
    await eventually('expired', async () => (await getMember(pool, programId, 'm-1'))!.balance === 0);
    const { rows } = await pool.query(
      `select points::int, occurred_at from ledger_entries where program_id = $1 and type = 'expire'`,
      [programId],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].points, -200);
    assert.equal(rows[0].occurred_at.getTime(), day200 + 365 * DAY);
    await relay.stop();
  });
  assert.deepEqual((await verifyInvariants(pool)).violations, []);
});
