import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import type { Role } from '../../db/keys';
import {
  eventually,
  httpClient,
  principalKey,
  programBody,
  ruleChangeRules,
  startCloseStack,
  uniqueId,
  type CloseStack,
} from '../helpers/stack';

// The lists and the approval inbox (issue 15, item 3; docs/api.md) through the real API, on a real
// worker and the simulators: keyset pages that walk every row once, the filters, and an inbox that
// shows each person what awaits a role they hold, never their own requests, never another program's.
let stack: CloseStack;
let pool: Pool;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  stack = await startCloseStack(15);
  ({ pool, call } = stack);
});
afterAll(async () => {
  await stack.stop();
});

const daysFromNow = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();

async function program(overrides: Record<string, unknown> = {}) {
  const p = uniqueId('ls');
  const res = await call('POST', '/v1/programs', { body: programBody(p, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return p;
}
async function accrue(p: string, memberId: string, amountMinor: number, occurredAt: string) {
  const res = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId: `inv-${memberId}-${occurredAt}`, amountMinor, occurredAt },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}
type Who = { role?: Role; key?: string };

/** Every page of a list, following nextCursor; asserts each page holds at most `limit` items. */
async function walk(path: string, who: Who, limit: number) {
  const pages: unknown[][] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const url: string = `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
    const res: Awaited<ReturnType<typeof call>> = await call('GET', url, who);
    assert.equal(res.status, 200, `${url}: ${JSON.stringify(res.body)}`);
    assert.ok(res.body.items.length <= limit);
    pages.push(res.body.items);
    cursor = res.body.nextCursor;
    assert.ok(pages.length < 100, 'the walk ends');
  } while (cursor);
  return pages;
}
const inbox = async (who: Who, query = '') => {
  const res = await call('GET', `/v1/approvals${query}`, who);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return res.body.items as any[];
};
const ids = (items: Array<{ kind: string; programId: string; id: string }>, programId: string) =>
  items.filter((i) => i.programId === programId).map((i) => `${i.kind}:${i.id}`);

test('members: 130, 10 of them merged; status=active with limit 50 walks the other 120 once each, in id order', async () => {
  const p = await program();
  const all = Array.from({ length: 130 }, (_, i) => `m-${String(i).padStart(3, '0')}`);
  for (let i = 0; i < all.length; i += 10)
    await Promise.all(all.slice(i, i + 10).map((m) => accrue(p, m, 1_000, '2026-09-01T10:00:00Z')));
  const merged = all.slice(120);
  for (const m of merged) {
    const res = await call('POST', `/v1/programs/${p}/members/${m}/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-000' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }

  const pages = await walk(`/v1/programs/${p}/members?status=active`, { role: 'finance' }, 50);
  assert.deepEqual(
    pages.map((page) => page.length),
    [50, 50, 20],
  );
  const seen = pages.flat() as Array<{ memberId: string; status: string; balance: number }>;
  assert.deepEqual(
    seen.map((m) => m.memberId),
    all.slice(0, 120),
    'every active member once, in order',
  );
  assert.ok(seen.every((m) => m.status === 'active'));
  assert.equal(seen[0]!.balance, 10 + 10 * 10, 'the survivor holds the merged points');
  const { rows } = await pool.query(
    `select count(*)::int as n from members where program_id = $1 and status = 'active'`,
    [p],
  );
  assert.equal(rows[0].n, 120);

  const mergedPages = await walk(`/v1/programs/${p}/members?status=merged`, { role: 'support' }, 3);
  assert.deepEqual(
    mergedPages.flat().map((m) => (m as { memberId: string }).memberId),
    merged,
  );
  assert.equal((await walk(`/v1/programs/${p}/members`, { role: 'controller' }, 500)).flat().length, 130);

  // who may read it, and what is refused without a write
  assert.equal((await call('GET', `/v1/programs/${p}/members`, { role: 'billing' })).status, 403);
  for (const bad of ['limit=0', 'limit=501', 'status=gone', 'cursor=abc', 'cursor=redemptions.0.m-1'])
    assert.deepEqual(
      [(await call('GET', `/v1/programs/${p}/members?${bad}`, { role: 'finance' })).body.error?.code],
      ['validation_failed'],
      bad,
    );
  // a cursor is a position in either order (domain/cursor.ts): the id order's, in the deadline
  // window's, starts after its time, 1970, so at the first member with a deadline in the window
  const first = await call('GET', `/v1/programs/${p}/members?limit=1`, { role: 'finance' });
  const windowed = await call('GET', `/v1/programs/${p}/members?expiringWithin=P1000D`, { role: 'finance' });
  const other = await call('GET', `/v1/programs/${p}/members?expiringWithin=P1000D&cursor=${first.body.nextCursor}`, {
    role: 'finance',
  });
  assert.equal(other.status, 200, JSON.stringify(other.body));
  assert.deepEqual(other.body.items, windowed.body.items);
  assert.equal((await call('GET', `/v1/programs/${uniqueId('nope')}/members`, { role: 'finance' })).status, 404);
});

test('members by deadline window: expiring in the next 30 days, soonest first; expiresBefore', async () => {
  const p = await program({ expiry: { policy: 'rolling', window: 'P365D' } });
  // deadline = last purchase + 365 days
  await accrue(p, 'in-25', 10_000, daysFromNow(25 - 365));
  await accrue(p, 'in-5', 10_000, daysFromNow(5 - 365));
  await accrue(p, 'out-65', 10_000, daysFromNow(65 - 365));
  await accrue(p, 'out-200', 10_000, daysFromNow(200 - 365));
  const within = await walk(`/v1/programs/${p}/members?expiringWithin=P30D`, { role: 'support' }, 1);
  assert.deepEqual(
    within.flat().map((m) => (m as { memberId: string }).memberId),
    ['in-5', 'in-25'],
  );
  const before = await call('GET', `/v1/programs/${p}/members?expiresBefore=${daysFromNow(70)}`, { role: 'support' });
  assert.deepEqual(
    before.body.items.map((m: { memberId: string }) => m.memberId),
    ['in-5', 'in-25', 'out-65'],
  );
  assert.equal(before.body.nextCursor, null);
  // both bounds: the earlier one
  const both = await call('GET', `/v1/programs/${p}/members?expiringWithin=P30D&expiresBefore=${daysFromNow(10)}`, {
    role: 'support',
  });
  assert.deepEqual(
    both.body.items.map((m: { memberId: string }) => m.memberId),
    ['in-5'],
  );
});

test('redemptions by business date and status, across pages', async () => {
  const p = await program();
  await accrue(p, 'r-1', 500_000, '2026-09-01T10:00:00Z');
  const days = ['2026-10-01T10:00:00Z', '2026-10-15T00:00:00Z', '2026-10-31T23:59:59Z', '2026-11-01T00:00:00Z'];
  const billing = billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 1000 });
  for (const [i, occurredAt] of days.entries()) {
    // the invoice in billing first (its ids are billing's, across programs)
    const invoiceId = `${p}-red-${i}`;
    await billing.createInvoice(
      { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 10_000 }] },
      `inv-${invoiceId}`,
    );
    const res = await call('POST', `/v1/programs/${p}/redemptions`, {
      role: 'billing',
      body: { invoiceId, memberId: 'r-1', points: 100, invoiceTotalMinor: 10_000, occurredAt },
    });
    assert.deepEqual([res.status, res.body.status], [201, 'applied'], JSON.stringify(res.body));
  }
  const october = await walk(`/v1/programs/${p}/redemptions?from=2026-10-15&to=2026-10-31`, { role: 'billing' }, 1);
  assert.deepEqual(
    october.flat().map((r) => (r as { invoiceId: string }).invoiceId),
    [`${p}-red-1`, `${p}-red-2`],
    'both ends of the range are whole UTC days',
  );
  const applied = await walk(`/v1/programs/${p}/redemptions?status=applied`, { role: 'finance' }, 3);
  assert.deepEqual(
    applied.flat().map((r) => (r as { invoiceId: string; occurredAt: string }).occurredAt),
    ['2026-10-01T10:00:00.000Z', '2026-10-15T00:00:00.000Z', '2026-10-31T23:59:59.000Z', '2026-11-01T00:00:00.000Z'],
  );
  assert.equal((await walk(`/v1/programs/${p}/redemptions?status=reversed`, { role: 'support' }, 10)).flat().length, 0);
  // from after to: an empty range, not a refusal (a rule between two query fields is not one the spec can state)
  const empty = await call('GET', `/v1/programs/${p}/redemptions?from=2026-11-02&to=2026-11-01`, { role: 'billing' });
  assert.deepEqual([empty.status, empty.body], [200, { items: [], nextCursor: null }]);
});

test('the inbox: a controller sees the close another person proposed, never their own; finance the adjustment and merge above the threshold requested by someone else', async () => {
  const threshold = { adjustments: { approvalThresholdPoints: 100 } };
  const byFinance = await program(threshold);
  const byDual = await program(threshold);
  // one person who may start a close and approve one, request an adjustment and approve one
  const dual = await principalKey(pool, ['finance', 'controller', 'support']);
  for (const p of [byFinance, byDual]) {
    await accrue(p, 'a-1', 50_000, '2026-08-01T10:00:00Z');
    await accrue(p, 'a-2', 50_000, '2026-08-01T10:00:00Z');
  }
  assert.equal(
    (await call('POST', `/v1/programs/${byFinance}/closes`, { role: 'finance', body: { period: '2026-Q3' } })).status,
    202,
  );
  assert.equal(
    (await call('POST', `/v1/programs/${byDual}/closes`, { key: dual.key, body: { period: '2026-Q3' } })).status,
    202,
  );
  for (const p of [byFinance, byDual])
    await eventually(
      `${p} proposed`,
      async () =>
        (await call('GET', `/v1/programs/${p}/closes/2026-Q3`, { role: 'controller' })).body.step ===
        'awaiting_approval',
      30_000,
    );
  // adjustments above the threshold: one by support, one by the dual person; a merge by support
  const adjust = async (p: string, who: Who) => {
    const res = await call('POST', `/v1/programs/${p}/adjustments`, {
      ...who,
      body: { memberId: 'a-1', points: 300, reasonCode: 'goodwill' },
    });
    assert.deepEqual([res.status, res.body.status], [202, 'pending_approval'], JSON.stringify(res.body));
    return res.body.adjustmentId as string;
  };
  const bySupport = await adjust(byFinance, { role: 'support' });
  const byDualAdjustment = await adjust(byDual, { key: dual.key });
  const merge = await call('POST', `/v1/programs/${byFinance}/members/a-2/merge`, {
    role: 'support',
    body: { intoMemberId: 'a-1' },
  });
  assert.equal(merge.status, 202, JSON.stringify(merge.body));

  const controller = await inbox({ role: 'controller' });
  assert.deepEqual(ids(controller, byFinance), ['close:2026-Q3']);
  assert.deepEqual(ids(controller, byDual), ['close:2026-Q3']);
  const close = controller.find((i) => i.programId === byFinance)!;
  assert.deepEqual(
    [close.awaitingRole, close.requestedBy, close.status, typeof close.totalCatchUpMinor, close.links],
    [
      'controller',
      'test-finance',
      'proposed',
      'number',
      {
        self: `/v1/programs/${byFinance}/closes/2026-Q3`,
        decide: `/v1/programs/${byFinance}/closes/2026-Q3/approve`,
      },
    ],
  );

  const finance = await inbox({ role: 'finance' });
  assert.deepEqual(
    ids(finance, byFinance).sort(),
    [`adjustment:${bySupport}`, `merge:${merge.body.adjustmentId}`].sort(),
  );
  assert.deepEqual(ids(finance, byDual), [`adjustment:${byDualAdjustment}`]);
  const item = finance.find((i) => i.id === bySupport)!;
  assert.deepEqual(
    [item.awaitingRole, item.requestedBy, item.points, item.memberId, item.links.decide],
    ['finance', 'test-support', 300, 'a-1', `/v1/programs/${byFinance}/adjustments/${bySupport}/approvals`],
  );

  // the dual person: the other program's close and adjustments, never their own requests
  const mine = await inbox({ key: dual.key });
  assert.deepEqual(ids(mine, byDual), [], 'their own close and adjustment are not theirs to decide');
  assert.deepEqual(
    ids(mine, byFinance).sort(),
    ['close:2026-Q3', `adjustment:${bySupport}`, `merge:${merge.body.adjustmentId}`].sort(),
  );
  assert.deepEqual(ids(await inbox({ key: dual.key }, '?role=controller'), byFinance), ['close:2026-Q3']);
  assert.deepEqual(ids(await inbox({ key: dual.key }, `?role=finance&programId=${byFinance}`), byFinance).length, 2);

  // decided, it leaves the inbox
  const approved = await call('POST', `/v1/programs/${byFinance}/adjustments/${bySupport}/approvals`, {
    role: 'finance',
    body: { decision: 'approve' },
  });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  await eventually('the approved adjustment out of the inbox', async () => {
    const left = ids(await inbox({ role: 'finance' }, `?programId=${byFinance}`), byFinance);
    return left.length === 1 && left[0] === `merge:${merge.body.adjustmentId}`;
  });

  // the lists by status agree
  const pending = await call('GET', `/v1/programs/${byFinance}/adjustments?status=pending_approval`, {
    role: 'support',
  });
  assert.deepEqual(
    pending.body.items.map((a: { kind: string }) => a.kind),
    ['merge'],
  );
  const closes = await call('GET', `/v1/programs/${byFinance}/closes?status=proposed`, { role: 'finance' });
  assert.deepEqual(
    closes.body.items.map((c: { period: string; startedBy: string }) => [c.period, c.startedBy]),
    [['2026-Q3', 'test-finance']],
  );

  // nobody decides in a role they do not hold; a service or admin-only key decides nothing
  const notHeld = await call('GET', '/v1/approvals?role=controller', { role: 'finance' });
  assert.deepEqual([notHeld.status, notHeld.body.error?.code], [403, 'forbidden']);
  assert.deepEqual(await inbox({ role: 'admin' }), []);
  assert.deepEqual(await inbox({ role: 'billing' }), []);
  const service = await principalKey(pool, ['finance', 'controller'], { kind: 'service' });
  assert.deepEqual(await inbox({ key: service.key }), []);
});

test('the inbox for rule changes: legal sees a change awaiting legal; finance does not once finance approved; nor does a person who approved under another role', async () => {
  const p = await program({ ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT1S' } });
  await accrue(p, 'rc-1', 10_000, daysFromNow(-10));
  const rules = ruleChangeRules({
    ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT1S' },
    expectedRedemptionRate: 0.75,
  });
  const propose = async (changeId: string) => {
    const res = await call('POST', `/v1/programs/${p}/rule-changes`, {
      role: 'program_owner',
      body: { changeId, effectiveAt: daysFromNow(30), rules, comment: 'lists' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await eventually(
      `${changeId} awaiting approvals`,
      async () =>
        (await call('GET', `/v1/programs/${p}/rule-changes/${changeId}`, { role: 'legal' })).body.status ===
        'awaiting_approvals',
    );
  };
  await propose('by-finance');
  await propose('by-dual');
  const dual = await principalKey(pool, ['finance', 'legal']);
  const forRole = async (who: Who) =>
    Object.fromEntries(
      (await inbox(who, `?programId=${p}`)).map((i) => [i.id, [i.awaitingRole, i.openRoles.join(',')]]),
    );
  assert.deepEqual(await forRole({ role: 'finance' }), {
    'by-finance': ['finance', 'finance,legal'],
    'by-dual': ['finance', 'finance,legal'],
  });
  assert.deepEqual(await forRole({ role: 'legal' }), {
    'by-finance': ['legal', 'finance,legal'],
    'by-dual': ['legal', 'finance,legal'],
  });

  const approve = async (changeId: string, who: Who) => {
    const res = await call('POST', `/v1/programs/${p}/rule-changes/${changeId}/approvals`, {
      ...who,
      body: { decision: 'approve' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };
  await approve('by-finance', { role: 'finance' });
  // the dual person's approval fills finance (the first open role they hold)
  await approve('by-dual', { key: dual.key });

  assert.deepEqual(await forRole({ role: 'finance' }), {}, 'finance is filled on both');
  assert.deepEqual(await forRole({ role: 'legal' }), {
    'by-finance': ['legal', 'legal'],
    'by-dual': ['legal', 'legal'],
  });
  assert.deepEqual(
    await forRole({ key: dual.key }),
    { 'by-finance': ['legal', 'legal'] },
    'one role per person: not the change they approved as finance',
  );
  assert.deepEqual(await forRole({ role: 'program_owner' }), {}, 'the proposer never');

  const awaiting = await call('GET', `/v1/programs/${p}/rule-changes?status=awaiting_approvals&limit=1`, {
    role: 'program_owner',
  });
  assert.deepEqual(
    [awaiting.body.items.map((c: { changeId: string }) => c.changeId), typeof awaiting.body.nextCursor],
    [['by-finance'], 'string'],
  );
  const next = await call(
    'GET',
    `/v1/programs/${p}/rule-changes?status=awaiting_approvals&limit=1&cursor=${awaiting.body.nextCursor}`,
    { role: 'program_owner' },
  );
  assert.deepEqual(
    [next.body.items.map((c: { changeId: string }) => c.changeId), next.body.nextCursor],
    [['by-dual'], null],
  );
});

test("a key scoped to program A sees none of program B's items, and may not ask for B", async () => {
  const threshold = { adjustments: { approvalThresholdPoints: 100 } };
  const a = await program(threshold);
  const b = await program(threshold);
  const requested: Record<string, string> = {};
  for (const p of [a, b]) {
    await accrue(p, 's-1', 50_000, '2026-08-01T10:00:00Z');
    const res = await call('POST', `/v1/programs/${p}/adjustments`, {
      role: 'support',
      body: { memberId: 's-1', points: 200, reasonCode: 'goodwill' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    requested[p] = res.body.adjustmentId;
  }
  const scoped = await principalKey(pool, ['finance'], { programs: [a] });
  const items = await inbox({ key: scoped.key });
  assert.deepEqual(
    [...new Set(items.map((i) => i.programId))],
    [a],
    "only program A's items, of all the programs in this database",
  );
  assert.deepEqual(ids(items, a), [`adjustment:${requested[a]}`]);
  const askB = await call('GET', `/v1/approvals?programId=${b}`, { key: scoped.key });
  assert.deepEqual([askB.status, askB.body.error?.code], [403, 'program_not_allowed']);
  const listB = await call('GET', `/v1/programs/${b}/adjustments`, { key: scoped.key });
  assert.deepEqual([listB.status, listB.body.error?.code], [403, 'program_not_allowed']);

  // an unscoped finance key sees both; its inbox, one item a page, walks every item once
  const everyone = await walk('/v1/approvals?role=finance', { role: 'finance' }, 1);
  const keys = everyone.flat().map((i) => {
    const x = i as { kind: string; programId: string; id: string };
    return `${x.programId}/${x.kind}:${x.id}`;
  });
  assert.equal(new Set(keys).size, keys.length, 'no item twice');
  assert.ok(keys.includes(`${a}/adjustment:${requested[a]}`) && keys.includes(`${b}/adjustment:${requested[b]}`));
  assert.deepEqual(
    keys,
    (await inbox({ role: 'finance' }, '?role=finance&limit=500')).map((x) => `${x.programId}/${x.kind}:${x.id}`),
  );
});

test('programs: every program by id for an unscoped key, walked once across pages; a scoped key sees only its own', async () => {
  const a = await program();
  const b = await program({ currency: 'JPY' });
  const all = (await walk('/v1/programs', { role: 'support' }, 2)).flat() as Array<Record<string, unknown>>;
  const ids = all.map((p) => p.programId as string);
  assert.deepEqual(ids, [...ids].sort());
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ids.includes(a) && ids.includes(b));
  assert.deepEqual(
    all.find((p) => p.programId === b),
    {
      programId: b,
      name: `Program ${b}`,
      currency: 'JPY',
      currencyDigits: 0,
      activeRuleVersion: 1,
      createdAt: all.find((p) => p.programId === b)!.createdAt,
    },
  );
  const scoped = await principalKey(pool, ['finance'], { programs: [a] });
  const seen = await call('GET', '/v1/programs', { key: scoped.key });
  assert.deepEqual(
    seen.body.items.map((p: { programId: string }) => p.programId),
    [a],
  );
  assert.equal(seen.body.nextCursor, null);
  const bad = await call('GET', '/v1/programs?cursor=closes.x', { role: 'support' });
  assert.equal(bad.status, 400);
});
