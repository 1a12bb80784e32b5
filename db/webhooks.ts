/**
 * The webhook outbox's reads and writes (migration 018; docs/api.md, "Webhooks"). Events and their
 * deliveries are written by db/functions/ll_emit_event.sql in the transaction of the change; this
 * file holds the endpoints' rows and what the relay (workers/webhook-relay.ts) does with deliveries.
 */
import type { Pool, PoolClient } from 'pg';
import type { WebhookEventType } from '../domain/webhooks';

export interface WebhookRow {
  webhookId: string;
  programId: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  status: 'active' | 'deleted';
  createdAt: Date;
  createdBy: string;
  secretRotatedAt: Date | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a row of the columns named below
const webhookRow = (r: Record<string, any>): WebhookRow => ({
  webhookId: r.webhook_id,
  programId: r.program_id,
  url: r.url,
  events: r.events,
  description: r.description,
  status: r.status,
  createdAt: r.created_at,
  createdBy: r.created_by,
  secretRotatedAt: r.secret_rotated_at,
});
// the columns a view may read: never the secrets
const VIEW_COLUMNS =
  'webhook_id, program_id, url, events, description, status, created_at, created_by, secret_rotated_at';

/** Active webhooks of the program, counted under its row's lock (the per-program limit holds under concurrency). */
export async function lockAndCountWebhooks(client: PoolClient, programId: string): Promise<number | null> {
  const p = await client.query('select 1 from programs where program_id = $1 for update', [programId]);
  if (p.rowCount === 0) return null;
  const { rows } = await client.query<{ n: number }>(
    "select count(*)::int as n from webhooks where program_id = $1 and status = 'active'",
    [programId],
  );
  return rows[0]!.n;
}

export async function insertWebhook(
  client: PoolClient,
  w: {
    webhookId: string;
    programId: string;
    url: string;
    events: string[];
    description: string | null;
    secret: string;
    actor: string;
  },
): Promise<WebhookRow> {
  const { rows } = await client.query(
    `insert into webhooks (webhook_id, program_id, url, events, description, secret, created_by)
     values ($1, $2, $3, $4, $5, $6, $7) returning ${VIEW_COLUMNS}`,
    [w.webhookId, w.programId, w.url, w.events, w.description, w.secret, w.actor],
  );
  return webhookRow(rows[0]);
}

export async function listWebhooks(pool: Pool, programId: string): Promise<WebhookRow[]> {
  const { rows } = await pool.query(
    `select ${VIEW_COLUMNS} from webhooks where program_id = $1 and status = 'active' order by created_at, webhook_id`,
    [programId],
  );
  return rows.map(webhookRow);
}

export async function getWebhook(pool: Pool, programId: string, webhookId: string): Promise<WebhookRow | null> {
  const { rows } = await pool.query(`select ${VIEW_COLUMNS} from webhooks where program_id = $1 and webhook_id = $2`, [
    programId,
    webhookId,
  ]);
  return rows[0] ? webhookRow(rows[0]) : null;
}

/**
 * Deletes (marks deleted) an active webhook; its pending deliveries become failed ("webhook
 * deleted"), so that nothing more is sent to it. False when there is no such active webhook.
 */
export async function deleteWebhook(pool: Pool, programId: string, webhookId: string, actor: string): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>(
    `with w as (update webhooks set status = 'deleted', deleted_at = now(), deleted_by = $3
                 where program_id = $1 and webhook_id = $2 and status = 'active' returning webhook_id),
          f as (update webhook_deliveries d set status = 'failed', last_error = 'webhook deleted', leased_until = null, lease_token = null
                  from w where d.webhook_id = w.webhook_id and d.status = 'pending' returning 1)
     select count(*)::int as n from w`,
    [programId, webhookId, actor],
  );
  return rows[0]!.n === 1;
}

/** A new secret; the old one keeps signing until now + graceMs. Null when there is no such active webhook. */
export async function rotateWebhookSecret(
  pool: Pool | PoolClient,
  programId: string,
  webhookId: string,
  secret: string,
  graceMs: number,
): Promise<Date | null> {
  const { rows } = await pool.query<{ until: Date }>(
    `update webhooks set previous_secret = secret, secret = $3, secret_rotated_at = now(),
            previous_secret_until = now() + make_interval(secs => $4::double precision / 1000)
      where program_id = $1 and webhook_id = $2 and status = 'active' returning previous_secret_until as until`,
    [programId, webhookId, secret, graceMs],
  );
  return rows[0]?.until ?? null;
}

export interface DeliveryView {
  deliveryId: string;
  eventId: string;
  type: WebhookEventType;
  memberId: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: Date | null;
  recordedAt: Date;
  history: Array<{ at: Date; durationMs: number; statusCode: number | null; error: string | null; ok: boolean }>;
}

/** A webhook's deliveries, newest first, with every attempt of each (oldest first). */
export async function listDeliveries(
  pool: Pool,
  webhookId: string,
  q: { status?: string; limit: number; before?: string },
): Promise<DeliveryView[]> {
  const { rows } = await pool.query(
    `select d.delivery_id::text, d.event_id, e.type, e.member_id, d.status, d.attempts, d.next_attempt_at, d.last_status_code,
            d.last_error, d.delivered_at, e.recorded_at,
            coalesce((select jsonb_agg(jsonb_build_object('at', a.started_at, 'durationMs', a.duration_ms, 'statusCode', a.status_code,
                                                         'error', a.error, 'ok', a.ok) order by a.attempt_id)
                        from webhook_delivery_attempts a where a.delivery_id = d.delivery_id), '[]') as history
       from webhook_deliveries d join webhook_events e on e.event_id = d.event_id
      where d.webhook_id = $1 and ($2::text is null or d.status = $2) and ($3::bigint is null or d.delivery_id < $3)
      order by d.delivery_id desc limit $4`,
    [webhookId, q.status ?? null, q.before ?? null, q.limit],
  );
  return rows.map((r) => ({
    deliveryId: r.delivery_id,
    eventId: r.event_id,
    type: r.type,
    memberId: r.member_id,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    recordedAt: r.recorded_at,
    history: r.history.map((h: DeliveryView['history'][number] & { at: string }) => ({ ...h, at: new Date(h.at) })),
  }));
}

/**
 * Redelivery: a delivered or failed delivery becomes pending again as a new series (attempts from 0,
 * the 24 h horizon from now), the same event id. 'not_found', 'pending' (already being delivered),
 * or 'ok'.
 */
export async function redeliver(
  pool: Pool,
  webhookId: string,
  deliveryId: string,
): Promise<'ok' | 'not_found' | 'pending' | 'webhook_deleted'> {
  const { rows } = await pool.query<{ status: string; webhook_status: string; changed: boolean }>(
    `with d as (select d.delivery_id, d.status, w.status as webhook_status from webhook_deliveries d
                 join webhooks w on w.webhook_id = d.webhook_id where d.webhook_id = $1 and d.delivery_id = $2 for update of d),
          u as (update webhook_deliveries x set status = 'pending', attempts = 0, series_started_at = now(), next_attempt_at = now(),
                       leased_until = null, lease_token = null, delivered_at = null
                  from d where x.delivery_id = d.delivery_id and d.status <> 'pending' and d.webhook_status = 'active'
                returning x.delivery_id)
     select d.status, d.webhook_status, exists (select 1 from u) as changed from d`,
    [webhookId, deliveryId],
  );
  const r = rows[0];
  if (!r) return 'not_found';
  if (r.webhook_status !== 'active') return 'webhook_deleted';
  return r.changed ? 'ok' : 'pending';
}

/** A delivery the relay took: what to send, where, signed with which secrets. */
export interface ClaimedDelivery {
  deliveryId: string;
  leaseToken: string;
  attempts: number;
  seriesStartedAt: Date;
  url: string;
  secrets: string[];
  event: {
    id: string;
    type: WebhookEventType;
    occurredAt: Date;
    programId: string;
    memberId: string | null;
    data: unknown;
    recordedAt: Date;
  };
}

/**
 * Leases up to `limit` due deliveries, each the head of its queue (no earlier pending delivery of
 * the same webhook and member): one delivery per queue is ever in flight, and a later event of the
 * member waits while an earlier one is retried. `now` is the relay's clock.
 */
export async function claimDeliveries(
  pool: Pool,
  now: Date,
  limit: number,
  leaseSeconds: number,
): Promise<ClaimedDelivery[]> {
  const { rows } = await pool.query(
    `with c as (
       select d.delivery_id from webhook_deliveries d
        where d.status = 'pending' and d.next_attempt_at <= $1 and (d.leased_until is null or d.leased_until < $1)
          and not exists (select 1 from webhook_deliveries h where h.webhook_id = d.webhook_id and h.queue_key = d.queue_key
                             and h.status = 'pending' and h.delivery_id < d.delivery_id)
        order by d.next_attempt_at, d.delivery_id limit $2 for update of d skip locked),
     u as (update webhook_deliveries d set leased_until = $1::timestamptz + make_interval(secs => $3), lease_token = gen_random_uuid()
             from c where d.delivery_id = c.delivery_id
           returning d.delivery_id, d.lease_token, d.attempts, d.series_started_at, d.event_id, d.webhook_id)
     select u.delivery_id::text, u.lease_token, u.attempts, u.series_started_at, w.url, w.secret,
            case when w.previous_secret_until > $1 then w.previous_secret end as previous_secret,
            e.event_id, e.type, e.occurred_at, e.program_id, e.member_id, e.data, e.recorded_at
       from u join webhooks w on w.webhook_id = u.webhook_id join webhook_events e on e.event_id = u.event_id
      where w.status = 'active'
      order by u.delivery_id`,
    [now, limit, leaseSeconds],
  );
  return rows.map((r) => ({
    deliveryId: r.delivery_id,
    leaseToken: r.lease_token,
    attempts: r.attempts,
    seriesStartedAt: r.series_started_at,
    url: r.url,
    secrets: [r.secret, ...(r.previous_secret ? [r.previous_secret] : [])],
    event: {
      id: r.event_id,
      type: r.type,
      occurredAt: r.occurred_at,
      programId: r.program_id,
      memberId: r.member_id,
      data: r.data,
      recordedAt: r.recorded_at,
    },
  }));
}

export interface AttemptOutcome {
  deliveryId: string;
  leaseToken: string;
  startedAt: Date;
  durationMs: number;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  /** when to try again after a failure (the relay's schedule) */
  nextAttemptAt: Date;
  /** after a failure at or past this, the delivery is failed */
  failAfter: Date;
}

/**
 * Records attempts and moves each delivery on: delivered, failed past the horizon, or pending again
 * at nextAttemptAt. One statement for many (the relay's hot path). Only under the lease the relay
 * holds: a relay whose lease ran out (it stalled, another took the delivery over) records nothing
 * for it. Returns each recorded delivery's new status (a lost lease is absent).
 */
export async function recordAttempts(
  pool: Pool,
  outcomes: AttemptOutcome[],
): Promise<Map<string, 'delivered' | 'failed' | 'pending'>> {
  if (outcomes.length === 0) return new Map();
  const col = <K extends keyof AttemptOutcome>(k: K) => outcomes.map((o) => o[k]);
  const { rows } = await pool.query<{ delivery_id: string; status: 'delivered' | 'failed' | 'pending' }>(
    `with o as (select * from unnest($1::bigint[], $2::uuid[], $3::timestamptz[], $4::int[], $5::boolean[], $6::int[], $7::text[],
                                     $8::timestamptz[], $9::timestamptz[])
                         as o(id, token, started, duration_ms, ok, code, error, next_at, fail_after)),
          u as (update webhook_deliveries d
                   set attempts = d.attempts + 1, last_attempt_at = o.started, last_status_code = o.code, last_error = o.error,
                       leased_until = null, lease_token = null,
                       status = case when o.ok then 'delivered'
                                     when o.started + make_interval(secs => o.duration_ms::double precision / 1000) >= o.fail_after then 'failed'
                                     else 'pending' end,
                       delivered_at = case when o.ok then o.started + make_interval(secs => o.duration_ms::double precision / 1000) end,
                       next_attempt_at = case when o.ok then d.next_attempt_at else o.next_at end
                  from o where d.delivery_id = o.id and d.lease_token = o.token and d.status = 'pending'
                returning d.delivery_id, d.status, o.started, o.duration_ms, o.code, o.error, o.ok),
          a as (insert into webhook_delivery_attempts (delivery_id, started_at, duration_ms, status_code, error, ok)
                select delivery_id, started, duration_ms, code, error, ok from u)
     select delivery_id::text, status from u`,
    [
      col('deliveryId'),
      col('leaseToken'),
      col('startedAt'),
      col('durationMs'),
      col('ok'),
      col('statusCode'),
      col('error'),
      col('nextAttemptAt'),
      col('failAfter'),
    ],
  );
  return new Map(rows.map((r) => [r.delivery_id, r.status]));
}

/** Gives back leases this relay will not use (it is stopping). */
export async function releaseDeliveries(
  pool: Pool,
  leases: Array<{ deliveryId: string; leaseToken: string }>,
): Promise<void> {
  if (leases.length === 0) return;
  await pool.query(
    `update webhook_deliveries d set leased_until = null, lease_token = null
       from unnest($1::bigint[], $2::uuid[]) as l(id, token) where d.delivery_id = l.id and d.lease_token = l.token`,
    [leases.map((l) => l.deliveryId), leases.map((l) => l.leaseToken)],
  );
}

/** points.expiring_soon for deadlines now within their program's window (db/functions/ll_emit_expiring_soon.sql). */
export async function emitExpiringSoon(pool: Pool, now: Date, limit: number): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('select ll_emit_expiring_soon($1, $2) as n', [now, limit]);
  return rows[0]!.n;
}

/** Deliveries not yet delivered or failed (the bench and tests wait on it). */
export async function countPendingDeliveries(pool: Pool): Promise<number> {
  const { rows } = await pool.query("select count(*)::int as n from webhook_deliveries where status = 'pending'");
  return rows[0].n;
}
