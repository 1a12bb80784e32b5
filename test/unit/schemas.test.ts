import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isValidWindow, MAX_WINDOW_MS, nominalMs } from '../../domain/duration';
import { quarterBounds, quarterOf } from '../../domain/period';
import {
  accrualSchema,
  createProgramSchema,
  ledgerQuery,
  liabilityQuery,
  mergeSchema,
  refundSchema,
} from '../../domain/schemas';
import { programBody } from '../helpers/fixtures';

const validProgram = programBody('acme-rewards', {
  pointValueMinor: 100,
  earn: { points: 1, perAmountMinor: 1_000 },
  redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
  chargebackWindow: 'PT10S',
});

const validAccrual = {
  memberId: 'member-1',
  invoiceId: 'inv-1',
  amountMinor: 4_000_000,
  occurredAt: '2026-01-15T10:00:00Z',
};

const validRefund = {
  memberId: 'member-1',
  invoiceId: 'inv-1',
  refundId: 'ref-1',
  amountMinor: 1_000,
  occurredAt: '2026-01-16T10:00:00Z',
};

function program(patch: Record<string, unknown>) {
  return createProgramSchema.safeParse({ ...validProgram, ...patch });
}

describe('durations', () => {
  for (const d of ['P365D', 'PT10S', 'P1Y2M', 'PT1S', 'P100Y', 'P1W', 'P1DT12H', 'PT1H30M', 'P1Y2M3W4DT5H6M7S']) {
    test(`accepts ${d}`, () => {
      assert.equal(isValidWindow(d), true);
      assert.equal(program({ chargebackWindow: d }).success, true);
      assert.equal(program({ expiry: { policy: 'rolling', window: d } }).success, true);
    });
  }

  for (const d of [
    '',
    'P',
    'PT',
    '365D',
    'PT0S',
    'P1000Y',
    'PT0.5S',
    'P0D',
    'PT0.999S',
    'p365d',
    'P1DT',
    'P-1D',
    ' P1D',
    'P1D ',
    'P101Y',
    'PT9999999999S',
    'PT99999999999S',
    'P1.5D',
    'P1S',
    'PT1D',
  ]) {
    test(`rejects ${JSON.stringify(d)}`, () => {
      assert.equal(isValidWindow(d), false);
      assert.equal(program({ chargebackWindow: d }).success, false);
      assert.equal(program({ expiry: { policy: 'rolling', window: d } }).success, false);
    });
  }

  test('nominal lengths', () => {
    assert.equal(nominalMs('PT10S'), 10_000);
    assert.equal(nominalMs('P365D'), 365 * 86_400_000);
    assert.equal(nominalMs('P1Y2M'), (365 + 60) * 86_400_000);
    assert.equal(nominalMs('P1W'), 7 * 86_400_000);
    assert.equal(nominalMs('PT1H1M1S'), 3_661_000);
    assert.equal(nominalMs('nonsense'), null);
    assert.ok(nominalMs('P100Y')! <= MAX_WINDOW_MS);
  });

  test('a long string is rejected by the schema', () => {
    assert.equal(program({ chargebackWindow: 'P' + '0'.repeat(50) + '1D' }).success, false);
  });

  test('property: any whole number of seconds between 1 s and 100 years is a valid PTnS window', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_WINDOW_MS / 1000 }), (s) => {
        assert.equal(isValidWindow(`PT${s}S`), true);
        assert.equal(nominalMs(`PT${s}S`), s * 1000);
      }),
    );
  });
});

describe('createProgramSchema', () => {
  test('accepts a valid program', () => {
    const r = createProgramSchema.safeParse(validProgram);
    assert.equal(r.success, true, JSON.stringify(r.error?.issues));
  });

  test('rates: at most 6 decimals, in range', () => {
    for (const ok of [0.8, 1, 0.000001, 0.123456, 0.999999]) {
      assert.equal(program({ expectedRedemptionRate: ok }).success, true, String(ok));
      assert.equal(
        program({ redemption: { ...validProgram.redemption, maxInvoiceShare: ok } }).success,
        true,
        String(ok),
      );
    }
    for (const bad of [
      0.1234567,
      0.0000001,
      0.9999995,
      0,
      -0.5,
      1.000001,
      2,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '0.8',
    ]) {
      assert.equal(program({ expectedRedemptionRate: bad }).success, false, String(bad));
      assert.equal(
        program({ redemption: { ...validProgram.redemption, maxInvoiceShare: bad } }).success,
        false,
        String(bad),
      );
    }
  });

  test('unknown currency and badly formed codes are rejected', () => {
    for (const c of ['XXY', 'usd', 'US', 'USDX', '', 'ZZZ']) assert.equal(program({ currency: c }).success, false, c);
    for (const c of ['USD', 'EUR', 'JPY', 'KWD']) assert.equal(program({ currency: c }).success, true, c);
  });

  test('rolling expiry needs a window; policy none does not', () => {
    assert.equal(program({ expiry: { policy: 'rolling' } }).success, false);
    assert.equal(program({ expiry: { policy: 'none' } }).success, true);
    assert.equal(program({ expiry: { policy: 'sometimes', window: 'P1D' } }).success, false);
  });

  test('jurisdiction overrides: rolling needs a window, keys must be ISO 3166', () => {
    const withJ = (jurisdictions: unknown) =>
      program({ expiry: { policy: 'rolling', window: 'P365D', jurisdictions } });
    assert.equal(withJ({ 'US-CA': { policy: 'none' }, DE: { policy: 'rolling', window: 'P3Y' } }).success, true);
    assert.equal(withJ({ 'US-CA': { policy: 'rolling' } }).success, false);
    assert.equal(withJ({ 'us-ca': { policy: 'none' } }).success, false);
    assert.equal(withJ({ 'US-CA': { policy: 'none', extra: 1 } }).success, false);
  });

  test('incremental_cost needs costPerPointMinor', () => {
    assert.equal(program({ accounting: { method: 'incremental_cost' } }).success, false);
    assert.equal(program({ accounting: { method: 'incremental_cost', costPerPointMinor: 40 } }).success, true);
    assert.equal(program({ accounting: { method: 'incremental_cost', costPerPointMinor: 0 } }).success, false);
    assert.equal(program({ accounting: { method: 'incremental_cost', costPerPointMinor: 1.5 } }).success, false);
    assert.equal(program({ accounting: { method: 'fair_value' } }).success, false);
  });

  test('the material-right judgment: a reason from the body, never who or when; incremental_cost only', () => {
    const cost = (notMaterialRight: unknown) =>
      program({ accounting: { method: 'incremental_cost', costPerPointMinor: 2, notMaterialRight } });
    assert.equal(cost({ justification: 'a token reward' }).success, true);
    assert.equal(cost({ justification: ' ' }).success, false);
    assert.equal(cost({ justification: 'x'.repeat(2001) }).success, false);
    assert.equal(cost({ justification: 'a\u0000b' }).success, false);
    assert.equal(cost({ justification: 'x', judgedBy: 'me' }).success, false);
    assert.equal(cost({ justification: 'x', judgedAt: '2026-01-01T00:00:00Z' }).success, false);
    assert.equal(
      program({ accounting: { method: 'relative_ssp', notMaterialRight: { justification: 'x' } } }).success,
      false,
    );
  });

  test('unknown fields are rejected at every level', () => {
    assert.equal(program({ extra: true }).success, false);
    assert.equal(program({ earn: { ...validProgram.earn, bonus: 2 } }).success, false);
    assert.equal(program({ expiry: { ...validProgram.expiry, grace: 'P1D' } }).success, false);
    assert.equal(program({ accounting: { method: 'relative_ssp', note: 'x' } }).success, false);
    assert.equal(program({ redemption: { ...validProgram.redemption, x: 1 } }).success, false);
  });

  test('missing required fields are rejected', () => {
    for (const key of Object.keys(validProgram)) {
      const p: Record<string, unknown> = { ...validProgram };
      delete p[key];
      assert.equal(createProgramSchema.safeParse(p).success, false, key);
    }
  });

  test('programId, integers and limits', () => {
    for (const bad of ['Acme', '-acme', '', 'a'.repeat(64), 'acme rewards', 'acme.rewards']) {
      assert.equal(program({ programId: bad }).success, false, bad);
    }
    assert.equal(program({ programId: 'a'.repeat(63) }).success, true);
    assert.equal(program({ pointValueMinor: 0 }).success, false);
    assert.equal(program({ pointValueMinor: 1.5 }).success, false);
    assert.equal(program({ pointValueMinor: 1_000_000_001 }).success, false);
    assert.equal(program({ earn: { points: 0, perAmountMinor: 100 } }).success, false);
    assert.equal(program({ earn: { points: 1_000_001, perAmountMinor: 100 } }).success, false);
    assert.equal(program({ earn: { points: 1, perAmountMinor: 0 } }).success, false);
    assert.equal(program({ name: '' }).success, false);
    assert.equal(program({ name: 'x'.repeat(201) }).success, false);
  });
});

describe('accrualSchema and refundSchema', () => {
  test('accept valid requests', () => {
    assert.equal(accrualSchema.safeParse(validAccrual).success, true);
    assert.equal(accrualSchema.safeParse({ ...validAccrual, storeId: 'store-9', jurisdiction: 'US-CA' }).success, true);
    assert.equal(refundSchema.safeParse(validRefund).success, true);
  });

  test('amountMinor: positive safe integers up to 10^15 only', () => {
    for (const ok of [1, 4_000_000, 1_000_000_000_000_000]) {
      assert.equal(accrualSchema.safeParse({ ...validAccrual, amountMinor: ok }).success, true, String(ok));
      assert.equal(refundSchema.safeParse({ ...validRefund, amountMinor: ok }).success, true, String(ok));
    }
    for (const bad of [
      0,
      -1,
      -4_000_000,
      1.5,
      0.01,
      1_000_000_000_000_001,
      1e16,
      Number.MAX_SAFE_INTEGER + 2,
      1e300,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '100',
      null,
    ]) {
      assert.equal(accrualSchema.safeParse({ ...validAccrual, amountMinor: bad }).success, false, String(bad));
      assert.equal(refundSchema.safeParse({ ...validRefund, amountMinor: bad }).success, false, String(bad));
    }
  });

  test('unknown fields are rejected', () => {
    assert.equal(accrualSchema.safeParse({ ...validAccrual, points: 100 }).success, false);
    assert.equal(refundSchema.safeParse({ ...validRefund, points: 100 }).success, false);
    assert.equal(mergeSchema.safeParse({ intoMemberId: 'm2', fromMemberId: 'm1' }).success, false);
  });

  test('occurredAt must be an ISO 8601 instant with an offset', () => {
    for (const ok of [
      '2026-01-15T10:00:00Z',
      '2026-01-15T10:00:00.123Z',
      '2026-01-15T10:00:00+02:00',
      '2024-02-29T00:00:00Z',
    ]) {
      assert.equal(accrualSchema.safeParse({ ...validAccrual, occurredAt: ok }).success, true, ok);
    }
    for (const bad of [
      '',
      'yesterday',
      '2026-01-15',
      '2026-01-15T10:00:00',
      '2026-13-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '2026-01-15T25:00:00Z',
      '2026-01-15 10:00:00Z',
      1_768_471_200_000,
      null,
    ]) {
      assert.equal(accrualSchema.safeParse({ ...validAccrual, occurredAt: bad }).success, false, String(bad));
      assert.equal(refundSchema.safeParse({ ...validRefund, occurredAt: bad }).success, false, String(bad));
    }
  });

  test('ids: printable ASCII without spaces, 1 to 128 characters', () => {
    for (const bad of ['', 'has space', 'x'.repeat(129), 'tab\there', 'é']) {
      assert.equal(accrualSchema.safeParse({ ...validAccrual, memberId: bad }).success, false, bad);
    }
    assert.equal(accrualSchema.safeParse({ ...validAccrual, memberId: 'x'.repeat(128) }).success, true);
    assert.equal(mergeSchema.safeParse({ intoMemberId: 'm-2' }).success, true);
    assert.equal(mergeSchema.safeParse({ intoMemberId: '' }).success, false);
    assert.equal(mergeSchema.safeParse({}).success, false);
  });

  test('jurisdiction must be an ISO 3166 code', () => {
    for (const bad of ['us', 'USA', 'US-', 'US-ABCD', 'us-ca']) {
      assert.equal(accrualSchema.safeParse({ ...validAccrual, jurisdiction: bad }).success, false, bad);
    }
  });
});

describe('ledgerQuery and liabilityQuery', () => {
  test('ledgerQuery', () => {
    assert.deepEqual(ledgerQuery.parse({}), {});
    assert.deepEqual(ledgerQuery.parse({ after: '123', limit: '50' }), { after: '123', limit: 50 });
    assert.equal(ledgerQuery.safeParse({ limit: '1000' }).success, true);
    for (const bad of [
      { after: 'abc' },
      { after: '-1' },
      { after: '1'.repeat(19) },
      { after: '' },
      { limit: '0' },
      { limit: '1001' },
      { limit: '1.5' },
      { limit: 'ten' },
      { cursor: '1' },
    ]) {
      assert.equal(ledgerQuery.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });

  test('liabilityQuery', () => {
    assert.equal(liabilityQuery.safeParse({}).success, true);
    assert.equal(liabilityQuery.safeParse({ asOf: '2026-03-31T23:59:59Z' }).success, true);
    assert.equal(liabilityQuery.safeParse({ asOf: '2026-03-31' }).success, false);
    assert.equal(liabilityQuery.safeParse({ asOf: 'now' }).success, false);
    assert.equal(liabilityQuery.safeParse({ period: '2026-Q1' }).success, false);
  });
});

describe('quarterOf and quarterBounds', () => {
  test('edges', () => {
    assert.equal(quarterOf(new Date('2026-03-31T23:59:59Z')), '2026-Q1');
    assert.equal(quarterOf(new Date('2026-03-31T23:59:59.999Z')), '2026-Q1');
    assert.equal(quarterOf(new Date('2026-04-01T00:00:00Z')), '2026-Q2');
    assert.equal(quarterOf(new Date('2026-01-01T00:00:00Z')), '2026-Q1');
    assert.equal(quarterOf(new Date('2025-12-31T23:59:59Z')), '2025-Q4');
    assert.equal(quarterOf(new Date('2026-06-30T23:59:59Z')), '2026-Q2');
    assert.equal(quarterOf(new Date('2026-07-01T00:00:00Z')), '2026-Q3');
    assert.equal(quarterOf(new Date('2026-10-01T00:00:00Z')), '2026-Q4');
    // UTC, not local time: 00:30 at +02:00 on 1 April is still 31 March in UTC
    assert.equal(quarterOf(new Date('2026-04-01T00:30:00+02:00')), '2026-Q1');
  });

  test('bounds are [start, end) in UTC', () => {
    assert.deepEqual(quarterBounds('2026-Q1'), {
      start: new Date('2026-01-01T00:00:00Z'),
      end: new Date('2026-04-01T00:00:00Z'),
    });
    assert.deepEqual(quarterBounds('2026-Q2'), {
      start: new Date('2026-04-01T00:00:00Z'),
      end: new Date('2026-07-01T00:00:00Z'),
    });
    assert.deepEqual(quarterBounds('2026-Q4'), {
      start: new Date('2026-10-01T00:00:00Z'),
      end: new Date('2027-01-01T00:00:00Z'),
    });
  });

  test('bad periods throw', () => {
    for (const bad of ['2026-Q0', '2026-Q5', '2026Q1', '26-Q1', '2026-q1', '', '2026-Q1 ']) {
      assert.throws(() => quarterBounds(bad), RangeError, bad);
    }
  });

  test('property: every instant lies in the bounds of its quarter', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1970-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        (d) => {
          const { start, end } = quarterBounds(quarterOf(d));
          assert.ok(
            start.getTime() <= d.getTime() && d.getTime() < end.getTime(),
            `${d.toISOString()} not in ${quarterOf(d)}`,
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});
