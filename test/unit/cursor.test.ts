import assert from 'node:assert/strict';
import { test } from 'vitest';
import { decodeCursor, encodeCursor, pageOf } from '../../domain/cursor';
import { ApiError } from '../../domain/errors';
import { approvalsQuery, membersListQuery, redemptionsListQuery } from '../../domain/schemas';

const refused = (f: () => unknown) =>
  assert.throws(f, (e) => e instanceof ApiError && e.statusCode === 400 && e.code === 'validation_failed');

test('a cursor gives back the sort key it was made of, for its own list only', () => {
  const key = ['2026-11-22T10:05:00.123456Z', 'inv-9'];
  const c = encodeCursor('redemptions', key);
  assert.equal(c, 'redemptions.1795341900123456.inv-9', 'readable, and nothing to escape in a URL');
  assert.deepEqual(decodeCursor('redemptions', c), key);
  refused(() => decodeCursor('ruleChanges', c));
  refused(() => decodeCursor('approvals', c));
  // every printable character of an id survives, written ~XX where it is not [A-Za-z0-9_-]
  const odd = ['1970-01-01T00:00:00.000001Z', 'a.b~c%d/e"f\\g'];
  const oc = encodeCursor('members', odd);
  assert.match(oc, /^[A-Za-z0-9_.~-]+$/);
  assert.deepEqual(decodeCursor('members', oc), odd);
  assert.deepEqual(decodeCursor('closes', encodeCursor('closes', ['2026-Q1'])), ['2026-Q1']);
});

test("every cursor the list's pattern admits is a position in it; anything else is 400 validation_failed", () => {
  // a cursor made by hand that the pattern admits starts the page after its key
  assert.deepEqual(decodeCursor('adjustments', 'adjustments.0.00000000-0000-4000-8000-000000000000'), [
    '1970-01-01T00:00:00.000000Z',
    '00000000-0000-4000-8000-000000000000',
  ]);
  assert.deepEqual(decodeCursor('closes', 'closes.~7E~21'), ['~!']);
  assert.deepEqual(decodeCursor('members', 'members.9999999999999999.m'), ['2286-11-20T17:46:39.999999Z', 'm']);
  for (const bad of [
    '',
    'a',
    'adjustments',
    'adjustments.',
    'adjustments.1767225600000000',
    'adjustments.1767225600000000.not-a-uuid',
    'adjustments.-1.00000000-0000-4000-8000-000000000000',
    'adjustments.17672256000000000.00000000-0000-4000-8000-000000000000',
    'adjustments.1767225600000000.00000000-0000-4000-8000-000000000000.x',
    'redemptions.1767225600000000.00000000-0000-4000-8000-000000000000',
    'adjustments.1767225600000000.00000000-0000-4000-8000-00000000000\n',
  ])
    refused(() => decodeCursor('adjustments', bad));
  refused(() => decodeCursor('closes', 'closes.a~00b'));
  refused(() => decodeCursor('closes', 'closes.a~7Fb'));
  refused(() => decodeCursor('closes', 'closes.a b'));
  refused(() => decodeCursor('closes', `closes.${'x'.repeat(129)}`));
  assert.deepEqual(decodeCursor('closes', `closes.${'x'.repeat(128)}`), ['x'.repeat(128)]);
});

test("the lists' query schemas carry the same patterns (so /openapi.json does)", () => {
  assert.ok(redemptionsListQuery.safeParse({ cursor: 'redemptions.0.x' }).success);
  assert.ok(!redemptionsListQuery.safeParse({ cursor: 'members.0.x' }).success);
  assert.ok(!approvalsQuery.safeParse({ cursor: 'approvals.0.a.b' }).success);
  assert.ok(approvalsQuery.safeParse({ cursor: 'approvals.0.a.b.c' }).success);
});

test('a page of limit + 1 rows: the first limit, and the cursor of the last of them; fewer: the last page', () => {
  const rows = [1, 2, 3].map((n) => ({ id: `m-${n}` }));
  const page = pageOf(
    'closes',
    rows,
    2,
    (r) => [r.id],
    (r) => r.id,
  );
  assert.deepEqual(page.items, ['m-1', 'm-2']);
  assert.deepEqual(decodeCursor('closes', page.nextCursor!), ['m-2']);
  assert.deepEqual(
    pageOf(
      'closes',
      rows.slice(0, 2),
      2,
      (r) => [r.id],
      (r) => r.id,
    ).nextCursor,
    null,
  );
  assert.deepEqual(
    pageOf(
      'closes',
      [],
      2,
      (r: { id: string }) => [r.id],
      (r) => r.id,
    ),
    { items: [], nextCursor: null },
  );
});

test('the lists validate their filters: a known status and role, limit 1..500; two deadline bounds, or from after to, are not refused', () => {
  assert.ok(membersListQuery.safeParse({ expiringWithin: 'P30D', status: 'active', limit: '500' }).success);
  assert.ok(membersListQuery.safeParse({ expiringWithin: 'P30D', expiresBefore: '2027-01-01T00:00:00Z' }).success);
  assert.ok(!membersListQuery.safeParse({ expiringWithin: 'P0D' }).success);
  assert.ok(!membersListQuery.safeParse({ limit: '501' }).success);
  assert.ok(!membersListQuery.safeParse({ limit: '0' }).success);
  assert.ok(!membersListQuery.safeParse({ status: 'gone' }).success);
  assert.ok(redemptionsListQuery.safeParse({ from: '2026-11-01', to: '2026-11-01' }).success);
  assert.ok(redemptionsListQuery.safeParse({ from: '2026-11-02', to: '2026-11-01' }).success);
  assert.ok(!redemptionsListQuery.safeParse({ from: '2026-02-30' }).success);
  assert.ok(approvalsQuery.safeParse({ role: 'legal', programId: 'acme' }).success);
  assert.ok(!approvalsQuery.safeParse({ role: 'root' }).success);
  assert.ok(!approvalsQuery.safeParse({ programId: 'Not A Program' }).success);
});
