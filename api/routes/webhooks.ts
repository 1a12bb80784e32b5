/**
 * Webhooks (issue 15, item 4; docs/api.md, "Webhooks"): a program's endpoints, their deliveries and
 * redelivery. The secret is answered once, by the create or the rotation that made it: a replay of
 * that request under its Idempotency-Key answers `secret: null` (the stored answer never holds it),
 * and no GET shows it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { PoolClient } from 'pg';
import { z } from 'zod';
import { rethrowAsApiError } from '../../db/errors';
import type { Role } from '../../db/keys';
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
  webhookCreatedResponse,
  webhookDeliveriesQuery,
  webhookDeliveriesResponse,
  webhookDeliveryParams,
  webhookListResponse,
  webhookParams,
  webhookRotatedResponse,
} from '../../domain/webhooks';
import type { ApiContext } from '../context';
import { route } from '../route';
import { idempotencyKey, requestHash, scopedIdempotencyKey, withClientKey } from '../validate';

const MANAGERS: readonly Role[] = ['admin'];
const READERS: readonly Role[] = ['finance', 'support'];

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
  /**
   * A write that answers a secret once (a webhook's creation, its rotation): the Idempotency-Key
   * claimed in the write's transaction, the answer stored without the secret (`secret: null`), so
   * a replay under the key answers it so, with Idempotent-Replayed: true.
   */
  async function secretOnce(
    reply: FastifyReply,
    o: {
      programId: string;
      principal: string;
      route: string;
      key: string;
      request: unknown;
      status: 200 | 201;
      make: (client: PoolClient) => Promise<{ view: Record<string, unknown>; secret: string }>;
    },
  ): Promise<FastifyReply> {
    const stored = scopedIdempotencyKey(o.principal, o.route, o.key);
    let outcome: { replay: StoredResponse } | { made: Record<string, unknown> };
    try {
      outcome = await withClientKey(o.key, () =>
        inTransaction(ctx.pool, async (client) => {
          const prior = await claimIdempotencyKey(client, o.programId, stored, requestHash(o.route, o.request));
          if (prior) return { replay: prior };
          const { view, secret } = await o.make(client);
          await storeIdempotentResponse(client, o.programId, stored, o.status, { ...view, secret: null });
          return { made: { ...view, secret } };
        }),
      );
    } catch (e) {
      rethrowAsApiError(e);
    }
    if ('replay' in outcome)
      return reply.status(outcome.replay.status).header('Idempotent-Replayed', 'true').send(outcome.replay.body);
    return reply.status(o.status).send(outcome.made);
  }

  // read when the routes are made: tests and `npm start` set it; a deployment leaves it unset
  const allowPrivate = process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE === '1';

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/webhooks',
      summary: 'Create a webhook {url, events, description?}: answers its id and its signing secret, shown this once',
      roles: MANAGERS,
      params: programParams,
      body: createWebhookSchema,
      idempotency: 'required',
      responses: { 201: webhookCreatedResponse, 200: webhookCreatedResponse },
      errors: {
        409: ['idempotency_key_reused'],
        422: ['webhook_url_not_allowed', 'webhook_limit_reached'],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      // a well-formed URL the deployment does not reach (its own network): 422, not a schema's 400
      if (!allowPrivate && isPrivateHost(parseWebhookUrl(body.url)!.hostname))
        throw new ApiError(
          422,
          'webhook_url_not_allowed',
          'a loopback, private or link-local address (LOYALTY_WEBHOOK_ALLOW_PRIVATE=1 allows it)',
          { url: body.url },
        );
      return secretOnce(reply, {
        programId,
        principal: principal.name,
        route: 'webhooks',
        key,
        request: body,
        status: 201,
        make: async (client) => {
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
          return { view, secret };
        },
      });
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/webhooks',
      summary: "The program's webhooks (never their secrets)",
      roles: [...MANAGERS, ...READERS],
      params: programParams,
      responses: { 200: webhookListResponse },
    },
    async (req) => {
      const { programId } = req.params;
      await ctx.programs.get(programId);
      return { items: (await listWebhooks(ctx.pool, programId)).map(webhookView) };
    },
  );

  route(
    app,
    {
      method: 'DELETE',
      url: '/v1/programs/:programId/webhooks/:webhookId',
      summary: 'Delete a webhook: nothing more is sent to it (its pending deliveries fail); again, the same answer',
      roles: MANAGERS,
      params: webhookParams,
      responses: { 200: z.object({ webhookId: z.uuid(), status: z.literal('deleted') }) },
    },
    async (req, _reply, principal) => {
      const { programId, webhookId } = req.params;
      // a deleted webhook is gone, to this route as to every other (404; its rows stay, for the record)
      if ((await getWebhook(ctx.pool, programId, webhookId))?.status !== 'active')
        throw notFound('webhook', { programId, webhookId });
      await deleteWebhook(ctx.pool, programId, webhookId, principal.name);
      return { webhookId, status: 'deleted' as const };
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/webhooks/:webhookId/rotate-secret',
      summary: 'A new signing secret, shown this once; the old one signs too (a second v1=) for 24 h',
      roles: MANAGERS,
      params: webhookParams,
      idempotency: 'required',
      responses: { 200: webhookRotatedResponse },
      errors: { 409: ['idempotency_key_reused'] },
    },
    async (req, reply, principal) => {
      const { programId, webhookId } = req.params;
      const key = idempotencyKey(req);
      return secretOnce(reply, {
        programId,
        principal: principal.name,
        route: 'webhook-rotate',
        key,
        request: { webhookId },
        status: 200,
        make: async (client) => {
          const secret = newWebhookSecret();
          const until = await rotateWebhookSecret(client, programId, webhookId, secret, WEBHOOK_LIMITS.rotationGraceMs);
          if (!until) throw notFound('webhook', { programId, webhookId });
          return { view: { webhookId, previousSecretValidUntil: until.toISOString() }, secret };
        },
      });
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/webhooks/:webhookId/deliveries',
      summary: "A webhook's deliveries, newest first, with their attempts (?status=&limit=&before=)",
      roles: [...MANAGERS, ...READERS],
      params: webhookParams,
      query: webhookDeliveriesQuery,
      responses: { 200: webhookDeliveriesResponse },
    },
    async (req) => {
      const { programId, webhookId } = req.params;
      const q = req.query;
      if ((await getWebhook(ctx.pool, programId, webhookId))?.status !== 'active')
        throw notFound('webhook', { programId, webhookId });
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
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/webhooks/:webhookId/deliveries/:deliveryId/redeliver',
      summary: 'Send a delivered or failed delivery again: a new series of attempts, the same event id',
      roles: ['support'],
      params: webhookDeliveryParams,
      // required as on every POST; a redelivery asked twice while pending is one series
      idempotency: 'required',
      responses: {
        200: z.object({
          deliveryId: z.string(),
          status: z.literal('pending'),
          redelivery: z.enum(['started', 'already_pending']),
        }),
      },
      errors: { 409: ['idempotency_key_reused'] },
    },
    async (req) => {
      const { programId, webhookId, deliveryId } = req.params;
      if ((await getWebhook(ctx.pool, programId, webhookId))?.status !== 'active')
        throw notFound('webhook', { programId, webhookId });
      const r = await redeliver(ctx.pool, webhookId, deliveryId);
      if (r === 'not_found') throw notFound('delivery', { webhookId, deliveryId });
      // deleted between the two reads: gone, as above
      if (r === 'webhook_deleted') throw notFound('webhook', { programId, webhookId });
      return {
        deliveryId,
        status: 'pending' as const,
        redelivery: r === 'ok' ? ('started' as const) : ('already_pending' as const),
      };
    },
  );
}
