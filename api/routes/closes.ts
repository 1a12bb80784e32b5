import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { recordDecisionRequest } from '../../db/approval-requests';
import { checkCanClose, getClose, refuseOverrideOutsideBounds } from '../../db/close';
import { buildCloseReport } from '../../db/close-report';
import { reportToCsv, reportToHtml } from '../../domain/close-report';
import { ApiError, notFound } from '../../domain/errors';
import { SA } from '../../domain/search-attributes';
import { closeParams, programParams, reportQuery, startCloseSchema } from '../../domain/schemas';
import { closeWorkflowId, DEFAULT_CLOSE_APPROVAL } from '../../domain/workflow-ids';
import { approveUpdate, closeQuarter, progressQuery } from '../../workflows/close';
import { z } from 'zod';
import { answerWithin, requireTemporal, rethrowUpdateRefusal, stillRunning, type ApiContext } from '../context';
import { inProgressAnswer, route } from '../route';
import { idempotencyKey, idempotent } from '../validate';

const closeStarted = z
  .object({
    programId: z.string(),
    period: z.string(),
    status: z.string(),
    startedBy: z.string().nullable(),
    workflowId: z.string(),
  })
  .loose();
const closeApproved = z
  .object({ programId: z.string(), period: z.string(), status: z.string(), approvedBy: z.string().nullable() })
  .loose();
const closeView = z.object({ programId: z.string(), period: z.string(), status: z.string(), step: z.string() }).loose();

/** The quarterly close (finance starts, a controller approves) and its disclosure report. */
export function closeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const temporal = () => requireTemporal(ctx, 'the close');

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/closes',
      summary: 'Start the close of an ended quarter (freeze, re-estimate breakage, propose); quarters close in order',
      description:
        "An override outside a cohort's bounds R/N..(R + outstanding)/N: 422 override_out_of_bounds, nothing written.",
      roles: ['finance'],
      params: programParams,
      body: startCloseSchema,
      idempotency: 'required',
      responses: {
        202: closeStarted.describe('started'),
        200: closeStarted.describe('already started (or done): its status'),
      },
      errors: {
        409: ['idempotency_key_reused', 'idempotency_request_in_progress', 'period_not_ended', 'period_out_of_order'],
        422: ['override_out_of_bounds', 'amount_out_of_range'],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      const request = { scope: programId, principal: principal.name, route: 'closes', request: body, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        await ctx.programs.get(programId);
        const existing = await checkCanClose(ctx.pool, programId, body.period, new Date());
        const workflowId = closeWorkflowId(programId, body.period);
        if (existing)
          return {
            status: 200,
            body: {
              programId,
              period: body.period,
              status: existing.status,
              startedBy: existing.startedBy,
              workflowId,
            },
          };
        const t = temporal();
        if (body.redemptionRateOverride)
          await refuseOverrideOutsideBounds(ctx.pool, programId, body.period, body.redemptionRateOverride.rate);
        // A cancelled close records its status just before its workflow ends: a new close started in
        // between would join that run (USE_EXISTING) and end with it. Let the old run finish first.
        if ((await getClose(ctx.pool, programId, body.period))?.status === 'cancelled')
          await endOfCancelledRun(t.client.workflow.getHandle(workflowId));
        // the workflow takes who started it and the override from this row, verified (workflows/close.ts)
        const override = body.redemptionRateOverride ?? null;
        const startRequestId = await recordDecisionRequest(ctx.pool, principal, {
          kind: 'close_start',
          programId,
          subject: body.period,
          workflowId,
          decision: 'request',
          comment: null,
          detail: { override },
        });
        await t.client.workflow.start(closeQuarter, {
          workflowId,
          taskQueue: t.taskQueue,
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [
            {
              programId,
              period: body.period,
              startedBy: principal.name,
              override,
              startRequestId,
              ...(t.closeApproval ?? DEFAULT_CLOSE_APPROVAL),
            },
          ],
          memo: { summary: `${body.period}: started by ${principal.name}` },
          typedSearchAttributes: [
            { key: SA.program, value: programId },
            { key: SA.period, value: body.period },
          ],
        });
        return {
          status: 202,
          body: { programId, period: body.period, status: 'started', startedBy: principal.name, workflowId },
        };
      });
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/closes/:period/approve',
      summary: 'Approve the proposed close (not its starter): book, post to the GL, lock',
      roles: ['controller'],
      decision: true,
      params: closeParams,
      idempotency: 'required',
      responses: { 200: closeApproved, 202: inProgressAnswer },
      errors: {
        403: ['segregation_of_duties'],
        409: ['idempotency_key_reused', 'idempotency_request_in_progress', 'close_not_awaiting_approval'],
      },
    },
    async (req, reply, principal) => {
      const { programId, period } = req.params;
      const key = idempotencyKey(req);
      const request = {
        scope: programId,
        principal: principal.name,
        route: 'closes.approve',
        request: { period },
        key,
      };
      return idempotent(ctx.pool, req, reply, request, async () => {
        const close = await getClose(ctx.pool, programId, period);
        if (!close) throw notFound('close', { programId, period });
        if (close.startedBy === principal.name)
          throw new ApiError(403, 'segregation_of_duties', 'the person who started the close cannot approve it', {
            startedBy: close.startedBy,
          });
        if (close.status === 'locked')
          return {
            status: 200,
            body: { programId, period, status: 'locked', approvedBy: close.approvedBy, glEntryId: close.glEntryId },
          };
        if (close.status !== 'proposed' && close.status !== 'escalated') {
          throw new ApiError(
            409,
            'close_not_awaiting_approval',
            `the close of ${period} is ${close.status}: nothing to approve`,
            { status: close.status },
          );
        }
        try {
          const t = temporal();
          // the workflow takes only the request's id, and checks it against the database (issue 14, item 1)
          const requestId = await recordDecisionRequest(ctx.pool, principal, {
            kind: 'close_approval',
            programId,
            subject: period,
            workflowId: close.workflowId,
            decision: 'approve',
            comment: null,
          });
          const r = await answerWithin(
            t.client.workflow
              .getHandle(close.workflowId)
              .executeUpdate(approveUpdate, { args: [{ approver: principal.name, requestId }] }),
            ctx.workflowWaitMs,
          );
          // no answer in time: the decision request is recorded; the close's GET shows when it counted
          if (!r)
            return stillRunning(close.workflowId, `/v1/programs/${encodeURIComponent(programId)}/closes/${period}`, {
              programId,
              period,
            });
          return {
            status: 200,
            body: { programId, period, status: r.status, approvedBy: principal.name, glEntryId: r.glEntryId },
          };
        } catch (e) {
          if (e instanceof WorkflowNotFoundError)
            throw new ApiError(409, 'close_not_awaiting_approval', `the close of ${period} is ${close.status}`);
          rethrowUpdateRefusal(e, 'close_not_awaiting_approval');
        }
      });
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/closes/:period',
      summary: "A close's status and step",
      roles: ['finance', 'controller'],
      params: closeParams,
      responses: { 200: closeView },
    },
    async (req) => {
      const { programId, period } = req.params;
      const close = await getClose(ctx.pool, programId, period);
      if (!close) {
        // started (POST answered 202) but not yet frozen: the workflow writes the row at its first step
        const starting = await startingClose(ctx, programId, period);
        if (starting) return starting;
        throw notFound('close', { programId, period });
      }
      if (close.status === 'locked' || close.status === 'cancelled' || !ctx.temporal) {
        const { report: _report, ...rest } = close;
        return { ...rest, step: close.status };
      }
      // the workflow's step first, the row after: each step is reached after the activity before it
      // recorded its part (the proposal before awaiting_approval), so the row read second is at least
      // as far as the step says; read the other way round, a step could come with the row of before
      const progress = await ctx.temporal.client.workflow
        .getHandle(close.workflowId)
        .query(progressQuery)
        .catch(() => null);
      const { report: _report, ...rest } = (await getClose(ctx.pool, programId, period)) ?? close;
      return { ...rest, step: progress?.step ?? close.status };
    },
  );

  // A locked period's report is the one stored at lock and never changes; before that, the books as they are (db/close-report.ts).
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/closes/:period/report',
      summary: 'The disclosure report (?format=json|csv|html)',
      roles: ['finance', 'controller'],
      params: closeParams,
      query: reportQuery,
      responses: {
        200: {
          content: {
            'application/json': z.object({}).loose(),
            'text/csv': z.string(),
            'text/html': z.string(),
          },
          description: 'the report: JSON by default, CSV or HTML with ?format=',
        },
      },
      errors: { 409: ['close_starting'] },
    },
    async (req, reply) => {
      const { programId, period } = req.params;
      const { format } = req.query;
      const program = await ctx.programs.get(programId);
      const close = await getClose(ctx.pool, programId, period);
      if (!close) {
        if (await startingClose(ctx, programId, period))
          throw new ApiError(
            409,
            'close_starting',
            'the close is starting: its report follows once the period is frozen',
            {
              programId,
              period,
              retryAfterMs: 1000,
            },
          );
        throw notFound('close', { programId, period });
      }
      // a locked close's stored report touches no journal; the books before that run on the report pool
      const report = await buildCloseReport(ctx.reportPool, close);
      if (format === 'csv') return reply.type('text/csv; charset=utf-8').send(reportToCsv(report));
      if (format === 'html')
        return reply.type('text/html; charset=utf-8').send(reportToHtml(report, program.currencyDigits));
      return report;
    },
  );
}

/** How long a new close waits for the run of a cancelled one to end (it ends right after recording it). */
const CANCELLED_RUN_END_MS = 10_000;

async function endOfCancelledRun(handle: { result(): Promise<unknown> }): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    handle.result().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CANCELLED_RUN_END_MS);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * A close whose start was accepted (202) and whose workflow has not yet written its row (the freeze,
 * its first step): its workflow is running. Answered as `starting` rather than 404, so that what was
 * just started is there to read; null when no such workflow runs (or Temporal does not answer).
 */
async function startingClose(ctx: ApiContext, programId: string, period: string) {
  if (!ctx.temporal) return null;
  const workflowId = closeWorkflowId(programId, period);
  // no such workflow: no close; Temporal not answering is not "no close" (503 through the error handler)
  const d = await ctx.temporal.client.workflow
    .getHandle(workflowId)
    .describe()
    .catch((e: unknown) => {
      if (e instanceof WorkflowNotFoundError) return null;
      throw e;
    });
  if (d?.status.name !== 'RUNNING') return null;
  return { programId, period, status: 'starting', step: 'starting', workflowId, startedAt: d.startTime.toISOString() };
}
