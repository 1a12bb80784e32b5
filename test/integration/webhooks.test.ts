import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, test } from 'vitest';
import { billingClient } from '../../activities/services/billing';
import { countPendingDeliveries, emitExpiringSoon } from '../../db/webhooks';
import { WEBHOOK_EVENT_TYPES } from '../../domain/webhooks';
import { WebhookReceiver } from '../../simulators/webhook-receiver';
import { WebhookRelay } from '../../workers/webhook-relay';
import {
  eventually,
  httpClient,
  programBody,
  ruleChangeRules,
  silentLog,
  startApi,
  startSagaStack,
  startWorkerProcess,
  uniqueId,
  type SagaStack,
} from '../helpers/stack';

// Webhooks (issue 15, item 4; docs/api.md, "Webhooks") through the real API on the saga's whole
// stack, delivered by the real relay over HTTP to a real receiver that fails, hangs and restarts.
// The relay's clock is injectable: the 24 h horizon passes by moving it, not by waiting.
process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE = '1'; // the receiver is on 127.0.0.1 (read by the API's routes)

let stack: SagaStack;
let call: SagaStack['call'];
let receiver: WebhookReceiver;
let relay: WebhookRelay;
let offsetMs = 0;
const clock = () => new Date(Date.now() + offsetMs);
const newRelay = () =>
  new WebhookRelay({
    pool: stack.pool,
    log: silentLog,
    clock,
    timeoutMs: 400, // the default is 10 s; a hanging receiver costs this test 400 ms an attempt
    allowPrivate: true,
    batchSize: 50,
    concurrency: 8,
    idleMs: 20,
    expiringSoonEveryMs: 0,
    firstRetryMs: 50,
    maxRetryMs: 400,
  });

beforeAll(async () => {
  stack = await startSagaStack(415);
  call = stack.call;
  receiver = new WebhookReceiver();
  await receiver.start();
  relay = newRelay();
  relay.start();
});
afterAll(async () => {
  await relay?.stop();
  await receiver?.close();
  await stack?.stop();
});

/** The signature check exactly as docs/api.md's snippet writes it. */
function verifyLoyaltySignature(rawBody: string, header: string, secret: string, toleranceSeconds = 300): boolean {
  const parts = header.split(',').map((p) => p.split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return parts.some(
    ([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '') && timingSafeEqual(Buffer.from(v!, 'hex'), expected),
  );
}

async function program(overrides: Record<string, unknown> = {}) {
  const p = uniqueId('wh');
  const res = await call('POST', '/v1/programs', { body: programBody(p, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return p;
}
async function webhook(p: string, events: readonly string[] = WEBHOOK_EVENT_TYPES, url = receiver.url) {
  const res = await call('POST', `/v1/programs/${p}/webhooks`, { body: { url, events, description: 'test' } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as { webhookId: string; secret: string };
}
async function accrue(p: string, memberId: string, invoiceId: string, amountMinor = 10_000) {
  const res = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt: new Date(Date.now() - 60_000).toISOString() },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}
const tableCounts = async () =>
  (
    await stack.pool.query(
      `select (select count(*) from webhooks)::int as w, (select count(*) from webhook_events)::int as e,
              (select count(*) from webhook_deliveries)::int as d, (select count(*) from idempotency_keys)::int as k`,
    )
  ).rows[0];
const deliveriesOf = async (webhookId: string) => {
  const res = await call(
    'GET',
    `/v1/programs/${await programOf(webhookId)}/webhooks/${webhookId}/deliveries?limit=100`,
    {
      role: 'support',
    },
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return res.body.items as any[];
};
const programOf = async (webhookId: string) =>
  (await stack.pool.query('select program_id from webhooks where webhook_id = $1', [webhookId])).rows[0].program_id;
/** The program's events in the order its deliveries were queued. */
const eventsOf = async (p: string) =>
  (
    await stack.pool.query(
      `select e.event_id, e.type, e.member_id, e.data from webhook_events e
         join webhook_deliveries d on d.event_id = e.event_id where e.program_id = $1 order by d.delivery_id`,
      [p],
    )
  ).rows as Array<{ event_id: string; type: string; member_id: string | null; data: Record<string, unknown> }>;

test('create answers the secret once; the list and a replay never show it; roles', async () => {
  const p = await program();
  const idem = uniqueId('idem');
  const created = await call('POST', `/v1/programs/${p}/webhooks`, {
    idem,
    body: { url: receiver.url, events: ['points.earned'] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.match(created.body.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  const replay = await call('POST', `/v1/programs/${p}/webhooks`, {
    idem,
    body: { url: receiver.url, events: ['points.earned'] },
  });
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  assert.equal(replay.body.webhookId, created.body.webhookId);
  assert.equal(replay.body.secret, null);
  for (const role of ['admin', 'finance', 'support'] as const) {
    const list = await call('GET', `/v1/programs/${p}/webhooks`, { role });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.items.map((w: { webhookId: string }) => w.webhookId),
      [created.body.webhookId],
    );
    assert.ok(!JSON.stringify(list.body).includes(created.body.secret), 'no secret in the list');
    assert.ok(!('secret' in list.body.items[0]));
  }
  const deliveries = await call('GET', `/v1/programs/${p}/webhooks/${created.body.webhookId}/deliveries`, {
    role: 'finance',
  });
  assert.ok(!JSON.stringify(deliveries.body).includes(created.body.secret));
  for (const role of ['billing', 'finance', 'support', 'controller'] as const) {
    const res = await call('POST', `/v1/programs/${p}/webhooks`, {
      role,
      body: { url: receiver.url, events: ['points.earned'] },
    });
    assert.equal(res.status, 403, role);
  }
  assert.equal((await call('GET', `/v1/programs/${p}/webhooks`, { role: 'billing' })).status, 403);
  const del = await call('DELETE', `/v1/programs/${p}/webhooks/${created.body.webhookId}`, { role: 'support' });
  assert.equal(del.status, 403);
});

test('bad input answers 400 validation_failed, a private target 422, and writes nothing; an unknown webhook 404', async () => {
  const p = await program();
  const before = await tableCounts();
  const bad: unknown[] = [
    { url: 'ftp://example.com/hook', events: ['points.earned'] },
    { url: 'https://user:pw@example.com/hook', events: ['points.earned'] },
    { url: 'not a url', events: ['points.earned'] },
    { url: `https://example.com/${'x'.repeat(2100)}`, events: ['points.earned'] },
    { url: 'https://example.com/hook', events: [] },
    { url: 'https://example.com/hook', events: ['points.nope'] },
    { url: 'https://example.com/hook', events: ['points.earned', 'points.earned'] },
    { url: 'https://example.com/hook', events: ['points.earned'], secret: 'mine' },
    { url: 'https://example.com/hook', events: ['points.earned'], description: 'x'.repeat(501) },
    { events: ['points.earned'] },
  ];
  for (const body of bad) {
    const res = await call('POST', `/v1/programs/${p}/webhooks`, { body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.error.code, 'validation_failed');
  }
  // the default is safe: without LOYALTY_WEBHOOK_ALLOW_PRIVATE, loopback, private and link-local targets are refused
  process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE = '0';
  const strict = await startApi(stack.pool);
  process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE = '1';
  try {
    const strictCall = httpClient(strict);
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://localhost/hook',
      'http://10.1.2.3/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://192.168.0.10/hook',
    ]) {
      // valid by the schema, refused by the deployment's policy: 422
      const res = await strictCall('POST', `/v1/programs/${p}/webhooks`, { body: { url, events: ['points.earned'] } });
      assert.equal(res.status, 422, url);
      assert.equal(res.body.error.code, 'webhook_url_not_allowed');
    }
    // an IPv6 literal is not in the URL's grammar (domain/webhooks.ts WEBHOOK_URL_PATTERN): 400
    const v6 = await strictCall('POST', `/v1/programs/${p}/webhooks`, {
      body: { url: 'http://[::1]/hook', events: ['points.earned'] },
    });
    assert.deepEqual([v6.status, v6.body.error.code], [400, 'validation_failed']);
  } finally {
    await strict.close();
  }
  assert.deepEqual(await tableCounts(), before, 'nothing written');
  const unknown = '00000000-0000-4000-8000-000000000000';
  assert.equal((await call('DELETE', `/v1/programs/${p}/webhooks/${unknown}`)).status, 404);
  assert.equal((await call('POST', `/v1/programs/${p}/webhooks/${unknown}/rotate-secret`)).status, 404);
  assert.equal((await call('GET', `/v1/programs/${p}/webhooks/${unknown}/deliveries`)).status, 404);
  assert.equal((await call('POST', `/v1/programs/${p}/webhooks/${unknown}/deliveries/1/redeliver`)).status, 404);
  assert.equal((await call('DELETE', `/v1/programs/${p}/webhooks/not-a-uuid`)).status, 400);
  assert.equal(
    (await call('POST', `/v1/programs/nope-${p}/webhooks`, { body: { url: receiver.url, events: ['points.earned'] } }))
      .status,
    404,
  );
  // another program's webhook is unknown here
  const other = await program();
  const w = await webhook(other, ['points.earned']);
  assert.equal((await call('GET', `/v1/programs/${p}/webhooks/${w.webhookId}/deliveries`)).status, 404);
  assert.equal((await call('DELETE', `/v1/programs/${p}/webhooks/${w.webhookId}`)).status, 404);
  assert.equal((await call('DELETE', `/v1/programs/${other}/webhooks/${w.webhookId}`)).status, 200);
  // deleted, it is gone: DELETE again, its deliveries, a rotation, a redelivery are 404
  for (const [method, path] of [
    ['DELETE', ''],
    ['GET', '/deliveries'],
    ['POST', '/rotate-secret'],
    ['POST', '/deliveries/1/redeliver'],
  ] as const)
    assert.equal(
      (await call(method, `/v1/programs/${other}/webhooks/${w.webhookId}${path}`)).status,
      404,
      `${method} ${path} of a deleted webhook`,
    );
  assert.deepEqual((await call('GET', `/v1/programs/${other}/webhooks`)).body.items, []);
});

test('every event arrives through 500s, timeouts and a restart: signed, one id per change, in order per member', async () => {
  const p = await program();
  const w = await webhook(p);
  // faults by request number: the first 6 fail, the next 3 hang past the timeout, then every 5th
  // fails and every 7th hangs; the receiver is also closed and reopened in the middle
  receiver.decide = ({ n, body }) => {
    if (!body.includes(p)) return 'ok';
    if (n < 6) return 'fail';
    if (n < 9) return 'hang';
    return n % 5 === 0 ? 'fail' : n % 7 === 0 ? 'hang' : 'ok';
  };
  const members = ['m-1', 'm-2', 'm-3', 'm-4'];
  let invoice = 0;
  const round = () => Promise.all(members.map((m) => accrue(p, m, `inv-${m}-${++invoice}`, 1_000 + invoice)));
  for (let i = 0; i < 4; i++) await round();
  await receiver.close(); // the receiver goes away: connection refused
  for (let i = 0; i < 3; i++) await round();
  await new Promise((r) => setTimeout(r, 300));
  await receiver.start(); // back on the same port
  for (let i = 0; i < 3; i++) await round();
  const refund = await call('POST', `/v1/programs/${p}/refunds`, {
    role: 'billing',
    body: {
      memberId: 'm-2',
      invoiceId: 'inv-m-2-2',
      refundId: 'r-1',
      amountMinor: 500,
      occurredAt: new Date().toISOString(),
    },
  });
  assert.equal(refund.status, 201, JSON.stringify(refund.body));
  const adjust = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-3', points: 50, reasonCode: 'goodwill' },
  });
  assert.equal(adjust.status, 201, JSON.stringify(adjust.body));
  const merge = await call('POST', `/v1/programs/${p}/members/m-4/merge`, {
    role: 'support',
    body: { intoMemberId: 'm-1' },
  });
  assert.equal(merge.status, 201, JSON.stringify(merge.body));
  await billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 2000 }).createInvoice(
    { invoiceId: 'inv-r-1', customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
    uniqueId('inv'),
  );
  const redemption = await call('POST', `/v1/programs/${p}/redemptions`, {
    role: 'billing',
    body: {
      invoiceId: 'inv-r-1',
      memberId: 'm-1',
      points: 150,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
    },
  });
  assert.equal(redemption.status, 201, JSON.stringify(redemption.body));
  assert.equal(redemption.body.status, 'applied', JSON.stringify(redemption.body));

  await eventually(
    'every delivery delivered',
    async () => (await deliveriesOf(w.webhookId)).every((d) => d.status === 'delivered'),
    120_000,
  );
  const events = await eventsOf(p);
  const count = (type: string) => events.filter((e) => e.type === type).length;
  assert.equal(count('points.earned'), 40);
  assert.equal(count('points.revoked'), 1);
  assert.equal(count('adjustment.applied'), 1);
  assert.equal(count('member.merged'), 1);
  assert.equal(count('redemption.applied'), 1);

  const mine = receiver.received.filter((r) => r.body.includes(`"programId":"${p}"`));
  const answers = new Set(mine.map((r) => r.answer));
  assert.ok(answers.has('fail') && answers.has('hang') && answers.has('ok'), `faults seen: ${[...answers]}`);
  for (const r of mine) {
    assert.ok(verifyLoyaltySignature(r.body, r.signature, w.secret), 'the signature verifies');
    assert.ok(!verifyLoyaltySignature(r.body, r.signature, `${w.secret}x`), 'and not with another secret');
    const payload = JSON.parse(r.body);
    assert.equal(payload.id, r.eventId, 'Loyalty-Event-Id is the body id');
    assert.deepEqual(Object.keys(payload).sort(), ['data', 'id', 'occurredAt', 'programId', 'type']);
  }
  // every event arrived with a 2xx; each id always carried the same body
  const bodies = new Map<string, string>();
  for (const r of mine) {
    if (bodies.has(r.eventId)) assert.equal(bodies.get(r.eventId), r.body, 'a retry sends the same bytes');
    bodies.set(r.eventId, r.body);
  }
  for (const e of events)
    assert.ok(
      mine.some((r) => r.eventId === e.event_id && r.answer === 'ok'),
      `${e.type} ${e.event_id} delivered`,
    );
  assert.equal(bodies.size, events.length, 'no id the ledger did not write');
  // nothing twice under two ids: one id per invoice earned
  const idsByInvoice = new Map<string, Set<string>>();
  for (const r of mine) {
    const payload = JSON.parse(r.body);
    if (payload.type !== 'points.earned') continue;
    const set = idsByInvoice.get(payload.data.invoiceId) ?? new Set<string>();
    set.add(payload.id);
    idsByInvoice.set(payload.data.invoiceId, set);
  }
  assert.equal(idsByInvoice.size, 40);
  for (const [invoiceId, ids] of idsByInvoice) assert.equal(ids.size, 1, invoiceId);
  // in order per member: the first arrivals of a member's events follow the order they were recorded
  for (const m of members) {
    const expected = events.filter((e) => e.member_id === m).map((e) => e.event_id);
    const firsts: string[] = [];
    for (const r of mine) if (expected.includes(r.eventId) && !firsts.includes(r.eventId)) firsts.push(r.eventId);
    assert.deepEqual(firsts, expected, `order of ${m}`);
  }
  // the attempts are shown, the faults among them
  const shown = await deliveriesOf(w.webhookId);
  assert.ok(shown.some((d) => d.attempts > 1 && d.history.some((h: { ok: boolean }) => !h.ok)));
  assert.ok(shown.every((d) => d.history.at(-1).ok && d.deliveredAt !== null));
  // every attempt the relay made was recorded under its lease (none left to run out and be sent again)
  const recorded = (await stack.pool.query('select count(*)::int as n from webhook_delivery_attempts')).rows[0].n;
  assert.equal(recorded, relay.attempts);
  receiver.decide = () => 'ok';
});

test('rotate-secret: the new secret once; the old one still signs during the grace window', async () => {
  const p = await program();
  const w = await webhook(p, ['points.earned']);
  const idem = uniqueId('rot');
  const rotated = await call('POST', `/v1/programs/${p}/webhooks/${w.webhookId}/rotate-secret`, { idem });
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  assert.match(rotated.body.secret, /^whsec_/);
  assert.notEqual(rotated.body.secret, w.secret);
  assert.ok(Date.parse(rotated.body.previousSecretValidUntil) > Date.now() + 23 * 3600_000);
  const again = await call('POST', `/v1/programs/${p}/webhooks/${w.webhookId}/rotate-secret`, { idem });
  assert.equal(again.body.secret, null, 'a replay does not show the secret again');
  assert.equal(
    (await call('POST', `/v1/programs/${p}/webhooks/${w.webhookId}/rotate-secret`, { role: 'finance' })).status,
    403,
  );
  await accrue(p, 'm-1', 'inv-rot-1');
  const [event] = await eventsOf(p);
  const got = await eventually('the event', async () =>
    receiver.received.find((r) => r.eventId === event!.event_id && r.answer === 'ok'),
  );
  assert.equal(got.signature.split(',').filter((s) => s.startsWith('v1=')).length, 2, 'two v1= signatures');
  assert.ok(verifyLoyaltySignature(got.body, got.signature, rotated.body.secret));
  assert.ok(verifyLoyaltySignature(got.body, got.signature, w.secret));
  const list = await call('GET', `/v1/programs/${p}/webhooks`);
  assert.ok(!JSON.stringify(list.body).includes(rotated.body.secret));
  assert.ok(list.body.items[0].secretRotatedAt);
});

test('past the 24 h horizon a delivery is failed; the member queue waits behind it; redeliver sends the same event', async () => {
  const p = await program();
  const down = new WebhookReceiver();
  await down.start();
  down.decide = () => 'fail';
  try {
    const w = await webhook(p, ['points.earned'], down.url);
    await accrue(p, 'm-1', 'inv-h-1');
    await accrue(p, 'm-1', 'inv-h-2');
    const [first, second] = await eventsOf(p);
    // move the relay's clock two hours after each attempt, until the first delivery fails
    let seen = 0;
    await eventually(
      'the first delivery failed',
      async () => {
        if (down.received.length > seen) {
          seen = down.received.length;
          offsetMs += 2 * 3600_000;
        }
        const d = (await deliveriesOf(w.webhookId)).find((x) => x.eventId === first!.event_id);
        return d.status === 'failed';
      },
      120_000,
      20,
    );
    const failed = (await deliveriesOf(w.webhookId)).find((x) => x.eventId === first!.event_id);
    // the member's later event waited while the earlier one was retried: tried only after its last attempt
    const lastOfFirst = Math.max(...down.received.filter((r) => r.eventId === first!.event_id).map((r) => r.at));
    assert.ok(
      down.received.filter((r) => r.eventId === second!.event_id).every((r) => r.at >= lastOfFirst),
      'the queue held',
    );
    assert.ok(failed.attempts >= 12, `attempts: ${failed.attempts}`);
    const span = Date.parse(failed.history.at(-1).at) - Date.parse(failed.history[0].at);
    assert.ok(span >= 24 * 3600_000 - 3 * 3600_000, `retried over ${span / 3600_000} h`);
    assert.equal(failed.history.length, failed.attempts);
    assert.match(failed.lastError, /HTTP 500/);
    // the queue moves on: the second event is tried now
    await eventually('the second event tried', async () => down.received.some((r) => r.eventId === second!.event_id));
    // the receiver is fixed; redeliver the failed one: a new series, the same event id
    down.decide = () => 'ok';
    offsetMs = 0;
    const before = down.received.filter((r) => r.eventId === first!.event_id).length;
    const res = await call(
      'POST',
      `/v1/programs/${p}/webhooks/${w.webhookId}/deliveries/${failed.deliveryId}/redeliver`,
      {
        role: 'support',
      },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.redelivery, 'started');
    await eventually('redelivered', async () => {
      const d = (await deliveriesOf(w.webhookId)).find((x) => x.eventId === first!.event_id);
      return d.status === 'delivered';
    });
    const after = down.received.filter((r) => r.eventId === first!.event_id);
    assert.equal(after.length, before + 1);
    assert.equal(after.at(-1)!.answer, 'ok');
    const redone = (await deliveriesOf(w.webhookId)).find((x) => x.eventId === first!.event_id);
    assert.equal(redone.attempts, 1, 'a new series');
    // a delivered one may be redelivered too
    const again = await call(
      'POST',
      `/v1/programs/${p}/webhooks/${w.webhookId}/deliveries/${failed.deliveryId}/redeliver`,
      {
        role: 'support',
      },
    );
    assert.equal(again.status, 200);
    await eventually(
      'delivered twice',
      async () => down.received.filter((r) => r.eventId === first!.event_id && r.answer === 'ok').length === 2,
    );
  } finally {
    offsetMs = 0;
    await down.close();
  }
});

test('points.expiring_soon once per deadline, then points.expired', async () => {
  const p = await program({ expiry: { policy: 'rolling', window: 'PT8S' }, notifications: { expiringSoonDays: 1 } });
  await webhook(p, ['points.expiring_soon', 'points.expired']);
  const res = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'inv-x-1', amountMinor: 10_000, occurredAt: new Date().toISOString() },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  await eventually('expiring_soon', async () => (await eventsOf(p)).some((e) => e.type === 'points.expiring_soon'));
  assert.equal(await emitExpiringSoon(stack.pool, new Date(), 1000), 0, 'a second scan sends nothing');
  await eventually('expired', async () => (await eventsOf(p)).some((e) => e.type === 'points.expired'), 60_000);
  const events = await eventsOf(p);
  assert.deepEqual(
    events.map((e) => e.type),
    ['points.expiring_soon', 'points.expired'],
  );
  assert.equal(events[0]!.data.points, 100);
  assert.equal(events[1]!.data.points, 100);
  await eventually('both delivered', async () =>
    events.every((e) => receiver.received.some((r) => r.eventId === e.event_id && r.answer === 'ok')),
  );
});

test('a worker killed in the middle of a delivery: the next worker sends it again, under the same id', async () => {
  await relay.stop(); // the worker processes' relays are the only ones
  const p = await program();
  const w = await webhook(p, ['points.earned']);
  let first: ChildProcess | undefined;
  let second: ChildProcess | undefined;
  const env = { LOYALTY_WEBHOOK_ALLOW_PRIVATE: '1', LOYALTY_WEBHOOK_TIMEOUT_MS: '3000' };
  try {
    receiver.decide = ({ body }) => (body.includes(p) ? 'hang' : 'ok');
    first = await startWorkerProcess({ databaseUrl: stack.db.url, taskQueue: uniqueId('tq'), env });
    await accrue(p, 'm-1', 'inv-k-1');
    const [event] = await eventsOf(p);
    await eventually('the request reached the receiver', async () =>
      receiver.received.some((r) => r.eventId === event!.event_id),
    );
    first.kill('SIGKILL'); // mid-delivery: the receiver has the request, no answer was recorded
    await new Promise((r) => first!.once('exit', r));
    const [d] = await deliveriesOf(w.webhookId);
    assert.equal(d.status, 'pending');
    receiver.decide = () => 'ok';
    second = await startWorkerProcess({ databaseUrl: stack.db.url, taskQueue: uniqueId('tq'), env });
    await eventually(
      'delivered by the second worker',
      async () => (await deliveriesOf(w.webhookId))[0].status === 'delivered',
      60_000,
    );
    const got = receiver.received.filter((r) => r.eventId === event!.event_id);
    assert.ok(got.length >= 2, 'sent again');
    assert.equal(new Set(got.map((r) => JSON.parse(r.body).id)).size, 1, 'under one id');
    assert.equal(got.at(-1)!.answer, 'ok');
    assert.equal(await countPendingDeliveries(stack.pool), 0);
  } finally {
    first?.kill('SIGKILL');
    if (second) {
      second.kill('SIGTERM');
      await new Promise((r) => second!.once('exit', r));
    }
    relay = newRelay();
    relay.start();
  }
});

test('a rule change sends rule_change.awaiting_approval, then rule_change.activated once approved', async () => {
  const p = await program({ ruleChanges: { requiredRoles: ['finance'] } });
  await webhook(p, ['rule_change.awaiting_approval', 'rule_change.activated']);
  const proposed = await call('POST', `/v1/programs/${p}/rule-changes`, {
    role: 'program_owner',
    body: {
      changeId: 'longer',
      effectiveAt: new Date().toISOString(),
      rules: ruleChangeRules({
        ruleChanges: { requiredRoles: ['finance'] },
        expiry: { policy: 'rolling', window: 'P730D' },
      }),
      comment: 'test',
    },
  });
  assert.ok([201, 202].includes(proposed.status), JSON.stringify(proposed.body));
  await eventually('awaiting approval', async () =>
    (await eventsOf(p)).some((e) => e.type === 'rule_change.awaiting_approval'),
  );
  const approved = await call('POST', `/v1/programs/${p}/rule-changes/longer/approvals`, {
    role: 'finance',
    body: { decision: 'approve' },
  });
  assert.ok([200, 201, 202].includes(approved.status), JSON.stringify(approved.body));
  await eventually(
    'activated',
    async () => (await eventsOf(p)).some((e) => e.type === 'rule_change.activated'),
    60_000,
  );
  const events = await eventsOf(p);
  assert.deepEqual(
    events.map((e) => [e.type, e.data.changeId]),
    [
      ['rule_change.awaiting_approval', 'longer'],
      ['rule_change.activated', 'longer'],
    ],
  );
  await eventually('both delivered', async () =>
    events.every((e) => receiver.received.some((r) => r.eventId === e.event_id && r.answer === 'ok')),
  );
});

test('an adjustment above the threshold sends adjustment.awaiting_approval, then adjustment.applied once finance approves', async () => {
  const p = await program();
  await webhook(p, ['adjustment.awaiting_approval', 'adjustment.applied']);
  await accrue(p, 'm-1', 'inv-adj-1');
  const big = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-1', points: 5000, reasonCode: 'goodwill' },
  });
  assert.equal(big.status, 202, JSON.stringify(big.body));
  await eventually('awaiting approval', async () =>
    (await eventsOf(p)).some((e) => e.type === 'adjustment.awaiting_approval'),
  );
  const approved = await call('POST', `/v1/programs/${p}/adjustments/${big.body.adjustmentId}/approvals`, {
    role: 'finance',
    body: { decision: 'approve', comment: 'ok' },
  });
  assert.ok([200, 201, 202].includes(approved.status), JSON.stringify(approved.body));
  await eventually('applied', async () => (await eventsOf(p)).some((e) => e.type === 'adjustment.applied'), 60_000);
  const events = await eventsOf(p);
  assert.deepEqual(
    events.map((e) => [e.type, e.data.adjustmentId, e.data.points]),
    [
      ['adjustment.awaiting_approval', big.body.adjustmentId, 5000],
      ['adjustment.applied', big.body.adjustmentId, 5000],
    ],
  );
  assert.equal(events[1]!.data.approvedBy, 'test-finance');
  await eventually('both delivered', async () =>
    events.every((e) => receiver.received.some((r) => r.eventId === e.event_id && r.answer === 'ok')),
  );
});
