import assert from 'node:assert/strict';
import { test } from 'vitest';
import { decodeCursor, encodeCursor, MAX_CURSOR_LENGTH, pageOf } from '../../domain/cursor';
import { ApiError } from '../../domain/errors';
import { approvalsQuery, membersListQuery, redemptionsListQuery } from '../../domain/schemas';

const refused = (f: () => unknown) =>
  assert.throws(f, (e) => e instanceof ApiError && e.statusCode === 400 && e.code === 'validation_failed');

test('a cursor gives back the sort key it was made of, for its own list only', () => {
  const key = ['2026-11-22T10:05:00.123456Z', 'inv-9'];
  const c = encodeCursor('redemptions', key);
  assert.match(c, /^[A-Za-z0-9_-]+$/, 'base64url: no padding, nothing to escape in a URL');
  assert.deepEqual(decodeCursor('redemptions', c, ['instant', 'text']), key);
  refused(() => decodeCursor('members', c, ['instant', 'text']));
  refused(() => decodeCursor('redemptions', c, ['instant', 'text', 'text']));
});

test('a forged, truncated or malformed cursor is 400 validation_failed before any query', () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const shape = ['instant', 'uuid'] as const;
  for (const bad of [
    '',
    'a',
    '!!!',
    '%20',
    'x'.repeat(MAX_CURSOR_LENGTH + 1),
    Buffer.from('[').toString('base64url'),
    b64({}),
    b64(['adjustments']),
    b64(['adjustments', '2026-01-01T00:00:00.000000Z', 'not-a-uuid']),
    b64(['adjustments', '2026-02-30T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000']),
    b64(['adjustments', '2026-01-01T00:00:00Z', '00000000-0000-4000-8000-000000000000']),
    b64(['adjustments', '0001-01-01T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000']),
    b64(['adjustments', 5, '00000000-0000-4000-8000-000000000000']),
    encodeCursor('adjustments', ['2026-01-01T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000']).slice(0, -3),
  ])
    refused(() => decodeCursor('adjustments', bad, shape));
  refused(() => decodeCursor('closes', b64(['closes', 'a\u0000b']), ['text']));
  refused(() => decodeCursor('closes', b64(['closes', 'x'.repeat(129)]), ['text']));
  refused(() => decodeCursor('n', b64(['n', 1.5]), ['number']));
  assert.deepEqual(decodeCursor('n', b64(['n', 7]), ['number']), [7]);
});

test('a page of limit + 1 rows: the first limit, and the cursor of the last of them; fewer: the last page', () => {
  const rows = [1, 2, 3].map((n) => ({ id: `m-${n}` }));
  const page = pageOf(
    'members',
    rows,
    2,
    (r) => [r.id],
    (r) => r.id,
  );
  assert.deepEqual(page.items, ['m-1', 'm-2']);
  assert.deepEqual(decodeCursor('members', page.nextCursor!, ['text']), ['m-2']);
  assert.deepEqual(
    pageOf(
      'members',
      rows.slice(0, 2),
      2,
      (r) => [r.id],
      (r) => r.id,
    ).nextCursor,
    null,
  );
  assert.deepEqual(
    pageOf(
      'members',
      [],
      2,
      (r: { id: string }) => [r.id],
      (r) => r.id,
    ),
    { items: [], nextCursor: null },
  );
});

test('the lists validate their filters: one deadline window, from not after to, a known role, limit 1..500', () => {
  assert.ok(membersListQuery.safeParse({ expiringWithin: 'P30D', status: 'active', limit: '500' }).success);
  assert.ok(!membersListQuery.safeParse({ expiringWithin: 'P30D', expiresBefore: '2027-01-01T00:00:00Z' }).success);
  assert.ok(!membersListQuery.safeParse({ expiringWithin: 'P0D' }).success);
  assert.ok(!membersListQuery.safeParse({ limit: '501' }).success);
  assert.ok(!membersListQuery.safeParse({ limit: '0' }).success);
  assert.ok(!membersListQuery.safeParse({ status: 'gone' }).success);
  assert.ok(redemptionsListQuery.safeParse({ from: '2026-11-01', to: '2026-11-01' }).success);
  assert.ok(!redemptionsListQuery.safeParse({ from: '2026-11-02', to: '2026-11-01' }).success);
  assert.ok(!redemptionsListQuery.safeParse({ from: '2026-02-30' }).success);
  assert.ok(approvalsQuery.safeParse({ role: 'legal', programId: 'acme' }).success);
  assert.ok(!approvalsQuery.safeParse({ role: 'root' }).success);
  assert.ok(!approvalsQuery.safeParse({ programId: 'Not A Program' }).success);
});
