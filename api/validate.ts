import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import type { z } from 'zod';
import {
  beginIdempotentRequest,
  finishIdempotentRequest,
  releaseIdempotentRequest,
  type IdempotentBegin,
} from '../db/idempotency';
import { fromDbError } from '../db/errors';
import { ApiError } from '../domain/errors';
import { idempotencyKeyHeader } from '../domain/schemas';
import { isUnavailable } from './unavailable';

/** A zod failure's problems as the API lists them in `details.issues`: where (a dotted path) and what. */
export const zodIssues = (error: z.ZodError) =>
  error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));

/** Parses with a zod schema; failures become 400 validation_failed listing every problem. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  throw new ApiError(400, 'validation_failed', `invalid ${where}`, { issues: zodIssues(r.error) });
}

export function idempotencyKey(req: FastifyRequest): string {
  const key = optionalIdempotencyKey(req);
  if (key === null)
    throw new ApiError(400, 'validation_failed', 'the Idempotency-Key header is required on this request');
  return key;
}

/** The Idempotency-Key header when sent (validated), else null. */
export function optionalIdempotencyKey(req: FastifyRequest): string | null {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return null;
  return parse(idempotencyKeyHeader, Array.isArray(raw) ? raw[0] : raw, 'Idempotency-Key header');
}

/**
 * The key as stored: scoped by the principal that sent it and the route (docs/access.md,
 * "Idempotency"), so one principal's key never finds another's stored response, and no client key
 * can equal a key the ledger uses for itself (those never start with "[").
 */
export function scopedIdempotencyKey(principal: string, route: string, key: string): string {
  return JSON.stringify([principal, route, key]);
}

/**
 * Runs fn, answering a 409 idempotency_key_reused raised with the stored (scoped) key with the key
 * the client sent: the scoping is the ledger's business, not the client's.
 */
export async function withClientKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const api = e instanceof ApiError ? e : fromDbError(e as { code?: string; message: string });
    if (api?.code === 'idempotency_key_reused')
      throw new ApiError(api.statusCode, api.code, api.message, { ...api.details, idempotencyKey: key });
    throw e;
  }
}

/** How long a claim may stay in progress before another request with its key takes it over (a crashed API's). */
export const IDEMPOTENCY_LEASE_SECONDS = 60;
/** How long a duplicate waits for the request in progress with its key before answering 409. */
const IN_PROGRESS_WAIT_MS = 3_000;
const IN_PROGRESS_POLL_MS = 100;
/**
 * How long storing an answer, or releasing a claim, is retried while PostgreSQL does not answer (a
 * restart of a few seconds). Given up sooner, the claim stays in progress for its whole lease: the
 * work is done (a redemption applied) but every retry of the key answers 409 in progress until the
 * lease ends (found by test/faults).
 */
const SETTLE_CLAIM_MS = 10_000;
const SETTLE_CLAIM_MAX_DELAY_MS = 1_000;

/** Runs a claim's last write again while the database does not answer, for at most SETTLE_CLAIM_MS. */
export async function settleClaim(write: () => Promise<void>): Promise<void> {
  const giveUpAt = Date.now() + SETTLE_CLAIM_MS;
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, SETTLE_CLAIM_MAX_DELAY_MS)) {
    try {
      return await write();
    } catch (e) {
      if (!isUnavailable(e) || Date.now() + delayMs > giveUpAt) throw e;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

export interface IdempotentAnswer {
  status: number;
  body: unknown;
  /** false: an interim answer (the work still running), not stored; the claim is released */
  keep?: boolean;
}

/**
 * Exact idempotency for a write that is not one database transaction (it starts, signals or
 * updates a workflow). The key is claimed first, in its own committed row marked in progress; then
 * the work runs (its workflow id makes it idempotent itself); then its answer is stored. The same
 * key and body again: the stored answer, with Idempotent-Replayed: true; while the first is still
 * working, a short wait, then 409 idempotency_request_in_progress with Retry-After; a claim left in
 * progress past its lease (a crash) is taken over. Another body: 409 idempotency_key_reused, nothing
 * done. An error answer is not stored: the claim is released and the request may be sent again.
 * `key: null` (an optional key not sent) runs the work unguarded.
 */
export async function idempotent(
  pool: Pool,
  req: FastifyRequest,
  reply: FastifyReply,
  o: { scope: string; principal: string; route: string; request: unknown; key?: string | null },
  work: () => Promise<IdempotentAnswer>,
): Promise<FastifyReply> {
  const key = o.key === undefined ? idempotencyKey(req) : o.key;
  if (key === null) {
    const answer = await work();
    return reply.status(answer.status).send(answer.body);
  }
  const stored = scopedIdempotencyKey(o.principal, o.route, key);
  const hash = requestHash(o.route, o.request);
  const begin = () =>
    withClientKey(key, () => beginIdempotentRequest(pool, o.scope, stored, hash, IDEMPOTENCY_LEASE_SECONDS));
  let begun: IdempotentBegin = await begin();
  const waitUntil = Date.now() + IN_PROGRESS_WAIT_MS;
  while (begun.state === 'in_progress' && Date.now() < waitUntil) {
    await new Promise((resolve) => setTimeout(resolve, IN_PROGRESS_POLL_MS));
    begun = await begin();
  }
  if (begun.state === 'in_progress' && begun.otherBody)
    throw new ApiError(409, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request body', {
      idempotencyKey: key,
    });
  if (begun.state === 'in_progress') {
    reply.header('Retry-After', String(begun.retryAfter));
    throw new ApiError(
      409,
      'idempotency_request_in_progress',
      'a request with this Idempotency-Key is in progress: send it again later',
      { idempotencyKey: key, retryAfterSeconds: begun.retryAfter },
    );
  }
  if (begun.state === 'done') return reply.status(begun.status).header('Idempotent-Replayed', 'true').send(begun.body);
  let answer: IdempotentAnswer;
  try {
    answer = await work();
  } catch (e) {
    await settleClaim(() => releaseIdempotentRequest(pool, o.scope, stored, begun.claimId)).catch(() => undefined);
    throw e;
  }
  if (answer.keep === false) await settleClaim(() => releaseIdempotentRequest(pool, o.scope, stored, begun.claimId));
  else await settleClaim(() => finishIdempotentRequest(pool, o.scope, stored, answer.status, answer.body));
  return reply.status(answer.status).send(answer.body);
}

/** A stable hash of what a request asks for: the route and the body with its keys sorted. */
export function requestHash(route: string, body: unknown): string {
  return createHash('sha256').update(route).update('\n').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
