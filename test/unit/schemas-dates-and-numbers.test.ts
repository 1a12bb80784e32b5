import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { fromDbError } from '../../db/errors';
import { closeParams, createProgramSchema, LIMITS, ruleChangeSchema, startCloseSchema } from '../../domain/schemas';
import { programBody } from '../helpers/fixtures';

// Dates and numbers in range (issue 14, item 7): the pure rules.
describe("a period's year", () => {
  test('four digits from 2000 to 2999, on a close and on every route that takes a period', () => {
    for (const period of ['2000-Q1', '2026-Q3', '2999-Q4'])
      assert.ok(startCloseSchema.safeParse({ period }).success, period);
    for (const period of ['0000-Q1', '0001-Q1', '1999-Q4', '3000-Q1', '9999-Q4', '20260-Q1', '2026-Q5', '2026-q1']) {
      assert.equal(startCloseSchema.safeParse({ period }).success, false, period);
      assert.equal(closeParams.safeParse({ programId: 'p', period }).success, false, period);
    }
    assert.deepEqual(LIMITS.periodYears, { min: 2000, max: 2999 });
  });
});

describe("the program's go-live", () => {
  test('goLiveAt is optional and an RFC 3339 instant from 1970 on, on a program and on a rule change', () => {
    assert.ok(createProgramSchema.safeParse(programBody('p')).success);
    assert.ok(createProgramSchema.safeParse(programBody('p', { goLiveAt: '2026-07-01T00:00:00Z' })).success);
    assert.ok(createProgramSchema.safeParse(programBody('p', { goLiveAt: '2026-07-01T02:00:00+02:00' })).success);
    for (const goLiveAt of ['2026-07-01', 'soon', '1969-12-31T23:59:59Z', 0, null])
      assert.equal(createProgramSchema.safeParse(programBody('p', { goLiveAt })).success, false, String(goLiveAt));
    const { programId, name, currency, ...rules } = programBody('p', { goLiveAt: '2026-07-01T00:00:00Z' });
    void programId;
    void name;
    void currency;
    assert.ok(
      ruleChangeSchema.safeParse({ changeId: 'c', effectiveAt: '2026-12-01T00:00:00Z', rules }).success,
      'a rule change moves it',
    );
  });
});

describe('database values out of range', () => {
  test('numeric overflow and malformed values are 4xx with a stable code, never 500', () => {
    const overflow = fromDbError({ code: '22003', message: 'bigint out of range' });
    assert.deepEqual([overflow?.statusCode, overflow?.code], [422, 'amount_out_of_range']);
    const text = fromDbError({ code: '22P02', message: 'invalid input syntax for type bigint: "x"' });
    assert.deepEqual([text?.statusCode, text?.code], [400, 'validation_failed']);
    const date = fromDbError({ code: '22008', message: 'timestamp out of range' });
    assert.deepEqual([date?.statusCode, date?.code], [400, 'validation_failed']);
    const zero = fromDbError({ code: '22012', message: 'division by zero' });
    assert.deepEqual([zero?.statusCode, zero?.code], [422, 'amount_out_of_range']);
    // the database's own words never reach the client
    assert.ok(!overflow?.message.includes('bigint'));
  });

  test('business errors still map as before; other errors stay unmapped', () => {
    const e = fromDbError({
      code: 'LL400',
      message: 'refund_before_sale',
      hint: '422',
      detail: JSON.stringify({ message: 'occurredAt is before the sale it refunds', details: { invoiceId: 'i' } }),
    });
    assert.deepEqual([e?.statusCode, e?.code, e?.details], [422, 'refund_before_sale', { invoiceId: 'i' }]);
    assert.equal(fromDbError({ code: '40P01', message: 'deadlock detected' }), null);
    assert.equal(fromDbError({ message: 'no code' }), null);
  });
});
