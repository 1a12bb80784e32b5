import assert from 'node:assert/strict';
import { test } from 'vitest';
import { isValidWindow } from '../../domain/duration';
import { isExactRate } from '../../domain/money';
import {
  CALENDAR_DATE_PATTERN,
  DURATION_PATTERN,
  INSTANT_PATTERN,
  NOT_BLANK_PATTERN,
  PERIOD_PATTERN,
} from '../../domain/patterns';

// The grammars /openapi.json states must mean what the server's code means: each checked here
// against the code it stands for, over every case that code distinguishes.

test('a calendar date: every real day from 1970 to 9999, nothing else', () => {
  let day = Date.UTC(1970, 0, 1);
  const end = Date.UTC(2401, 0, 1); // a 400-year cycle and then some: every leap rule
  for (; day < end; day += 86_400_000) {
    const d = new Date(day).toISOString().slice(0, 10);
    assert.ok(CALENDAR_DATE_PATTERN.test(d), d);
  }
  for (const y of [1970, 1972, 2000, 2100, 2400, 9996, 9999]) {
    const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    assert.equal(CALENDAR_DATE_PATTERN.test(`${y}-02-29`), leap, `${y}-02-29`);
  }
  for (const bad of [
    '1969-12-31',
    '2026-02-30',
    '2026-04-31',
    '2026-13-01',
    '2026-00-10',
    '2026-1-01',
    '２０２６-01-01',
    '2026-01-01\n',
  ])
    assert.ok(!CALENDAR_DATE_PATTERN.test(bad), JSON.stringify(bad));
});

test('an instant: RFC 3339 with an offset, from 1970', () => {
  for (const ok of [
    '2026-11-22T10:05:00Z',
    '2026-11-22T10:05:00.123456789+05:30',
    '1970-01-01T00:00:00-15:59',
    '9999-12-31T23:59:59Z',
  ])
    assert.ok(INSTANT_PATTERN.test(ok), ok);
  for (const bad of [
    '2026-11-22T10:05Z',
    '2026-11-22T10:05:00',
    '2026-11-22 10:05:00Z',
    '2026-11-22T24:00:00Z',
    '1969-12-31T23:59:59Z',
    '2026-11-22T10:05:00.1234567890Z',
    '2026-02-29T00:00:00Z',
    '2026-11-22T10:05:00+16:00',
    '2026-11-22T10:05:00-23:59',
  ])
    assert.ok(!INSTANT_PATTERN.test(bad), bad);
});

test('a duration the pattern admits is a valid window (1 s to 100 years); the common ones are admitted', () => {
  for (const ok of [
    'P365D',
    'PT10S',
    'P1Y2M',
    'PT1S',
    'P100Y',
    'P1W',
    'P1DT12H',
    'PT1H30M',
    'P1Y2M3W4DT5H6M7S',
    'P999M',
    'P9999D',
    'PT99999999S',
    'P89Y99M99W99DT99H99M99S',
  ])
    assert.ok(DURATION_PATTERN.test(ok) && isValidWindow(ok), ok);
  for (const bad of ['P', 'PT', 'P0D', 'PT0S', 'P1Y0M', 'P101Y', 'P90Y1D', 'P1.5D', 'P1DT', 'PT1D', 'P1D1Y', 'p1d'])
    assert.ok(!DURATION_PATTERN.test(bad), bad);
  // the largest of every shape: within 100 years
  for (const edge of [
    'P100Y',
    'P999M',
    'P999W',
    'P9999D',
    'PT99999H',
    'PT999999M',
    'PT99999999S',
    'P89Y99M99W99DT99H99M99S',
  ])
    assert.ok(isValidWindow(edge), edge);
});

test('a period: a quarter of 2000..2999; not blank: what trim().min(1) keeps', () => {
  assert.ok(PERIOD_PATTERN.test('2026-Q3') && PERIOD_PATTERN.test('2999-Q4') && PERIOD_PATTERN.test('2000-Q1'));
  for (const bad of ['1999-Q4', '3000-Q1', '2026-Q5', '2026-q1']) assert.ok(!PERIOD_PATTERN.test(bad), bad);
  for (const s of ['x', ' x ', '\u00a0x', 'a\u0001'])
    assert.equal(NOT_BLANK_PATTERN.test(s), s.trim().length > 0, JSON.stringify(s));
  for (const s of ['', ' ', '\t\n', '\u00a0\u2003\ufeff', 'a\u0000b'])
    assert.ok(!NOT_BLANK_PATTERN.test(s), JSON.stringify(s));
});

test('a rate is exact in millionths: a positive one too small to be one (5e-324) is not 0', () => {
  for (const ok of [0, 1, 0.3, 0.000001, 0.123456, 0.999999]) assert.ok(isExactRate(ok), String(ok));
  for (const bad of [5e-324, 1e-7, 0.0000015, 0.1234567, 1.000001, -0.000001])
    assert.ok(!isExactRate(bad), String(bad));
});
