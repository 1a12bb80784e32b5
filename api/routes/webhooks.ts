/**
 * Webhooks (issue 15, item 4; docs/api.md, "Webhooks"): a program's endpoints, their deliveries and
 * redelivery. The secret is answered once, by the create or the rotation that made it: a replay of
 * that request under its Idempotency-Key answers `secret: null` (the stored answer never holds it),
 * and no GET shows it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { rethrowAsApiError } from '../../db/errors';
import { claimIdempotencyKey, storeIdempotentResponse, type StoredResponse } from '../../db/idempotency';
import { inTransaction } from '../../db/tx';
import {
  deleteWebhook,
  getWebhook,
  insertWebhook,
  listDeliveries,
  listWebhooks,
  lockAndCountWebhooks,
  redeliver,
  rotateWebhookSecret,
  type WebhookRow,
} from '../../db/webhooks';
import { ApiError, notFound } from '../../domain/errors';
import { programParams } from '../../domain/schemas';
import {
  createWebhookSchema,
  isPrivateHost,
  parseWebhookUrl,
  WEBHOOK_LIMITS,
  webhookDeliveriesQuery,
  webhookDeliveryParams,
  webhookParams,
} from '../../domain/webhooks';
import type { ApiContext } from '../context';
import { idempotencyKey, parse, requestHash, scopedIdempotencyKey, withClientKey } from '../validate';

const MANAGERS = ['admin'] as const;
const READERS = ['finance', 'support'] as const;

/** 32 random bytes; the prefix tells a reader of a config file what the string is. */
const newWebhookSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

export function webhookView(w: WebhookRow) {
  return {
    webhookId: w.webhookId,
    url: w.url,
    events: w.events,
    description: w.description,
    status: w.status,
    createdAt: w.createdAt.toISOString(),
    createdBy: w.createdBy,
    secretRotatedAt: w.secretRotatedAt?.toISOString() ?? null,
  };
}

export function webhookRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // read when the routes are made: tests and `npm start` set it; a deployment leaves it unset
  const allowPrivate = process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE === '1';

  app.post('/v1/programs/:programId/webhooks', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, MANAGERS);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(createWebhookSchema, req.body, 'webhook');
    const key = idempotencyKey(req);
    if (!allowPrivate && isPrivateHost(parseWebhookUrl(body.url)!.hostname))
      throw new ApiError(400, 'validation_failed', 'invalid webhook', {
        issues: [
          {
            path: 'url',
            message: 'a loopback, private or link-local address (LOYALTY_WEBHOOK_ALLOW_PRIVATE=1 allows it)',
          },
        ],
      });
    const stored = scopedIdempotencyKey(principal.name, 'webhooks', key);
    let outcome: { replay: StoredResponse } | { created: Record<string, unknown> };
    try {
      outcome = await withClientKey(key, () =>
        inTransaction(ctx.pool, async (client) => {
          const prior = await claimIdempotencyKey(client, programId, stored, requestHash('webhooks', body));
          if (prior) return { replay: prior };
          const count = await lockAndCountWebhooks(client, programId);
          if (count === null) throw notFound('program', { programId });
          if (count >= WEBHOOK_LIMITS.perProgram)
            throw new ApiError(
              422,
              'webhook_limit_reached',
              `a program has at most ${WEBHOOK_LIMITS.perProgram} webhooks`,
              {
                limit: WEBHOOK_LIMITS.perProgram,
              },
            );
          const secret = newWebhookSecret();
          const w = await insertWebhook(client, {
            webhookId: randomUUID(),
            programId,
            url: body.url,
            events: body.events,
            description: body.description ?? null,
            secret,
            actor: principal.name,
          });
          const view = {
            webhookId: w.webhookId,
            url: w.url,
            events: w.events,
            description: w.description,
            createdAt: w.createdAt.toISOString(),
          };
          // stored without the secret: shown once
          await storeIdempotentResponse(client, programId, stored, 201, { ...view, secret: null });
          return { created: { ...view, secret } };
        }),
      );
    } catch (e) {
      rethrowAsApiError(e);
    }
    if ('replay' in outcome)
      return reply.status(outcome.replay.status).header('Idempotent-Replayed', 'true').send(outcome.replay.body);
    return reply.status(201).send(outcome.created);
  });

  app.get('/v1/programs/:programId/webhooks', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), [...MANAGERS, ...READERS]);
    const { programId } = parse(programParams, req.params, 'path');
    await ctx.programs.get(programId);
    return { items: (await listWebhooks(ctx.pool, programId)).map(webhookView) };
  });

  app.delete('/v1/programs/:programId/webhooks/:webhookId', async (req) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, MANAGERS);
    const { programId, webhookId } = parse(webhookParams, req.params, 'path');
    const w = await getWebhook(ctx.pool, programId, webhookId);
    if (!w) throw notFound('webhook', { programId, webhookId });
    // deleting a deleted webhook again answers the same (DELETE is idempotent)
    if (w.status === 'active') await deleteWebhook(ctx.pool, programId, webhookId, principal.name);
    return { webhookId, status: 'deleted' };
  });

  app.post('/v1/programs/:programId/webhooks/:webhookId/rotate-secret', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, MANAGERS);
    const { programId, webhookId } = parse(webhookParams, req.params, 'path');
    const key = idempotencyKey(req);
    const stored = scopedIdempotencyKey(principal.name, 'webhook-rotate', key);
    let outcome: { replay: StoredResponse } | { rotated: Record<string, unknown> };
    try {
      outcome = await withClientKey(key, () =>
        inTransaction(ctx.pool, async (client) => {
          const prior = await claimIdempotencyKey(
            client,
            programId,
            stored,
            requestHash('webhook-rotate', { webhookId }),
          );
          if (prior) return { replay: prior };
          const secret = newWebhookSecret();
          const until = await rotateWebhookSecret(client, programId, webhookId, secret, WEBHOOK_LIMITS.rotationGraceMs);
          if (!until) throw notFound('webhook', { programId, webhookId });
          const view = { webhookId, previousSecretValidUntil: until.toISOString() };
          await storeIdempotentResponse(client, programId, stored, 200, { ...view, secret: null });
          return { rotated: { ...view, secret } };
        }),
      );
    } catch (e) {
      rethrowAsApiError(e);
    }
    if ('replay' in outcome)
      return reply.status(outcome.replay.status).header('Idempotent-Replayed', 'true').send(outcome.replay.body);
    return reply.status(200).send(outcome.rotated);
  });

  app.get('/v1/programs/:programId/webhooks/:webhookId/deliveries', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), [...MANAGERS, ...READERS]);
    const { programId, webhookId } = parse(webhookParams, req.params, 'path');
    const q = parse(webhookDeliveriesQuery, req.query, 'query');
    if (!(await getWebhook(ctx.pool, programId, webhookId))) throw notFound('webhook', { programId, webhookId });
    const items = await listDeliveries(ctx.pool, webhookId, q);
    return {
      items: items.map((d) => ({
        ...d,
        nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
        deliveredAt: d.deliveredAt?.toISOString() ?? null,
        recordedAt: d.recordedAt.toISOString(),
        history: d.history.map((h) => ({ ...h, at: h.at.toISOString() })),
      })),
      nextBefore: items.length === q.limit ? items[items.length - 1]!.deliveryId : null,
    };
  });

  app.post('/v1/programs/:programId/webhooks/:webhookId/deliveries/:deliveryId/redeliver', async (req) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['admin', 'support']);
    const { programId, webhookId, deliveryId } = parse(webhookDeliveryParams, req.params, 'path');
    idempotencyKey(req); // required as on every POST; a redelivery asked twice while pending is one series
    if (!(await getWebhook(ctx.pool, programId, webhookId))) throw notFound('webhook', { programId, webhookId });
    const r = await redeliver(ctx.pool, webhookId, deliveryId);
    if (r === 'not_found') throw notFound('delivery', { webhookId, deliveryId });
    if (r === 'webhook_deleted') throw new ApiError(409, 'webhook_deleted', 'the webhook was deleted', { webhookId });
    return { deliveryId, status: 'pending', redelivery: r === 'ok' ? 'started' : 'already_pending' };
  });
}
