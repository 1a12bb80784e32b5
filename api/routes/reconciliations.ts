import type { FastifyInstance } from 'fastify';
import { latestRun } from '../../db/reconciliation';
import { ApiError, notFound } from '../../domain/errors';
import { SA } from '../../domain/search-attributes';
import { programParams, reconciliationParams, runReconciliationSchema } from '../../domain/schemas';
import { reconciliationWorkflowId } from '../../domain/workflow-ids';
import { reconcileProgramDay } from '../../workflows/reconciliation';
import { z } from 'zod';
import { requireTemporal, type ApiContext } from '../context';
import { route } from '../route';
import { idempotent, optionalIdempotencyKey } from '../validate';

const reportAnswer = z
  .object({})
  .loose()
  .describe("the day's report: redemptions against billing credits, postings against the GL");

/** The daily reconciliation's reports (finance), and a run on demand. */
export function reconciliationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/reconciliations/:date',
      summary: "A day's reconciliation report: redemptions against billing credits, postings against the GL",
      roles: ['finance', 'controller'],
      params: reconciliationParams,
      responses: { 200: reportAnswer },
    },
    async (req) => {
      const { programId, date } = req.params;
      await ctx.programs.get(programId);
      const report = await latestRun(ctx.pool, programId, date);
      if (!report) throw notFound('reconciliation', { programId, date });
      return report;
    },
  );

  // Runs the day's reconciliation now (the schedule runs it daily) and answers its report.
  // API.md lists no Idempotency-Key for it: optional, and when sent, a replay answers the first
  // report (docs/access.md, "Idempotency"); without one, each call answers the run's report now.
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/reconciliations',
      summary: "Run a day's reconciliation now and answer its report",
      roles: ['finance'],
      params: programParams,
      body: runReconciliationSchema,
      idempotency: 'optional',
      responses: { 200: reportAnswer },
      errors: { 409: ['idempotency_key_reused', 'idempotency_request_in_progress'] },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const { date } = body;
      const key = optionalIdempotencyKey(req);
      const request = { scope: programId, principal: principal.name, route: 'reconciliations', request: body, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        await ctx.programs.get(programId);
        const t = requireTemporal(ctx, 'the reconciliation');
        try {
          const report = await t.client.workflow.execute(reconcileProgramDay, {
            workflowId: reconciliationWorkflowId(programId, date),
            taskQueue: t.taskQueue,
            workflowIdConflictPolicy: 'USE_EXISTING',
            args: [{ programId, date }],
            typedSearchAttributes: [
              { key: SA.program, value: programId },
              { key: SA.period, value: date },
            ],
            memo: { summary: `${date}: reconciliation run by ${principal.name}` },
          });
          return { status: 200, body: report };
        } catch (e) {
          throw new ApiError(503, 'loyalty_unavailable', 'the reconciliation did not finish', {
            cause: (e as Error).message,
          });
        }
      });
    },
  );
}
