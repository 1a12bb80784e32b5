import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { fromDbError } from '../../db/errors';
import { ApiError, detailsFor5xx } from '../../domain/errors';
import { accrualBatchItemSchema, accrualBatchSchema, LIMITS, programParams } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { route } from '../route';
import { isUnavailable } from '../unavailable';
import { zodIssues } from '../validate';
import { accrueOne } from './accruals';

const itemResult = z
  .object({
    status: z.number().int().describe('the status the accrual alone would answer: 201, 200 (replayed), or 4xx/5xx'),
    replayed: z
      .literal(true)
      .optional()
      .describe('the answer stored under this idempotencyKey (or this invoice), replayed'),
    error: z.object({ code: z.string(), message: z.string(), details: z.object({}).loose() }).optional(),
  })
  .loose()
  .describe("the accrual's answer (as POST .../accruals answers it) with its status, or its error");
const batchAnswer = z.object({ results: z.array(itemResult).describe('one per item, in the items’ order') });

type ItemResult = { status: number; replayed?: true; error?: { code: string; message: string; details: object } };

const failure = (e: ApiError): ItemResult => ({
  status: e.statusCode,
  // a 5xx carries no text of the database's or the driver's (domain/errors.ts)
  error: { code: e.code, message: e.message, details: e.statusCode >= 500 ? detailsFor5xx(e.details) : e.details },
});

/**
 * Billing's end-of-day settlements and backfills: up to 1,000 accruals in one request (API.md,
 * "Integration surface"). Each item is the single accrual (api/routes/accruals.ts accrueOne): its own
 * idempotency key in the body, the same key scope and request hash (a key sent to either route
 * replays on the other), the same codes; one bad item fails no other. The items go to the accrual
 * batcher together, so they are written in the ledger's batches.
 */
export function accrualBatchRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/accruals/batch',
      summary:
        'Report up to 1,000 purchases at once, each with its own idempotencyKey: a result per item, in order; one bad item fails no other',
      roles: ['billing'],
      params: programParams,
      body: accrualBatchSchema,
      bodyLimit: LIMITS.maxBatchBodyBytes,
      responses: { 200: batchAnswer },
    },
    async (req, _reply, principal) => {
      const { programId } = req.params;
      await ctx.programs.get(programId); // no such program: the batch's 404, before any item
      const results = await Promise.all(
        req.body.accruals.map(async (raw): Promise<ItemResult> => {
          const parsed = accrualBatchItemSchema.safeParse(raw);
          if (!parsed.success)
            return failure(
              new ApiError(400, 'validation_failed', 'invalid accrual', {
                issues: zodIssues(parsed.error),
              }),
            );
          const { idempotencyKey, ...body } = parsed.data;
          try {
            const r = await accrueOne(ctx, programId, body, idempotencyKey, principal.name);
            return { status: r.status, ...(r.replayed ? { replayed: true as const } : {}), ...r.body };
          } catch (e) {
            // a refusal the accrual raised before its write (or a 5xx): counted as the single route's
            // answers are, and a 5xx logged with its cause, which its answer does not carry
            ctx.metrics.accruals.inc({ outcome: 'refused' });
            const api = e instanceof ApiError ? e : fromDbError(e as { code?: string; message: string });
            if (api && api.statusCode < 500) return failure(api);
            req.log.warn({ err: e, invoiceId: body.invoiceId }, 'an accrual of a batch was not taken');
            if (api) return failure(api);
            // PostgreSQL or the pool did not answer: 503 as the single route answers it, retried with its key
            if (isUnavailable(e))
              return failure(
                new ApiError(503, 'loyalty_unavailable', 'the ledger database did not answer; retry with the same key'),
              );
            return failure(new ApiError(500, 'internal_error', 'internal error; it has been logged'));
          }
        }),
      );
      return { results };
    },
  );
}
