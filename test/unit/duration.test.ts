import assert from 'node:assert/strict';
import { describe, test } from 'vitest';
import { addDuration, canEndBefore, durationMsFrom, parseDuration } from '../../domain/duration';
import { adverseReasons } from '../../domain/rule-change';
import type { ProgramRules } from '../../domain/program';

const at = (iso: string, d: string) => new Date(addDuration(Date.parse(iso), d)).toISOString();

describe('durations are calendar arithmetic in UTC', () => {
  test('months keep the day of the month, or clamp it to the last day', () => {
    assert.equal(at('2026-01-15T10:00:00.000Z', 'P1M'), '2026-02-15T10:00:00.000Z');
    assert.equal(at('2026-01-31T10:00:00.000Z', 'P1M'), '2026-02-28T10:00:00.000Z');
    assert.equal(at('2024-01-31T10:00:00.000Z', 'P1M'), '2024-02-29T10:00:00.000Z');
    assert.equal(at('2026-03-31T00:00:00.000Z', 'P1M'), '2026-04-30T00:00:00.000Z');
    assert.equal(at('2026-12-31T23:59:59.999Z', 'P2M'), '2027-02-28T23:59:59.999Z');
  });

  test('a year is twelve months: Feb 29 + P1Y is Feb 28', () => {
    assert.equal(at('2024-02-29T12:00:00.000Z', 'P1Y'), '2025-02-28T12:00:00.000Z');
    assert.equal(at('2026-11-22T10:00:00.000Z', 'P1Y'), '2027-11-22T10:00:00.000Z');
    assert.equal(at('2026-11-22T10:00:00.000Z', 'P12M'), '2027-11-22T10:00:00.000Z');
  });

  test('months first, then weeks and days, then the time part (as PostgreSQL adds an interval)', () => {
    // Jan 31 + 1 month = Feb 28, + 1 day = Mar 1 (not Jan 31 + 1 day = Feb 1, + 1 month = Mar 1 either way here)
    assert.equal(at('2026-01-31T00:00:00.000Z', 'P1M1D'), '2026-03-01T00:00:00.000Z');
    assert.equal(at('2026-01-30T00:00:00.000Z', 'P1M1D'), '2026-03-01T00:00:00.000Z');
    assert.equal(at('2026-03-01T00:00:00.000Z', 'P1Y2M3W4DT5H6M7S'), '2027-05-26T05:06:07.000Z');
    assert.equal(at('2026-11-30T23:00:00.000Z', 'P1MT2H'), '2026-12-31T01:00:00.000Z');
  });

  test('days and times are exact lengths', () => {
    assert.equal(durationMsFrom(Date.parse('2026-03-08T00:00:00Z'), 'P1D'), 86_400_000);
    assert.equal(durationMsFrom(0, 'PT36H'), 36 * 3_600_000);
    assert.equal(durationMsFrom(0, 'P1W'), 7 * 86_400_000);
    assert.equal(durationMsFrom(Date.parse('2026-02-01T00:00:00Z'), 'P1M'), 28 * 86_400_000);
    assert.equal(durationMsFrom(Date.parse('2026-03-01T00:00:00Z'), 'P1M'), 31 * 86_400_000);
  });

  test('parse: months, days and time as an interval holds them; not a duration is null, and addDuration refuses it', () => {
    assert.deepEqual(parseDuration('P1Y2M3W4DT5H6M7S'), { months: 14, days: 25, timeMs: 18_367_000 });
    assert.equal(parseDuration('forever'), null);
    assert.throws(() => addDuration(0, 'P1.5D'), RangeError);
  });

  test('canEndBefore: over every start day of the 400-year Gregorian cycle', () => {
    assert.equal(canEndBefore('P30D', 'P1M'), true); // a 31-day month
    assert.equal(canEndBefore('P1M', 'P30D'), true); // February
    assert.equal(canEndBefore('P1M', 'P28D'), false);
    assert.equal(canEndBefore('P1M', 'P1M'), false);
    assert.equal(canEndBefore('P1Y', 'P365D'), false);
    assert.equal(canEndBefore('P365D', 'P1Y'), true); // a leap year
    assert.equal(canEndBefore('P12M', 'P1Y'), false);
    assert.equal(canEndBefore('P4Y', 'P1461D'), true); // across 2100, a century without Feb 29
    assert.equal(canEndBefore('P1461D', 'P4Y'), false); // four calendar years never hold two leap days
    assert.equal(canEndBefore('PT36H', 'P1DT12H'), false);
    assert.equal(canEndBefore('P1DT11H', 'PT36H'), true);
  });
});

describe('adverse rule changes read windows the same way', () => {
  const rules = (window: string): ProgramRules =>
    ({
      pointValueMinor: 1,
      earn: { points: 1, perAmountMinor: 100 },
      expiry: { policy: 'rolling', window },
    }) as unknown as ProgramRules;

  test('P1M to P30D is adverse (shorter after a 31-day month), P1Y to P12M is not', () => {
    assert.deepEqual(adverseReasons(rules('P1M'), rules('P30D')), ['shorter expiry window']);
    assert.deepEqual(adverseReasons(rules('P1Y'), rules('P12M')), []);
    assert.deepEqual(adverseReasons(rules('P365D'), rules('P1Y')), []);
    assert.deepEqual(adverseReasons(rules('P1Y'), rules('P365D')), ['shorter expiry window']);
  });

  test("a jurisdiction's override taken away is adverse when the default window is shorter for it", () => {
    const withJ = (window: string, jurisdictions: Record<string, unknown>) =>
      ({ ...rules(window), expiry: { policy: 'rolling', window, jurisdictions } }) as unknown as ProgramRules;
    assert.deepEqual(adverseReasons(withJ('P2Y', { EU: { policy: 'none' } }), rules('P2Y')), [
      'shorter expiry window in EU',
    ]);
    assert.deepEqual(adverseReasons(withJ('P2Y', { EU: { policy: 'rolling', window: 'P5Y' } }), rules('P2Y')), [
      'shorter expiry window in EU',
    ]);
    assert.deepEqual(adverseReasons(withJ('P2Y', { EU: { policy: 'rolling', window: 'P1Y' } }), rules('P2Y')), []);
    // a new override that is shorter than the default it replaces
    assert.deepEqual(adverseReasons(rules('P2Y'), withJ('P2Y', { US: { policy: 'rolling', window: 'P1Y' } })), [
      'shorter expiry window in US',
    ]);
  });
});
