import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { newSecret, putKey } from '../../db/keys';
import { requestHash, scopedIdempotencyKey } from '../../api/validate';
import type { RunningSimulators } from '../../simulators';
import {
  eventually,
  httpClient,
  programBody,
  uniqueId,
  type TestWorker,
  startSagaStack,
  type SagaStack,
} from '../helpers/stack';

// Exact idempotency on every state-changing request (issue 14, item 6; docs/access.md
// "Idempotency"): a replay answers the first response with Idempotent-Replayed: true, another body
// under the key is 409 idempotency_key_reused and does nothing, keys are scoped per principal, and
// the natural keys (an invoice's redemption, a chargebackId) hold whatever the key.
let stack: SagaStack;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let call: ReturnType<typeof httpClient>;
let billing: ReturnType<typeof billingClient>;
/** a second principal with the billing role, one with admin, one with support */
const other: Record<'billing' | 'admin' | 'support', string> = { billing: '', admin: '', support: '' };

beforeAll(async () => {
  stack = await startSagaStack(11);
  ({ pool, sims, worker, call } = stack);
  billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 });
  for (const role of ['billing', 'admin', 'support'] as const) {
    const keyId = uniqueId(`other-${role}`);
    other[role] = newSecret(keyId);
    await putKey(pool, { keyId, secret: other[role], principal: `other-${role}`, roles: [role] });
  }
});
afterAll(() => stack.stop());

const replayed = (res: { headers: Headers }) => res.headers.get('idempotent-replayed');

async function program(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('idem');
  const res = await call('POST', '/v1/programs', { body: programBody(programId, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}

// One business time for every redemption of a run (the same body each time it is sent), after the
// points it spends were earned (a redemption is never dated before the member's first earn)
const REDEEMED_AT = new Date(Date.now() - 60_000).toISOString();
const EARNED_AT = new Date(Date.now() - 86_400_000).toISOString();

/** A program whose member m-1 earned points on an invoice, and an invoice in billing to redeem on. */
async function redeemable(o: { chargebackWindow?: string } = {}) {
  const programId = await program({ chargebackWindow: o.chargebackWindow ?? 'PT60S' });
  const invoiceId = uniqueId('inv');
  const earn = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: {
      memberId: 'm-1',
      invoiceId: `${invoiceId}-earn`,
      amountMinor: 500_000,
      occurredAt: EARNED_AT,
      jurisdiction: 'US-CA',
    },
  });
  assert.equal(earn.status, 201, JSON.stringify(earn.body));
  await billingInvoice(invoiceId);
  return { programId, invoiceId };
}

async function billingInvoice(invoiceId: string) {
  await billing.createInvoice(
    {
      invoiceId,
      customerId: 'c-1',
      currency: 'USD',
      lines: [
        { description: 'Plan', amountMinor: 6000 },
        { description: 'Add-on', amountMinor: 2000 },
      ],
    },
    `inv-${invoiceId}`,
  );
}

const redemptionBody = (invoiceId: string, points: number, memberId = 'm-1') => ({
  invoiceId,
  memberId,
  points,
  invoiceTotalMinor: 8000,
  occurredAt: REDEEMED_AT,
});
const balance = async (programId: string) =>
  (await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'billing' })).body.balance as number;

describe('redemptions', () => {
  test('same key and body: the first answer, replayed; another body under it: 409, nothing done', async () => {
    const { programId, invoiceId } = await redeemable();
    const body = redemptionBody(invoiceId, 2500);
    const first = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body, idem: 'r-1' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.status, 'applied');
    assert.equal(replayed(first), null);
    const after = await balance(programId);

    const again = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body, idem: 'r-1' });
    assert.deepEqual([again.status, replayed(again), again.body], [201, 'true', first.body]);

    const changed = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: redemptionBody(invoiceId, 3000),
      idem: 'r-1',
    });
    assert.deepEqual([changed.status, changed.body.error.code], [409, 'idempotency_key_reused']);
    // the client's key, not the ledger's scoped form of it
    assert.equal(changed.body.error.details.idempotencyKey, 'r-1');
    assert.equal(await balance(programId), after);
  });

  test('the invoice: another body under a new key is 409 redemption_exists; the same body answers the outcome', async () => {
    const { programId, invoiceId } = await redeemable();
    const body = redemptionBody(invoiceId, 2500);
    const first = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const after = await balance(programId);
    for (const [what, changed] of [
      ['other points', redemptionBody(invoiceId, 3000)],
      ['another member', redemptionBody(invoiceId, 2500, 'm-2')],
      ['another total', { ...body, invoiceTotalMinor: 7000 }],
    ] as const) {
      const res = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body: changed });
      assert.deepEqual([res.status, res.body.error?.code], [409, 'redemption_exists'], what);
      assert.equal(res.body.error.details.invoiceId, invoiceId);
    }
    const same = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body });
    assert.deepEqual(
      [same.status, replayed(same), same.body.redemptionId, same.body.pointsApplied],
      [201, null, first.body.redemptionId, 2500],
    );
    assert.equal(await balance(programId), after);
  });

  test("another principal never receives someone else's stored response", async () => {
    const { programId, invoiceId } = await redeemable();
    const body = redemptionBody(invoiceId, 2500);
    const first = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body,
      idem: 'shared',
    });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const theirs = await call('POST', `/v1/programs/${programId}/redemptions`, {
      key: other.billing,
      body,
      idem: 'shared',
    });
    assert.deepEqual([theirs.status, theirs.body.error?.code, replayed(theirs)], [409, 'redemption_exists', null]);
    assert.equal(theirs.body.redemptionId, undefined);
  });

  test('a declined redemption may be tried again with another body', async () => {
    const { programId, invoiceId } = await redeemable();
    const tooMany = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: redemptionBody(invoiceId, 2500, 'ghost'),
    });
    assert.deepEqual([tooMany.status, tooMany.body.status, tooMany.body.reason], [201, 'declined', 'unknown_member']);
    const fewer = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: redemptionBody(invoiceId, 2500),
    });
    assert.deepEqual([fewer.status, fewer.body.status, fewer.body.pointsApplied], [201, 'applied', 2500]);
  });
});

describe('chargebacks', () => {
  test('replayed under the same key; a chargebackId of another invoice is 409; the claw-back keeps its own namespace', async () => {
    const { programId, invoiceId } = await redeemable();
    // the cash part of the invoice earned points: what a lost chargeback claws back
    const cash = { memberId: 'm-1', invoiceId, amountMinor: 8000, occurredAt: new Date().toISOString() };
    assert.equal(
      (await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body: cash })).status,
      201,
    );
    const redeemed = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: redemptionBody(invoiceId, 2500),
    });
    assert.equal(redeemed.body.status, 'applied');
    const second = uniqueId('inv');
    await billingInvoice(second);
    const other2 = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: redemptionBody(second, 1000),
    });
    assert.equal(other2.body.status, 'applied', JSON.stringify(other2.body));

    // a client refundId may not take the claw-back's row
    const squat = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: {
        memberId: 'm-1',
        invoiceId,
        refundId: 'chargeback:cb-1',
        amountMinor: 100,
        occurredAt: new Date().toISOString(),
      },
    });
    assert.deepEqual([squat.status, squat.body.error.code], [400, 'validation_failed']);

    const cb = { invoiceId, chargebackId: 'cb-1', status: 'opened' };
    const first = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: cb,
      idem: 'cb-k',
    });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const again = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: cb,
      idem: 'cb-k',
    });
    assert.deepEqual([again.status, replayed(again), again.body], [202, 'true', first.body]);
    const changed = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: { ...cb, status: 'lost' },
      idem: 'cb-k',
    });
    assert.deepEqual([changed.status, changed.body.error.code], [409, 'idempotency_key_reused']);

    const reused = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: { invoiceId: second, chargebackId: 'cb-1', status: 'lost' },
    });
    assert.deepEqual([reused.status, reused.body.error?.code], [409, 'chargeback_id_reused']);

    const lost = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: { ...cb, status: 'lost' },
    });
    assert.equal(lost.status, 202);
    const claw = await eventually('the claw-back', async () => {
      const { rows } = await pool.query(
        `select refund_id, invoice_id from refunds where program_id = $1 and refund_id like 'chargeback:%'`,
        [programId],
      );
      return rows.length ? rows : null;
    });
    assert.deepEqual(claw, [{ refund_id: 'chargeback:cb-1', invoice_id: invoiceId }]);
    // the second invoice's redemption was not touched by the refused chargeback
    const still = await call('GET', `/v1/programs/${programId}/redemptions/${second}`, { role: 'billing' });
    assert.equal(still.body.status, 'applied');
  });
});

describe('keys scoped per principal, on the routes that had keys', () => {
  test('accruals: another principal with the same key and body is a business duplicate, not a replay', async () => {
    const programId = await program();
    const body = { memberId: 'm-1', invoiceId: 'inv-a', amountMinor: 4999, occurredAt: new Date().toISOString() };
    const first = await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body, idem: 'a-1' });
    assert.equal(first.status, 201);
    const mine = await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body, idem: 'a-1' });
    assert.deepEqual([mine.status, replayed(mine), mine.body], [201, 'true', first.body]);
    const mineNewKey = await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body });
    assert.deepEqual([mineNewKey.status, mineNewKey.body.accrualId], [200, first.body.accrualId]);
    for (const idem of ['a-1', 'a-2']) {
      const theirs = await call('POST', `/v1/programs/${programId}/accruals`, { key: other.billing, body, idem });
      assert.deepEqual([theirs.status, theirs.body.error?.code], [409, 'invoice_already_accrued'], idem);
      assert.equal(theirs.body.balance, undefined);
    }
    // the same key by the other principal for another invoice is theirs: a new accrual
    const theirOwn = await call('POST', `/v1/programs/${programId}/accruals`, {
      key: other.billing,
      body: { ...body, invoiceId: 'inv-b' },
      idem: 'a-1',
    });
    assert.deepEqual([theirOwn.status, replayed(theirOwn)], [201, null]);
  });

  test('refunds: the refundId replays only to the principal that recorded it', async () => {
    const programId = await program();
    const earn = { memberId: 'm-1', invoiceId: 'inv-r', amountMinor: 10_000, occurredAt: new Date().toISOString() };
    assert.equal(
      (await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body: earn })).status,
      201,
    );
    const refund = { ...earn, refundId: 'rf-1', amountMinor: 1000 };
    const first = await call('POST', `/v1/programs/${programId}/refunds`, { role: 'billing', body: refund, idem: 'f' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await call('POST', `/v1/programs/${programId}/refunds`, { role: 'billing', body: refund, idem: 'f' });
    assert.deepEqual([again.status, replayed(again)], [201, 'true']);
    const theirs = await call('POST', `/v1/programs/${programId}/refunds`, {
      key: other.billing,
      body: refund,
      idem: 'f',
    });
    assert.deepEqual([theirs.status, theirs.body.error?.code], [409, 'refund_already_recorded']);
  });

  test('programs: another admin with the same key and body gets program_exists, not the stored program', async () => {
    const programId = uniqueId('idem');
    const body = programBody(programId);
    assert.equal((await call('POST', '/v1/programs', { body, idem: 'pk' })).status, 201);
    const theirs = await call('POST', '/v1/programs', { key: other.admin, body, idem: 'pk' });
    assert.deepEqual([theirs.status, theirs.body.error?.code], [409, 'program_exists']);
  });
});

describe('closes, rule changes, reconciliations', () => {
  test('a close started again under its key is a replay; another period under it is 409', async () => {
    const programId = await program();
    const earn = { memberId: 'm-1', invoiceId: 'inv-c', amountMinor: 10_000, occurredAt: '2026-01-15T10:00:00Z' };
    assert.equal(
      (await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body: earn })).status,
      201,
    );
    const start = { period: '2026-Q1' };
    const first = await call('POST', `/v1/programs/${programId}/closes`, { role: 'finance', body: start, idem: 'c' });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const again = await call('POST', `/v1/programs/${programId}/closes`, { role: 'finance', body: start, idem: 'c' });
    assert.deepEqual([again.status, replayed(again), again.body], [202, 'true', first.body]);
    const changed = await call('POST', `/v1/programs/${programId}/closes`, {
      role: 'finance',
      body: { period: '2026-Q2' },
      idem: 'c',
    });
    assert.deepEqual([changed.status, changed.body.error.code], [409, 'idempotency_key_reused']);
    const periods = await eventually('the close recorded', async () => {
      const { rows } = await pool.query('select period from closes where program_id = $1', [programId]);
      return rows.length ? rows.map((r) => r.period) : null;
    });
    assert.deepEqual(periods, ['2026-Q1']);
    const q2 = await worker.client.workflow
      .getHandle(`close:${programId}:2026-Q2`)
      .describe()
      .then(
        () => 'started',
        () => 'none',
      );
    assert.equal(q2, 'none');
  });

  test('a rule change proposed again under its key is a replay; another change under it is 409, nothing recorded', async () => {
    const programId = await program();
    const { programId: _p, name: _n, currency: _c, ...rules } = programBody(programId, { pointValueMinor: 2 });
    const proposal = { changeId: 'ch-1', effectiveAt: new Date().toISOString(), rules };
    const post = (body: unknown) =>
      call('POST', `/v1/programs/${programId}/rule-changes`, { role: 'program_owner', body, idem: 'rc' });
    const first = await post(proposal);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const again = await post(proposal);
    assert.deepEqual([again.status, replayed(again), again.body], [202, 'true', first.body]);
    const changed = await post({ ...proposal, changeId: 'ch-2' });
    assert.deepEqual([changed.status, changed.body.error.code], [409, 'idempotency_key_reused']);
    const { rows } = await pool.query('select change_id from rule_changes where program_id = $1', [programId]);
    assert.deepEqual(
      rows.map((r) => r.change_id),
      ['ch-1'],
    );
  });

  test('reconciliations take an optional key: sent, a replay answers the first report', async () => {
    const programId = await program();
    const date = new Date().toISOString().slice(0, 10);
    const run = (body: unknown, idem: string | null) =>
      call('POST', `/v1/programs/${programId}/reconciliations`, { role: 'finance', body, idem });
    const first = await run({ date }, 'rec');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const again = await run({ date }, 'rec');
    assert.deepEqual([again.status, replayed(again), again.body.runId], [200, 'true', first.body.runId]);
    const changed = await run({ date: '2026-01-02' }, 'rec');
    assert.deepEqual([changed.status, changed.body.error.code], [409, 'idempotency_key_reused']);
    const unkeyed = await run({ date }, null);
    assert.deepEqual([unkeyed.status, replayed(unkeyed)], [200, null]);
  });

  test('a request in progress under the key: 409 with Retry-After; a claim left past its lease is taken over', async () => {
    const programId = await program();
    const date = new Date().toISOString().slice(0, 10);
    const body = { date };
    // what a request that is still working (or whose API crashed) left: its claim, in progress
    const stored = scopedIdempotencyKey('test-finance', 'reconciliations', 'busy');
    await pool.query(
      `insert into idempotency_keys (scope, idem_key, request_hash, status_code, response, claimed_at, claim_id)
       values ($1, $2, $3, 0, 'null', now(), gen_random_uuid())`,
      [programId, stored, requestHash('reconciliations', body)],
    );
    const busy = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body,
      idem: 'busy',
    });
    assert.deepEqual([busy.status, busy.body.error?.code], [409, 'idempotency_request_in_progress']);
    assert.ok(Number(busy.headers.get('retry-after')) >= 1, busy.headers.get('retry-after') ?? 'no Retry-After');
    const none = await pool.query('select count(*)::int as n from reconciliation_runs where program_id = $1', [
      programId,
    ]);
    assert.equal(none.rows[0].n, 0);

    await pool.query(
      `update idempotency_keys set claimed_at = now() - interval '1 hour' where scope = $1 and idem_key = $2`,
      [programId, stored],
    );
    const taken = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body,
      idem: 'busy',
    });
    assert.deepEqual([taken.status, replayed(taken)], [200, null]);
    const replay = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body,
      idem: 'busy',
    });
    assert.deepEqual([replay.status, replayed(replay), replay.body.runId], [200, 'true', taken.body.runId]);
  });
});

describe('manual adjustments', () => {
  test("an adjustment and its approval replay under their keys; another principal's key is their own", async () => {
    const programId = await program();
    const earn = { memberId: 'm-1', invoiceId: 'inv-adj', amountMinor: 200_000, occurredAt: new Date().toISOString() };
    assert.equal(
      (await call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body: earn })).status,
      201,
    );
    const adjust = (body: Record<string, unknown>, idem: string, key?: string) =>
      call('POST', `/v1/programs/${programId}/adjustments`, {
        ...(key ? { key } : { role: 'support' as const }),
        body: { memberId: 'm-1', reasonCode: 'goodwill', ...body },
        idem,
      });
    const first = await adjust({ points: 10 }, 'ad-1');
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await adjust({ points: 10 }, 'ad-1');
    assert.deepEqual([again.status, replayed(again), again.body.adjustmentId], [201, 'true', first.body.adjustmentId]);
    const theirs = await adjust({ points: 10 }, 'ad-1', other.support);
    assert.deepEqual([theirs.status, replayed(theirs)], [201, null]);
    assert.notEqual(theirs.body.adjustmentId, first.body.adjustmentId);

    const big = await adjust({ points: 5000, reasonCode: 'migration' }, 'ad-big');
    assert.deepEqual([big.status, big.body.status], [202, 'pending_approval']);
    const approve = (decision: string) =>
      call('POST', `/v1/programs/${programId}/adjustments/${big.body.adjustmentId}/approvals`, {
        role: 'finance',
        body: { decision },
        idem: 'ap-1',
      });
    const ok = await approve('approve');
    assert.deepEqual([ok.status, ok.body.status], [200, 'applied'], JSON.stringify(ok.body));
    const okAgain = await approve('approve');
    assert.deepEqual([okAgain.status, replayed(okAgain), okAgain.body], [200, 'true', ok.body]);
    const changed = await approve('reject');
    assert.deepEqual([changed.status, changed.body.error.code], [409, 'idempotency_key_reused']);
  });
});
