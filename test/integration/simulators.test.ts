import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { ServiceError } from '../../activities/services/http';
import { taxClient } from '../../activities/services/tax';
import { startSimulators, type RunningSimulators } from '../../simulators';

// The adapters against the real simulator servers over HTTP, faults included.
let sims: RunningSimulators;
let billing: ReturnType<typeof billingClient>;
let gl: ReturnType<typeof glClient>;
let tax: ReturnType<typeof taxClient>;

beforeAll(async () => {
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 42);
  billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 });
  gl = glClient({ baseUrl: sims.glUrl, timeoutMs: 1000 });
  tax = taxClient({ baseUrl: sims.taxUrl, timeoutMs: 1000 });
});
afterAll(async () => sims.close());

async function fault(url: string, rule: Record<string, unknown>) {
  const res = await fetch(`${url}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
  assert.equal(res.status, 200);
}

async function rejects(p: Promise<unknown>, check: (e: ServiceError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ServiceError, String(e));
    check(e);
    return true;
  });
}

describe('billing', () => {
  test('invoice, credit line, replay, reversal, credits of the day', async () => {
    const inv = await billing.createInvoice(
      { invoiceId: 'inv-1', customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
      'k-inv-1',
    );
    assert.equal(inv.amountDueMinor, 8000);
    const credit = { creditId: 'cr-1', description: 'Loyalty points: 2,500 pts', amountMinor: 2500, points: 2500 };
    const applied = await billing.applyCredit('inv-1', credit, 'k-cr-1');
    assert.equal(applied.invoice.amountDueMinor, 5500);
    const again = await billing.applyCredit('inv-1', credit, 'k-cr-1');
    assert.deepEqual(again, applied, 'a replay answers the first response');
    await rejects(billing.applyCredit('inv-1', { ...credit, amountMinor: 9 }, 'k-cr-1'), (e) =>
      assert.deepEqual([e.status, e.code, e.retryable], [409, 'idempotency_key_reused', false]),
    );
    await rejects(billing.applyCredit('inv-1', { ...credit, creditId: 'cr-2', amountMinor: 6000 }, 'k-cr-2'), (e) =>
      assert.deepEqual([e.code, e.retryable], ['credit_exceeds_amount_due', false]),
    );
    const day = new Date().toISOString().slice(0, 10);
    assert.equal((await billing.creditsOn(day)).credits.length, 1);
    const reversed = await billing.reverseCredit('inv-1', 'cr-1', 'compensation', 'k-rev-1');
    assert.equal(reversed.invoice.amountDueMinor, 8000);
    await rejects(billing.getInvoice('nope'), (e) => assert.deepEqual([e.status, e.retryable], [404, false]));
  });
});

describe('gl', () => {
  test('balanced entries only; reversal is a new entry; listing by date and account', async () => {
    const lines = [
      { account: 'loyalty_contract_liability', debitMinor: 925, creditMinor: 0 },
      { account: 'loyalty_revenue', debitMinor: 0, creditMinor: 925 },
    ];
    const e = await gl.postEntry(
      { entryId: 'je-1', date: '2026-11-22', description: 'redemption inv-1', lines },
      'k-je-1',
    );
    assert.equal(e.entryId, 'je-1');
    await rejects(
      gl.postEntry(
        {
          entryId: 'je-2',
          date: '2026-11-22',
          description: 'bad',
          lines: [lines[0]!, { ...lines[1]!, creditMinor: 924 }],
        },
        'k-je-2',
      ),
      (err) => assert.deepEqual([err.status, err.code, err.retryable], [422, 'unbalanced_entry', false]),
    );
    const r = await gl.reverseEntry('je-1', 'je-1-rev', '2026-11-23', 'k-rev');
    assert.deepEqual(
      r.lines.map((l) => [l.account, l.debitMinor, l.creditMinor]),
      [
        ['loyalty_contract_liability', 0, 925],
        ['loyalty_revenue', 925, 0],
      ],
    );
    assert.equal((await gl.entriesOn('2026-11-22', 'loyalty_revenue')).entries.length, 1);
    assert.equal((await gl.entriesOn('2026-11-23')).entries[0]!.reverses, 'je-1');
  });
});

describe('tax', () => {
  const lines = [
    { lineId: 'l1', amountMinor: 6000 },
    { lineId: 'l2', amountMinor: 2000 },
  ];
  const ask = (jurisdiction: string, scheme: 'own_store' | 'third_party', extra: object = {}) =>
    tax.treatment(
      { jurisdiction, currency: 'USD', lines, pointsCreditMinor: 2500, scheme, ...extra },
      `k-${jurisdiction}-${scheme}-${JSON.stringify(extra)}`,
    );

  test('California and Tennessee: store points are a discount, the credit lowers the taxable base', async () => {
    const ca = await ask('US-CA', 'own_store');
    assert.deepEqual([ca.treatment, ca.basis, ca.rateMillionths], ['discount', 'law', 72_500]);
    assert.equal(ca.taxableBaseMinor, 5500);
    assert.equal(ca.taxOnCreditMinor, 0);
    assert.deepEqual(ca.taxLines, [
      {
        lineId: 'l1',
        amountMinor: 6000,
        pointsShareMinor: 1875,
        taxableMinor: 4125,
        taxMinor: 299,
        taxOnPointsMinor: 0,
      },
      {
        lineId: 'l2',
        amountMinor: 2000,
        pointsShareMinor: 625,
        taxableMinor: 1375,
        taxMinor: 100,
        taxOnPointsMinor: 0,
      },
    ]);
    const tn = await ask('US-TN', 'own_store');
    assert.deepEqual([tn.treatment, tn.taxableBaseMinor, tn.totalTaxMinor], ['discount', 5500, 385]);
  });

  test('Minnesota taxes the full price: the points are consideration, with output tax on the part they paid', async () => {
    const mn = await tax.treatment(
      {
        jurisdiction: 'US-MN',
        currency: 'USD',
        lines: [
          { lineId: '1', amountMinor: 12_000 },
          { lineId: '2', amountMinor: 8_000 },
        ],
        pointsCreditMinor: 2000,
        scheme: 'own_store',
      },
      'k-mn',
    );
    assert.deepEqual([mn.treatment, mn.taxableBaseMinor, mn.rateMillionths], ['consideration', 20_000, 68_750]);
    // 1,200 x 6.875% = 82.5 -> 83 and 800 x 6.875% = 55: 138 on the 20.00 paid with points
    assert.deepEqual(
      mn.taxLines.map((l) => [l.pointsShareMinor, l.taxMinor, l.taxOnPointsMinor]),
      [
        [1200, 825, 83],
        [800, 550, 55],
      ],
    );
    assert.equal(mn.taxOnCreditMinor, 138);
  });

  test('EU VAT: an own-store scheme is a discount (Tesco), a third-party scheme consideration (LMUK/Baxi)', async () => {
    const own = await ask('DE', 'own_store');
    assert.deepEqual(
      [own.treatment, own.taxableBaseMinor, own.totalTaxMinor, own.taxOnCreditMinor],
      ['discount', 5500, 1045, 0],
    );
    const third = await ask('DE', 'third_party');
    assert.deepEqual(
      [third.treatment, third.taxableBaseMinor, third.totalTaxMinor, third.taxOnCreditMinor],
      ['consideration', 8000, 1520, 475],
    );
  });

  test("a program's own treatment for a jurisdiction wins over the law's, and says so", async () => {
    const set = await ask('US-CA', 'own_store', { treatment: 'consideration' });
    assert.deepEqual([set.treatment, set.basis, set.taxableBaseMinor], ['consideration', 'program', 8000]);
    await rejects(ask('ZZ', 'own_store'), (e) => assert.equal(e.code, 'unsupported_jurisdiction'));
    await rejects(ask('US-CA', 'own_store', { treatment: 'tender' }), (e) => assert.equal(e.code, 'validation_failed'));
  });
});

describe('fault injection', () => {
  test('fail the next N calls: retryable, then the same call succeeds', async () => {
    await fault(sims.taxUrl, { operation: 'get_treatment', failNext: 2 });
    const q = {
      jurisdiction: 'US-NY',
      currency: 'USD',
      lines: [{ lineId: 'l', amountMinor: 1000 }],
      pointsCreditMinor: 0,
      scheme: 'own_store' as const,
    };
    for (let i = 0; i < 2; i++)
      await rejects(tax.treatment(q, 'k-fn'), (e) => assert.deepEqual([e.status, e.retryable], [503, true]));
    assert.equal((await tax.treatment(q, 'k-fn')).totalTaxMinor, 40);
  });

  test('fail a share of calls, reproducibly for a seed', async () => {
    const run = async () => {
      await fault(sims.glUrl, { operation: 'list_entries', failRate: 0.3, seed: 7 });
      const outcomes: boolean[] = [];
      for (let i = 0; i < 40; i++)
        outcomes.push(
          await gl.entriesOn('2026-01-01').then(
            () => true,
            () => false,
          ),
        );
      return outcomes;
    };
    const first = await run();
    const failures = first.filter((ok) => !ok).length;
    assert.ok(failures >= 4 && failures <= 24, `${failures} of 40 failed`);
    assert.deepEqual(await run(), first, 'the same seed fails the same calls');
    await fault(sims.glUrl, { operation: 'list_entries', failRate: 0 });
  });

  test('latency and timeouts', async () => {
    await fault(sims.billingUrl, { operation: 'list_credits', latencyMs: 150 });
    const t0 = Date.now();
    await billing.creditsOn('2026-01-01');
    assert.ok(Date.now() - t0 >= 150);
    await fault(sims.billingUrl, { operation: 'list_credits', latencyMs: 0, timeoutNext: 1 });
    await rejects(billing.creditsOn('2026-01-01'), (e) => assert.deepEqual([e.code, e.retryable], ['timeout', true]));
    await billing.creditsOn('2026-01-01');
    const bad = await fetch(`${sims.billingUrl}/admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operation: 'x', failRate: 2 }),
    });
    assert.equal(bad.status, 400);
  });
});
