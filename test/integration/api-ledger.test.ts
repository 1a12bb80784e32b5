import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { randomUUID } from 'node:crypto';
import { readPeriodBooks } from '../../db/close-report';
import { expireMember } from '../../db/ledger';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import { verifyInvariants } from '../../db/verify';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let pool: Pool;

const iso = (ms: number) => new Date(ms).toISOString();
const DAY = 86_400_000;

async function counts() {
  const { rows } =
    await pool.query(`select (select count(*) from ledger_entries)::int as ledger, (select count(*) from journal_entries)::int as journal,
    (select count(*) from idempotency_keys)::int as keys, (select count(*) from programs)::int as programs,
    (select count(*) from members)::int as members, (select count(*) from refunds)::int as refunds`);
  return rows[0];
}

async function newProgram(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('p');
  const res = await call('POST', '/v1/programs', { body: programBody(programId, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}

async function accrue(programId: string, body: Record<string, unknown>, idem?: string) {
  return call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body, idem });
}

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  api = await startApi(pool);
  call = httpClient(api);
});

afterAll(async () => {
  const result = await verifyInvariants(pool);
  await api.close();
  await db.drop();
  assert.deepEqual(result.violations, [], 'loyalty verify is clean after the whole suite');
});

describe('programs', () => {
  test('create, read, replay, conflicts', async () => {
    const programId = uniqueId('p');
    const body = programBody(programId);
    const first = await call('POST', '/v1/programs', { body, idem: `k-${programId}` });
    assert.equal(first.status, 201);
    assert.equal(first.body.activeRuleVersion.version, 1);
    const read = await call('GET', `/v1/programs/${programId}`, { role: 'billing' });
    assert.equal(read.status, 200);
    assert.equal(read.body.expiry.window, 'P365D');
    assert.deepEqual(read.body.scheduledRuleVersions, []);
    // a version that takes effect later (what an approved rule change makes) is shown, not yet in force
    await db.pool.query(
      `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
      select program_id, 2, now() + interval '30 days', rules || '{"pointValueMinor": 2}', 'test' from program_rule_versions where program_id = $1`,
      [programId],
    );
    const later = await call('GET', `/v1/programs/${programId}`, { role: 'billing' });
    assert.deepEqual([later.body.activeRuleVersion.version, later.body.pointValueMinor], [1, 1]);
    assert.deepEqual(
      later.body.scheduledRuleVersions.map((v: { version: number; rules: { pointValueMinor: number } }) => [
        v.version,
        v.rules.pointValueMinor,
      ]),
      [[2, 2]],
    );
    const replay = await call('POST', '/v1/programs', { body, idem: `k-${programId}` });
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, first.body);
    const before = await counts();
    const reused = await call('POST', '/v1/programs', { body: { ...body, name: 'other' }, idem: `k-${programId}` });
    assert.equal(reused.status, 409);
    assert.equal(reused.body.error.code, 'idempotency_key_reused');
    const again = await call('POST', '/v1/programs', { body });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'program_exists');
    assert.deepEqual(await counts(), before);
  });

  test('auth: no key 401, wrong role 403, unknown program 404', async () => {
    const programId = uniqueId('p');
    assert.equal(
      (await call('POST', '/v1/programs', { key: null, body: programBody(programId) })).body.error.code,
      'unauthorized',
    );
    assert.equal(
      (await call('POST', '/v1/programs', { key: 'll_nope_nope', body: programBody(programId) })).status,
      401,
    );
    const forbidden = await call('POST', '/v1/programs', { role: 'billing', body: programBody(programId) });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error.code, 'forbidden');
    const missing = await call('GET', '/v1/programs/no-such-program');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
  });

  test('bad program bodies: 400 validation_failed, nothing written', async () => {
    const before = await counts();
    const bad: Array<Record<string, unknown>> = [
      { currency: 'XXY' },
      { currency: 'usd' },
      { pointValueMinor: 0.5 },
      { pointValueMinor: -1 },
      { expectedRedemptionRate: 1.5 },
      { expectedRedemptionRate: 0.1234567 },
      { expiry: { policy: 'rolling' } },
      { expiry: { policy: 'rolling', window: '365 days' } },
      { expiry: { policy: 'rolling', window: 'PT0S' } },
      { expiry: { policy: 'sometimes', window: 'P1D' } },
      { accounting: { method: 'incremental_cost' } },
      { earn: { points: 1.5, perAmountMinor: 100 } },
      { chargebackWindow: 'forever' },
      { surprise: true },
      { programId: 'Has Spaces' },
      { name: 'x'.repeat(201) },
    ];
    for (const o of bad) {
      const res = await call('POST', '/v1/programs', { body: programBody(uniqueId('p'), o) });
      assert.equal(res.status, 400, `${JSON.stringify(o)} -> ${res.status}`);
      assert.equal(res.body.error.code, 'validation_failed');
    }
    const broken = await call('POST', '/v1/programs', { rawBody: '{"programId": ' });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.error.code, 'validation_failed');
    const noKey = await call('POST', '/v1/programs', { idem: null, body: programBody(uniqueId('p')) });
    assert.equal(noKey.status, 400);
    assert.deepEqual(await counts(), before);
  });
});

describe('accruals', () => {
  test('points, relative-SSP allocation, balanced journal, deadline', async () => {
    const programId = await newProgram();
    const occurredAt = '2026-10-01T10:00:00.000Z';
    const res = await accrue(programId, {
      memberId: 'm-1',
      invoiceId: 'inv-1',
      amountMinor: 4999,
      occurredAt,
      storeId: 's-1',
      jurisdiction: 'US-CA',
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.points, 49);
    // P = 4999, S = 49 * 1 * 0.8 = 39.2 -> a = 4999 * 39.2 / 5038.2 = 38.895... -> 39
    assert.equal(res.body.allocatedMinor, 39);
    assert.equal(res.body.balance, 49);
    assert.equal(res.body.expiresAt, iso(Date.parse(occurredAt) + 365 * DAY));
    const { rows } = await pool.query(
      `select l.account, l.debit_minor::int as d, l.credit_minor::int as c from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 order by l.line_no`,
      [programId],
    );
    assert.deepEqual(rows, [
      { account: 'revenue', d: 39, c: 0 },
      { account: 'loyalty_contract_liability', d: 0, c: 39 },
    ]);
    const member = await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' });
    assert.equal(member.status, 200);
    assert.deepEqual(
      {
        balance: member.body.balance,
        held: member.body.held,
        available: member.body.available,
        status: member.body.status,
        lastPurchaseAt: member.body.lastPurchaseAt,
      },
      { balance: 49, held: 0, available: 49, status: 'active', lastPurchaseAt: occurredAt },
    );
  });

  test('a later purchase moves the deadline; an earlier one does not pull it back', async () => {
    const programId = await newProgram();
    const t0 = Date.parse('2026-07-01T00:00:00Z');
    await accrue(programId, { memberId: 'm', invoiceId: 'a', amountMinor: 1000, occurredAt: iso(t0) });
    const later = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'b',
      amountMinor: 1000,
      occurredAt: iso(t0 + 30 * DAY),
    });
    assert.equal(later.body.expiresAt, iso(t0 + 395 * DAY));
    const earlier = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'c',
      amountMinor: 1000,
      occurredAt: iso(t0 + 10 * DAY),
    });
    assert.equal(earlier.body.expiresAt, iso(t0 + 395 * DAY));
    assert.equal(earlier.body.balance, 30);
  });

  test('a purchase after the deadline finds the old points expired first', async () => {
    const programId = await newProgram({ expiry: { policy: 'rolling', window: 'P30D' } });
    const t0 = Date.parse('2026-01-10T00:00:00Z');
    await accrue(programId, { memberId: 'm', invoiceId: 'a', amountMinor: 10_000, occurredAt: iso(t0) });
    const res = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'b',
      amountMinor: 5_000,
      occurredAt: iso(t0 + 45 * DAY),
    });
    assert.equal(res.body.balance, 50);
    const ledger = await call('GET', `/v1/programs/${programId}/members/m/ledger`, { role: 'support' });
    assert.deepEqual(
      ledger.body.entries.map((e: { type: string; points: number; occurredAt: string }) => [
        e.type,
        e.points,
        e.occurredAt,
      ]),
      [
        ['earn', 100, iso(t0)],
        ['expire', -100, iso(t0 + 30 * DAY)],
        ['earn', 50, iso(t0 + 45 * DAY)],
      ],
    );
  });

  test('idempotency: replay, key reuse with another body, same invoice under a new key', async () => {
    const programId = await newProgram();
    const body = { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 10_000, occurredAt: '2026-10-02T00:00:00Z' };
    const first = await accrue(programId, body, 'key-1');
    assert.equal(first.status, 201);
    const replay = await accrue(programId, body, 'key-1');
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, first.body);
    const before = await counts();
    const reused = await accrue(programId, { ...body, amountMinor: 20_000 }, 'key-1');
    assert.equal(reused.status, 409);
    assert.equal(reused.body.error.code, 'idempotency_key_reused');
    const sameInvoice = await accrue(programId, body, 'key-2');
    assert.equal(sameInvoice.status, 200);
    assert.equal(sameInvoice.headers.get('idempotent-replayed'), 'true');
    assert.equal(sameInvoice.body.accrualId, first.body.accrualId);
    const otherBody = await accrue(programId, { ...body, amountMinor: 20_000 }, 'key-3');
    assert.equal(otherBody.status, 409);
    assert.equal(otherBody.body.error.code, 'invoice_already_accrued');
    const after = await counts();
    assert.equal(after.ledger, before.ledger);
    assert.equal(after.journal, before.journal);
    const member = await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'billing' });
    assert.equal(member.body.balance, 100);
  });

  test('concurrent duplicates: 20 at once under one key, and 20 under different keys, earn once', async () => {
    const programId = await newProgram();
    const body = { memberId: 'm-c', invoiceId: 'inv-c', amountMinor: 10_000, occurredAt: '2026-10-03T00:00:00Z' };
    const sameKey = await Promise.all(Array.from({ length: 20 }, () => accrue(programId, body, 'same-key')));
    assert.ok(
      sameKey.every((r) => r.status === 201),
      JSON.stringify(sameKey.map((r) => r.status)),
    );
    assert.equal(new Set(sameKey.map((r) => r.body.accrualId)).size, 1);
    const body2 = { ...body, invoiceId: 'inv-d' };
    const newKeys = await Promise.all(Array.from({ length: 20 }, (_, i) => accrue(programId, body2, `k-${i}`)));
    assert.ok(
      newKeys.every((r) => r.status === 201 || r.status === 200),
      JSON.stringify(newKeys.map((r) => r.body)),
    );
    assert.equal(newKeys.filter((r) => r.status === 201).length, 1);
    assert.equal(new Set(newKeys.map((r) => r.body.accrualId)).size, 1);
    const { rows } = await pool.query(
      `select count(*)::int as n from ledger_entries where program_id = $1 and type = 'earn'`,
      [programId],
    );
    assert.equal(rows[0].n, 2);
    const member = await call('GET', `/v1/programs/${programId}/members/m-c`, { role: 'billing' });
    assert.equal(member.body.balance, 200);
  });

  test('bad accruals: a 4xx with a stable code, nothing written', async () => {
    const programId = await newProgram();
    const good = { memberId: 'm-1', invoiceId: 'inv-x', amountMinor: 1000, occurredAt: '2026-10-02T00:00:00Z' };
    const before = await counts();
    const bad: Array<[Record<string, unknown>, number, string]> = [
      [{ ...good, amountMinor: -5 }, 400, 'validation_failed'],
      [{ ...good, amountMinor: 0 }, 400, 'validation_failed'],
      [{ ...good, amountMinor: 10.5 }, 400, 'validation_failed'],
      [{ ...good, amountMinor: '1000' }, 400, 'validation_failed'],
      [{ ...good, amountMinor: 1e20 }, 400, 'validation_failed'],
      [{ ...good, occurredAt: 'yesterday' }, 400, 'validation_failed'],
      [{ ...good, occurredAt: '2026-13-01T00:00:00Z' }, 400, 'validation_failed'],
      // valid by the schema, refused by the ledger's clock (docs/api.md, "What the spec states")
      [{ ...good, occurredAt: iso(Date.now() + 3 * DAY) }, 422, 'occurred_at_in_future'],
      [{ ...good, memberId: '' }, 400, 'validation_failed'],
      [{ ...good, memberId: 'has space' }, 400, 'validation_failed'],
      [{ ...good, memberId: 'm'.repeat(129) }, 400, 'validation_failed'],
      [{ ...good, jurisdiction: 'california' }, 400, 'validation_failed'],
      [{ ...good, points: 10 }, 400, 'validation_failed'],
      [{ memberId: 'm-1' }, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of bad) {
      const res = await accrue(programId, body);
      assert.equal(res.status, status, `${JSON.stringify(body)} -> ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code);
    }
    const unknown = await accrue('no-such-program', good);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
    const wrongRole = await call('POST', `/v1/programs/${programId}/accruals`, { role: 'finance', body: good });
    assert.equal(wrongRole.status, 403);
    const tooBig = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      rawBody: JSON.stringify({ ...good, storeId: 'x'.repeat(70_000) }),
    });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, 'payload_too_large');
    const notJson = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      rawBody: 'amount=5',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(notJson.status, 415);
    assert.deepEqual(await counts(), before);
  });
});

describe('refunds', () => {
  test('pro rata, cumulative, capped at the invoice', async () => {
    const programId = await newProgram();
    await accrue(programId, {
      memberId: 'm',
      invoiceId: 'inv',
      amountMinor: 10_001,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    const refund = (refundId: string, amountMinor: number) =>
      call('POST', `/v1/programs/${programId}/refunds`, {
        role: 'billing',
        body: { memberId: 'm', invoiceId: 'inv', refundId, amountMinor, occurredAt: '2026-10-05T00:00:00Z' },
      });
    const r1 = await refund('r1', 3_333);
    assert.equal(r1.status, 201, JSON.stringify(r1.body));
    assert.equal(r1.body.pointsRevoked, 33); // round(100 * 3333 / 10001) = 33
    const r2 = await refund('r2', 3_334);
    assert.equal(r2.body.pointsRevoked, 34); // round(100 * 6667 / 10001) - 33 = 67 - 33
    const before = await counts();
    const over = await refund('r3', 3_335);
    assert.equal(over.status, 422);
    assert.equal(over.body.error.code, 'refund_exceeds_invoice');
    assert.deepEqual(await counts(), before);
    const r3 = await refund('r3', 3_334);
    assert.equal(r3.body.pointsRevoked, 33);
    assert.equal(r3.body.balance, 0);
    const replay = await refund('r3', 3_334);
    assert.equal(replay.status, 200);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    const missing = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: { memberId: 'm', invoiceId: 'nope', refundId: 'r9', amountMinor: 1, occurredAt: '2026-10-05T00:00:00Z' },
    });
    assert.equal(missing.status, 404);
  });

  test('a refund after the points expired stops at zero and records the shortfall', async () => {
    const programId = await newProgram({ expiry: { policy: 'rolling', window: 'P30D' } });
    await accrue(programId, {
      memberId: 'm',
      invoiceId: 'inv',
      amountMinor: 10_000,
      occurredAt: '2026-07-01T00:00:00Z',
    });
    const expired = await expireMember(pool, programId, 'm', '2026-09-01T00:00:00Z', 'test');
    assert.equal(expired.expiredPoints, 100);
    const r = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: { memberId: 'm', invoiceId: 'inv', refundId: 'r1', amountMinor: 5_000, occurredAt: '2026-09-02T00:00:00Z' },
    });
    assert.equal(r.status, 201);
    assert.deepEqual([r.body.pointsRevoked, r.body.shortfallPoints, r.body.balance], [0, 50, 0]);
    const { rows } = await pool.query('select shortfall_points::int as s from refunds where program_id = $1', [
      programId,
    ]);
    assert.equal(rows[0].s, 50);
  });
});

describe('merges', () => {
  test('points, cohorts and dates move; later deadline wins; later accruals land on the survivor', async () => {
    const programId = await newProgram();
    await accrue(programId, {
      memberId: 'm-0',
      invoiceId: 'a',
      amountMinor: 10_000,
      occurredAt: '2026-04-01T00:00:00Z',
    });
    await accrue(programId, {
      memberId: 'm-1',
      invoiceId: 'b',
      amountMinor: 5_000,
      occurredAt: '2026-08-01T00:00:00Z',
    });
    const merge = await call('POST', `/v1/programs/${programId}/members/m-1/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-0' },
    });
    assert.equal(merge.status, 201, JSON.stringify(merge.body));
    assert.equal(merge.body.pointsMoved, 50);
    const survivor = await call('GET', `/v1/programs/${programId}/members/m-0`, { role: 'support' });
    assert.equal(survivor.body.balance, 150);
    assert.equal(survivor.body.expiresAt, '2027-08-01T00:00:00.000Z');
    assert.equal(survivor.body.lastPurchaseAt, '2026-08-01T00:00:00.000Z');
    const merged = await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' });
    assert.deepEqual([merged.body.status, merged.body.mergedInto, merged.body.balance], ['merged', 'm-0', 0]);
    const later = await accrue(programId, {
      memberId: 'm-1',
      invoiceId: 'c',
      amountMinor: 2_000,
      occurredAt: '2026-09-01T00:00:00Z',
    });
    assert.equal(later.body.memberId, 'm-0');
    assert.equal(later.body.balance, 170);
    const { rows } = await pool.query(
      `select cohort, points::int from member_cohorts where program_id = $1 and member_id = 'm-0' order by cohort`,
      [programId],
    );
    assert.deepEqual(rows, [
      { cohort: '2026-Q2', points: 100 },
      { cohort: '2026-Q3', points: 70 },
    ]);
    const again = await call('POST', `/v1/programs/${programId}/members/m-1/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-0' },
    });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'member_not_active');
    const self = await call('POST', `/v1/programs/${programId}/members/m-0/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-0' },
    });
    assert.deepEqual([self.status, self.body.error.code], [422, 'merge_into_self']);
    const ghost = await call('POST', `/v1/programs/${programId}/members/ghost/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-0' },
    });
    assert.equal(ghost.status, 404);
    // a refund of the merged member's invoice takes the points from the survivor
    const refund = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: 'b', refundId: 'rb', amountMinor: 5_000, occurredAt: '2026-09-02T00:00:00Z' },
    });
    assert.equal(refund.body.memberId, 'm-0');
    assert.equal(refund.body.balance, 120);
    // expiry after the merge takes exactly what is left
    const exp = await expireMember(pool, programId, 'm-0', '2028-01-01T00:00:00Z', 'test');
    assert.equal(exp.expiredPoints, 120);
    const final = await call('GET', `/v1/programs/${programId}/members/m-0`, { role: 'support' });
    assert.equal(final.body.balance, 0);
  });
});

describe('expiry policy', () => {
  test('policy none and a no-expiry jurisdiction set no deadline', async () => {
    const none = await newProgram({ expiry: { policy: 'none' } });
    const r1 = await accrue(none, {
      memberId: 'm',
      invoiceId: 'a',
      amountMinor: 1000,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    assert.equal(r1.body.expiresAt, null);
    assert.equal((await expireMember(pool, none, 'm', '2100-01-01T00:00:00Z', 'test')).expiredPoints, 0);
    const mixed = await newProgram({
      expiry: { policy: 'rolling', window: 'P365D', jurisdictions: { 'US-CA': { policy: 'none' } } },
    });
    const ca = await accrue(mixed, {
      memberId: 'ca',
      invoiceId: 'a',
      amountMinor: 1000,
      occurredAt: '2026-10-01T00:00:00Z',
      jurisdiction: 'US-CA',
    });
    assert.equal(ca.body.expiresAt, null);
    const ny = await accrue(mixed, {
      memberId: 'ny',
      invoiceId: 'b',
      amountMinor: 1000,
      occurredAt: '2026-10-01T00:00:00Z',
      jurisdiction: 'US-NY',
    });
    assert.equal(ny.body.expiresAt, '2027-10-01T00:00:00.000Z');
  });
});

describe('liability', () => {
  test('point in time from business time', async () => {
    const programId = await newProgram();
    await accrue(programId, {
      memberId: 'm',
      invoiceId: 'a',
      amountMinor: 4_000_000,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    const beforeIt = await call('GET', `/v1/programs/${programId}/liability?asOf=2026-09-30T00:00:00Z`, {
      role: 'finance',
    });
    assert.equal(beforeIt.status, 200);
    assert.equal(beforeIt.body.deferredRevenueMinor, 0);
    const afterIt = await call('GET', `/v1/programs/${programId}/liability?asOf=2026-10-02T00:00:00Z`, {
      role: 'finance',
    });
    assert.equal(afterIt.body.outstandingPoints, 40_000);
    assert.equal(afterIt.body.expectedRedemptionPoints, 32_000);
    assert.equal(afterIt.body.deferredRevenueMinor, 31_746);
    const bad = await call('GET', `/v1/programs/${programId}/liability?asOf=soon`, { role: 'finance' });
    assert.equal(bad.status, 400);
    assert.equal((await call('GET', `/v1/programs/${programId}/liability`, { role: 'billing' })).status, 403);
  });

  test('expected redemption points are N x u - R per cohort, never more than outstanding, never negative', async () => {
    const programId = await newProgram();
    const at = '2026-10-01T00:00:00Z';
    for (const [memberId, amountMinor] of [
      ['r', 4_000_000],
      ['x', 1_000_000],
      ['all', 1_000_000],
    ] as const) {
      await accrue(programId, { memberId, invoiceId: `inv-${memberId}`, amountMinor, occurredAt: at });
    }
    // N = 60,000, u = 0.8: 48,000 expected. r redeems 10,000 (R), x's 10,000 expire.
    const redeem = async (memberId: string, invoiceId: string, points: number, occurredAt: string) => {
      const h = await holdRedemption(pool, {
        programId,
        invoiceId,
        redemptionId: randomUUID(),
        memberId,
        points,
        invoiceTotalMinor: 10_000_000,
        pointValueMinor: 1,
        minPoints: 1,
        maxInvoiceShareMillionths: '1000000',
        cohortOrder: 'oldest_first',
        occurredAt,
      });
      assert.equal(h.status, 'held');
      await commitRedemption(pool, programId, invoiceId, 'test');
    };
    await redeem('r', 'buy-r', 10_000, '2026-10-02T00:00:00Z');
    await pool.query(
      `update members set expires_at = '2026-10-03T00:00:00Z' where program_id = $1 and member_id = 'x'`,
      [programId],
    );
    await expireMember(pool, programId, 'x', '2026-10-03T00:00:00Z', 'test');
    const asOf = (t: string) => call('GET', `/v1/programs/${programId}/liability?asOf=${t}`, { role: 'finance' });
    const mid = await asOf('2026-10-04T00:00:00Z');
    assert.equal(mid.status, 200);
    assert.equal(mid.body.outstandingPoints, 40_000);
    // N x u - R = 48,000 - 10,000 = 38,000 (outstanding x u would say 32,000)
    assert.equal(mid.body.expectedRedemptionPoints, 38_000);
    assert.equal(mid.body.cohorts[0].expectedRedemptionPoints, 38_000);
    // more redeemed than expected leaves none expected, not a negative figure
    await redeem('r', 'buy-r2', 30_000, '2026-10-04T12:00:00Z');
    await redeem('all', 'buy-all', 9_000, '2026-10-04T12:00:00Z');
    const late = await asOf('2026-10-05T00:00:00Z');
    assert.equal(late.body.outstandingPoints, 1_000);
    assert.equal(late.body.expectedRedemptionPoints, 0);
    // and as of before the redemptions the figure is the accrual's N x u
    assert.equal((await asOf('2026-10-01T12:00:00Z')).body.expectedRedemptionPoints, 48_000);
  });
});

describe('liability by store', () => {
  test("a refunded sale's allocation comes off its store's weight", async () => {
    const programId = await newProgram();
    for (const store of ['a', 'b']) {
      const r = await accrue(programId, {
        memberId: `m-${store}`,
        invoiceId: `inv-${store}`,
        amountMinor: 1_000_000,
        occurredAt: '2026-10-01T00:00:00Z',
        storeId: `s-${store}`,
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const refund = (refundId: string, amountMinor: number) =>
      call('POST', `/v1/programs/${programId}/refunds`, {
        role: 'billing',
        body: { refundId, invoiceId: 'inv-a', memberId: 'm-a', amountMinor, occurredAt: '2026-10-02T00:00:00Z' },
      });
    const weights = async () =>
      Object.fromEntries(
        (await readPeriodBooks(pool, programId, '2026-Q4')).allocatedByStore.map((w) => [w.key, Number(w.weight)]),
      );
    assert.deepEqual(await weights(), { 's-a': 7_937, 's-b': 7_937 });
    assert.equal((await refund('ra', 250_000)).status, 201); // a quarter of s-a's sale
    assert.deepEqual(await weights(), { 's-a': 7_937 - 1_984, 's-b': 7_937 });
    assert.equal((await refund('rb', 750_000)).status, 201); // the rest: s-a no longer holds any of the liability
    assert.deepEqual(await weights(), { 's-b': 7_937 });
  });
});

describe('operations', () => {
  test('health, readiness, metrics, openapi, docs', async () => {
    assert.equal((await call('GET', '/healthz', { key: null })).status, 200);
    const ready = await call('GET', '/readyz', { key: null });
    assert.equal(ready.status, 200);
    assert.equal(ready.body.postgres, true);
    const metrics = await call('GET', '/metrics', { key: null });
    assert.match(String(metrics.body), /loyalty_api_request_seconds/);
    const openapi = await call('GET', '/openapi.json', { key: null });
    assert.ok(openapi.body.paths['/v1/programs/{programId}/accruals'].post.requestBody);
    assert.equal((await call('GET', '/docs', { key: null })).status, 200);
    assert.equal((await call('GET', '/v1/nothing-here', { key: null })).body.error.code, 'not_found');
  });
});

describe('edge cases found in review', () => {
  test('a merge expires points already past their deadline before moving anything', async () => {
    const programId = await newProgram({ expiry: { policy: 'rolling', window: 'P30D' } });
    await accrue(programId, {
      memberId: 'f',
      invoiceId: 'old',
      amountMinor: 10_000,
      occurredAt: '2026-01-01T00:00:00Z',
    });
    await accrue(programId, {
      memberId: 's',
      invoiceId: 'new',
      amountMinor: 5_000,
      occurredAt: new Date().toISOString(),
    });
    const merge = await call('POST', `/v1/programs/${programId}/members/f/merge`, {
      role: 'support',
      body: { intoMemberId: 's' },
    });
    assert.equal(merge.status, 201);
    assert.equal(merge.body.pointsMoved, 0);
    const f = await call('GET', `/v1/programs/${programId}/members/f/ledger`, { role: 'support' });
    assert.deepEqual(
      f.body.entries.map((e: { type: string; points: number }) => [e.type, e.points]),
      [
        ['earn', 100],
        ['expire', -100],
        ['merge_out', 0],
      ],
    );
    assert.equal((await call('GET', `/v1/programs/${programId}/members/s`, { role: 'support' })).body.balance, 50);
  });

  test('the same deadline set again by a backdated purchase expires again', async () => {
    const programId = await newProgram({ expiry: { policy: 'rolling', window: 'P30D' } });
    await accrue(programId, { memberId: 'm', invoiceId: 'a', amountMinor: 10_000, occurredAt: '2026-03-01T00:00:00Z' });
    assert.equal((await expireMember(pool, programId, 'm', '2026-04-15T00:00:00Z', 'test')).expiredPoints, 100);
    await accrue(programId, { memberId: 'm', invoiceId: 'b', amountMinor: 5_000, occurredAt: '2026-03-01T00:00:00Z' });
    assert.equal((await expireMember(pool, programId, 'm', '2026-04-15T00:00:00Z', 'test')).expiredPoints, 50);
    const more = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'c',
      amountMinor: 1_000,
      occurredAt: '2026-05-01T00:00:00Z',
    });
    assert.equal(more.status, 201);
    assert.equal(more.body.balance, 10);
  });

  test('incremental cost only with the judgment that the points give no material right: refused without it, nothing written', async () => {
    const before = await counts();
    const programId = uniqueId('p');
    const res = await call('POST', '/v1/programs', {
      body: programBody(programId, { accounting: { method: 'incremental_cost', costPerPointMinor: 2 } }),
    });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'material_right_judgment_required');
    // who and when are the principal's and the request's, never the body's; an empty reason is no judgment
    for (const notMaterialRight of [
      { justification: '  ' },
      { justification: 'x', judgedBy: 'someone-else' },
      { justification: 'x', judgedAt: '2020-01-01T00:00:00Z' },
    ]) {
      const res = await call('POST', '/v1/programs', {
        body: programBody(programId, {
          accounting: { method: 'incremental_cost', costPerPointMinor: 2, notMaterialRight },
        }),
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'validation_failed');
    }
    const ssp = await call('POST', '/v1/programs', {
      body: programBody(programId, {
        accounting: { method: 'relative_ssp', notMaterialRight: { justification: 'x' } },
      }),
    });
    assert.equal(ssp.status, 400);
    assert.deepEqual(await counts(), before);
    assert.equal((await call('GET', `/v1/programs/${programId}`)).status, 404);
  });

  test('the judgment is stored with who and when, and audited with the rule version', async () => {
    const programId = uniqueId('p');
    const t0 = Date.now();
    const justification = 'points worth under 0.5% of spend: no discount beyond what any customer gets';
    const res = await call('POST', '/v1/programs', {
      body: programBody(programId, {
        accounting: { method: 'incremental_cost', costPerPointMinor: 2, notMaterialRight: { justification } },
      }),
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const judgment = res.body.accounting.notMaterialRight;
    assert.equal(judgment.justification, justification);
    assert.equal(judgment.judgedBy, 'test-admin');
    assert.ok(Date.parse(judgment.judgedAt) >= t0 - 1000 && Date.parse(judgment.judgedAt) <= Date.now() + 1000);
    const read = await call('GET', `/v1/programs/${programId}`);
    assert.deepEqual(read.body.accounting.notMaterialRight, judgment);
    const audit = await call('GET', `/v1/programs/${programId}/audit`, { role: 'finance' });
    const version = audit.body.entries.find((e: { action: string }) => e.action === 'rule_version');
    assert.ok(version, JSON.stringify(audit.body));
    assert.equal(version.actor, 'test-admin');
    assert.deepEqual(version.after.accounting.notMaterialRight, judgment);
  });

  test('incremental cost: provision and expense, reversed and released on the same accounts', async () => {
    const programId = await newProgram({
      accounting: {
        method: 'incremental_cost',
        costPerPointMinor: 2,
        notMaterialRight: { justification: 'a token reward, no discount beyond what any customer gets' },
      },
      expiry: { policy: 'rolling', window: 'P30D' },
    });
    const a = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'i',
      amountMinor: 10_000,
      occurredAt: '2026-02-01T00:00:00Z',
    });
    assert.equal(a.body.allocatedMinor, 160); // 100 points x 2 x 0.8
    const r = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: { memberId: 'm', invoiceId: 'i', refundId: 'r', amountMinor: 5_000, occurredAt: '2026-02-02T00:00:00Z' },
    });
    assert.equal(r.body.allocatedReversedMinor, 80);
    await expireMember(pool, programId, 'm', '2026-04-01T00:00:00Z', 'test');
    const { rows } = await pool.query(
      `select l.account, sum(l.credit_minor - l.debit_minor)::int as net from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 group by 1 order by 1`,
      [programId],
    );
    assert.deepEqual(rows, [
      { account: 'loyalty_expense', net: 0 },
      { account: 'loyalty_provision', net: 0 },
    ]);
  });

  test('numbers that would overflow are refused, not a 500', async () => {
    const rich = await newProgram({ earn: { points: 1000, perAmountMinor: 1 } });
    const res = await accrue(rich, {
      memberId: 'm',
      invoiceId: 'i',
      amountMinor: 1e15,
      occurredAt: '2026-02-01T00:00:00Z',
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'amount_out_of_range');
    const absurd = await call('POST', '/v1/programs', {
      body: programBody(uniqueId('p'), { earn: { points: 1_000_000, perAmountMinor: 1 } }),
    });
    assert.equal(absurd.status, 400);
    const ancient = await accrue(rich, {
      memberId: 'm',
      invoiceId: 'j',
      amountMinor: 100,
      occurredAt: '0999-02-01T00:00:00Z',
    });
    assert.equal(ancient.status, 400);
    assert.equal(
      (await call('GET', `/v1/programs/${rich}/liability?asOf=0000-01-01T00:00:00Z`, { role: 'finance' })).status,
      400,
    );
  });

  test('merge keys cannot collide when member ids contain colons', async () => {
    const programId = await newProgram();
    for (const m of ['a', 'b:c', 'a:b', 'c'])
      await accrue(programId, {
        memberId: m,
        invoiceId: `inv-${m}`,
        amountMinor: 1_000,
        occurredAt: '2026-10-01T00:00:00Z',
      });
    assert.equal(
      (
        await call('POST', `/v1/programs/${programId}/members/a/merge`, {
          role: 'support',
          body: { intoMemberId: 'b:c' },
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await call('POST', `/v1/programs/${programId}/members/a:b/merge`, {
          role: 'support',
          body: { intoMemberId: 'c' },
        })
      ).status,
      201,
    );
  });

  test('a refund that waits on a merge takes the points from the survivor', async () => {
    const programId = await newProgram();
    await accrue(programId, {
      memberId: 'x',
      invoiceId: 'ix',
      amountMinor: 10_000,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    await accrue(programId, {
      memberId: 'y',
      invoiceId: 'iy',
      amountMinor: 10_000,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    const merger = await pool.connect();
    try {
      await merger.query('begin');
      await merger.query(
        `select 1 from members where program_id = $1 and member_id in ('x', 'y') order by member_id for update`,
        [programId],
      );
      const refund = call('POST', `/v1/programs/${programId}/refunds`, {
        role: 'billing',
        body: {
          memberId: 'x',
          invoiceId: 'ix',
          refundId: 'rx',
          amountMinor: 10_000,
          occurredAt: '2026-10-02T00:00:00Z',
        },
      });
      await new Promise((r) => setTimeout(r, 300)); // the refund is now waiting for x's row
      await merger.query(`select ll_merge($1::jsonb)`, [
        JSON.stringify({
          programId,
          memberId: 'x',
          intoMemberId: 'y',
          occurredAt: new Date().toISOString(),
          idemKey: 'mk',
          requestHash: 'h',
          actor: 'test',
        }),
      ]);
      await merger.query('commit');
      const r = await refund;
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(
        [r.body.memberId, r.body.pointsRevoked, r.body.shortfallPoints, r.body.balance],
        ['y', 100, 0, 100],
      );
    } finally {
      merger.release();
    }
  });
});
