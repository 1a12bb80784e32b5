import { recordDecisionRequest } from '../../db/approval-requests';
import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { programLockedUntil } from '../../db/programs';
import { findRedemption, findRedemptionForAdjustment, redemptionStatus } from '../../db/redemptions';
import { ApiError, notFound } from '../../domain/errors';
import { rateToMillionths } from '../../domain/money';
import {
  chargebackSchema,
  invoiceAdjustmentSchema,
  invoiceParams,
  programParams,
  redemptionSchema,
} from '../../domain/schemas';
import { SA as keys } from '../../domain/search-attributes';
import { invoiceAdjustmentWorkflowId, redemptionWorkflowId } from '../../domain/workflow-ids';
import { invoiceAdjustment } from '../../workflows/invoice-adjustment';
import { chargebackSignal, outcomeUpdate, redemptionSaga } from '../../workflows/redemption';
import { answerWithin, requireTemporal, stillRunning, type ApiContext } from '../context';
import { idempotencyKey, idempotent, requestHash } from '../validate';
import { z } from 'zod';
import { inProgressAnswer, route } from '../route';
import { claimNaturalKey, takeNaturalKey } from '../../db/idempotency';
import { notInFuture } from './accruals';

const outcomeAnswer = z
  .object({ status: z.string(), workflowId: z.string() })
  .loose()
  .describe('applied (the credit is in billing) or declined with a reason');
const redemptionView = z.object({ workflowId: z.string() }).loose().describe("the invoice's redemption, current");
const chargebackAnswer = z.object({
  accepted: z.literal(true),
  invoiceId: z.string(),
  chargebackId: z.string(),
  status: z.enum(['opened', 'won', 'lost']),
});
const invoiceAdjustmentDone = z.object({ status: z.literal('done'), workflowId: z.string() }).loose();
const invoiceAdjustmentRunning = z
  .object({ status: z.literal('in_progress'), invoiceId: z.string(), adjustmentId: z.string(), workflowId: z.string() })
  .describe('not done within a few seconds: its workflow goes on (sent again, the request answers what it is then)');

/** A redemption (and its quote) dated in a closed (frozen or locked) period: 409 period_locked. */
export async function notInClosedPeriod(ctx: ApiContext, programId: string, occurredAt: string): Promise<void> {
  const lockedUntil = await programLockedUntil(ctx.pool, programId);
  if (lockedUntil && new Date(occurredAt) < lockedUntil) {
    throw new ApiError(409, 'period_locked', 'occurredAt falls in a closed (frozen or locked) period', {
      occurredAt,
      openFrom: lockedUntil.toISOString(),
    });
  }
}

export function redemptionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const temporal = () => requireTemporal(ctx, 'a redemption');

  // Starts (or finds, for the same invoice) the saga and answers once the credit is applied in
  // billing or the redemption is declined: an update sent with the start, answered by the workflow.
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/redemptions',
      summary: 'Redeem points against an invoice: answers applied (credit in billing) or declined with a reason',
      roles: ['billing'],
      params: programParams,
      body: redemptionSchema,
      idempotency: 'required',
      responses: { 201: outcomeAnswer, 202: inProgressAnswer },
      errors: {
        409: ['idempotency_key_reused', 'idempotency_request_in_progress', 'redemption_exists', 'period_locked'],
        422: ['redemption_before_first_earn', 'amount_out_of_range', 'occurred_at_in_future'],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      // the same clock-skew bound as an accrual's (400 validation_failed)
      notInFuture(body.occurredAt);
      const request = { scope: programId, principal: principal.name, route: 'redemptions', request: body, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        const program = await ctx.programs.get(programId);
        await notInClosedPeriod(ctx, programId, body.occurredAt);
        const t = temporal();
        const workflowId = redemptionWorkflowId(programId, body.invoiceId);
        await claimInvoice(t, programId, body, principal.name, workflowId);
        const rules = program.rules;
        const start = new WithStartWorkflowOperation(redemptionSaga, {
          workflowId,
          taskQueue: t.taskQueue,
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [
            {
              programId,
              invoiceId: body.invoiceId,
              redemptionId: randomUUID(),
              memberId: body.memberId,
              points: body.points,
              invoiceTotalMinor: body.invoiceTotalMinor,
              occurredAt: new Date(body.occurredAt).toISOString(),
              jurisdiction: body.jurisdiction ?? null,
              rules: {
                pointValueMinor: rules.pointValueMinor,
                minPoints: rules.redemption.minPoints,
                maxInvoiceShareMillionths: rateToMillionths(rules.redemption.maxInvoiceShare).toString(),
                cohortOrder: rules.redemption.cohortOrder,
                chargebackWindow: rules.chargebackWindow,
              },
            },
          ],
          memo: { summary: `redemption of ${body.points} pts on ${body.invoiceId} for ${body.memberId}` },
          typedSearchAttributes: [
            { key: keys.program, value: programId },
            { key: keys.member, value: body.memberId },
            { key: keys.invoice, value: body.invoiceId },
          ],
        });
        const unavailable = (e?: unknown) =>
          new ApiError(503, 'loyalty_unavailable', 'the redemption could not be started; retry with the same invoice', {
            ...(e ? { cause: (e as Error).message } : {}),
          });
        let outcome;
        let failed: unknown = null;
        try {
          outcome = await answerWithin(
            t.client.workflow.executeUpdateWithStart(outcomeUpdate, { startWorkflowOperation: start }),
            ctx.workflowWaitMs,
          );
        } catch (e) {
          // the update's call failed (Temporal busy, its RPC deadline): if the saga runs all the same,
          // it is in progress like an answer that came too late; if not, nothing started (503)
          failed = e;
        }
        if (!outcome) {
          // no answer in time (no worker, a slow billing): if the saga has started, where to poll;
          // if not even that, nothing was started and the request may be sent again
          // (the start's own handle resolves only with the update's answer: ask Temporal for the run)
          const started = await answerWithin(
            t.client.workflow
              .getHandle(workflowId)
              .describe()
              .then(() => true),
            ctx.workflowWaitMs,
          ).catch(() => null);
          if (!started) throw unavailable(failed ?? undefined);
          const poll = `/v1/programs/${encodeURIComponent(programId)}/redemptions/${encodeURIComponent(body.invoiceId)}`;
          return stillRunning(workflowId, poll, { invoiceId: body.invoiceId });
        }
        ctx.metrics.redemptions.inc({ status: outcome.status });
        // dated before the member's first earn: the hold (the database) refused it, nothing held or
        // written; bad input, answered 422 (not stored: the invoice may be redeemed again)
        if (outcome.status === 'declined' && outcome.reason === 'redemption_before_first_earn')
          throw new ApiError(422, 'redemption_before_first_earn', "occurredAt is before the member's first earn", {
            occurredAt: body.occurredAt,
            memberId: body.memberId,
            workflowId,
          });
        if (outcome.status === 'applied') ctx.metrics.redeemedPoints.inc(outcome.pointsApplied ?? 0);
        return { status: 201, body: { ...outcome, workflowId } };
      });
    },
  );

  /**
   * One invoice has one redemption, whatever the Idempotency-Key: the same request by the same
   * principal under a new key answers the existing outcome (the saga's update, USE_EXISTING);
   * another body, or another principal, is 409 redemption_exists, unless that redemption ended
   * declined (nothing held, nothing written): then the invoice may be redeemed again.
   */
  async function claimInvoice(
    t: ReturnType<typeof temporal>,
    programId: string,
    body: { invoiceId: string; memberId: string; points: number; invoiceTotalMinor: number },
    principal: string,
    workflowId: string,
  ): Promise<void> {
    // what makes the redemption: its member, points and invoice total (a retry may carry a new
    // occurredAt; the saga of the first request is the one that runs)
    const request = { memberId: body.memberId, points: body.points, invoiceTotalMinor: body.invoiceTotalMinor };
    const natural = {
      programId,
      kind: 'redemption' as const,
      naturalId: body.invoiceId,
      requestHash: requestHash('redemptions', request),
      principal,
      request,
    };
    const claimed = await claimNaturalKey(ctx.pool, { ...natural, subject: null });
    if (claimed !== 'other') return;
    const status = await redemptionStatus(ctx.pool, programId, body.invoiceId);
    let ended = status === 'declined';
    if (status === null) {
      // no row: declined before anything was held (its run closed), or its saga is still starting
      const running = await t.client.workflow
        .getHandle(workflowId)
        .describe()
        .then((d) => d.status.name === 'RUNNING')
        .catch((e: unknown) => {
          if (e instanceof WorkflowNotFoundError) return false;
          throw e;
        });
      ended = !running;
    }
    if (!ended)
      throw new ApiError(409, 'redemption_exists', 'this invoice has a redemption for another request', {
        invoiceId: body.invoiceId,
      });
    await takeNaturalKey(ctx.pool, natural);
  }

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/redemptions/:invoiceId',
      summary: "An invoice's redemption, current",
      roles: ['billing', 'support', 'finance', 'controller'],
      params: invoiceParams,
      responses: { 200: redemptionView },
    },
    async (req) => {
      const { programId, invoiceId } = req.params;
      const redemption = await findRedemption(ctx.pool, programId, invoiceId);
      if (!redemption) throw notFound('redemption', { programId, invoiceId });
      return { ...redemption, workflowId: redemptionWorkflowId(programId, invoiceId) };
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/chargebacks',
      summary: 'A chargeback on a redeemed invoice: opened freezes, won releases, lost reverses',
      roles: ['billing'],
      params: programParams,
      body: chargebackSchema,
      idempotency: 'required',
      responses: { 202: chargebackAnswer },
      errors: {
        409: [
          'idempotency_key_reused',
          'idempotency_request_in_progress',
          'chargeback_id_reused',
          'chargeback_window_closed',
        ],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      const request = { scope: programId, principal: principal.name, route: 'chargebacks', request: body, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        if ((await redemptionStatus(ctx.pool, programId, body.invoiceId)) === null)
          throw notFound('redemption', { programId, invoiceId: body.invoiceId });
        // a chargebackId belongs to one invoice: on another it is 409 chargeback_id_reused (its
        // claw-back, refund `chargeback:<chargebackId>`, would otherwise find the first one's)
        await claimNaturalKey(ctx.pool, {
          programId,
          kind: 'chargeback',
          naturalId: body.chargebackId,
          subject: body.invoiceId,
          requestHash: null,
          principal: principal.name,
          request: null,
        });
        const workflowId = redemptionWorkflowId(programId, body.invoiceId);
        // the saga acts on the signal only once it verified this row (workflows/redemption.ts)
        const requestId = await recordDecisionRequest(ctx.pool, principal, {
          kind: 'chargeback',
          programId,
          subject: body.invoiceId,
          workflowId,
          decision: 'request',
          comment: null,
          detail: { chargebackId: body.chargebackId, status: body.status },
        });
        try {
          await temporal()
            .client.workflow.getHandle(workflowId)
            .signal(chargebackSignal, { chargebackId: body.chargebackId, status: body.status, requestId });
        } catch (e) {
          if (e instanceof WorkflowNotFoundError)
            throw new ApiError(409, 'chargeback_window_closed', 'the redemption is past its chargeback window', {
              invoiceId: body.invoiceId,
            });
          throw e;
        }
        return {
          status: 202,
          body: { accepted: true, invoiceId: body.invoiceId, chargebackId: body.chargebackId, status: body.status },
        };
      });
    },
  );

  // Billing lowered an invoice that has a redemption: the points beyond what the new total allows go
  // back to the member (its own workflow; see workflows/invoice-adjustment.ts). Answers with the
  // result once done, or 202 with the workflow id if it takes longer than a few seconds.
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/redemptions/:invoiceId/adjustments',
      summary: 'An invoice lowered after its redemption: the excess points go back, in proportion',
      roles: ['billing'],
      params: invoiceParams,
      body: invoiceAdjustmentSchema,
      idempotency: 'required',
      responses: { 200: invoiceAdjustmentDone, 202: invoiceAdjustmentRunning },
      errors: {
        409: [
          'idempotency_key_reused',
          'idempotency_request_in_progress',
          'adjustment_exists',
          'redemption_not_applied',
        ],
        422: ['amount_out_of_range'],
      },
    },
    async (req, reply, principal) => {
      const { programId, invoiceId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req); // the adjustmentId makes it act once
      const request = {
        scope: programId,
        principal: principal.name,
        route: 'redemptions.adjustments',
        request: { invoiceId, ...body },
        key,
      };
      return idempotent(ctx.pool, req, reply, request, async () => {
        const program = await ctx.programs.get(programId);
        const redemption = await findRedemptionForAdjustment(ctx.pool, programId, invoiceId, body.adjustmentId);
        if (!redemption) throw notFound('redemption', { programId, invoiceId });
        const recorded = redemption.recordedInvoiceTotalMinor;
        if (recorded !== null && Number(recorded) !== body.invoiceTotalMinor) {
          throw new ApiError(409, 'adjustment_exists', 'this adjustmentId was recorded with another invoice total', {
            adjustmentId: body.adjustmentId,
            invoiceTotalMinor: Number(recorded),
          });
        }
        const workflowId = invoiceAdjustmentWorkflowId(programId, invoiceId, body.adjustmentId);
        const t = temporal();
        let handle;
        try {
          handle = await t.client.workflow.start(invoiceAdjustment, {
            workflowId,
            taskQueue: t.taskQueue,
            workflowIdConflictPolicy: 'USE_EXISTING',
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            args: [
              {
                programId,
                invoiceId,
                redemptionId: redemption.redemptionId,
                adjustmentId: body.adjustmentId,
                invoiceTotalMinor: body.invoiceTotalMinor,
                maxInvoiceShareMillionths: rateToMillionths(program.rules.redemption.maxInvoiceShare).toString(),
                occurredAt: new Date(body.occurredAt).toISOString(),
              },
            ],
            memo: { summary: `invoice ${invoiceId} lowered to ${body.invoiceTotalMinor}` },
            typedSearchAttributes: [
              { key: keys.program, value: programId },
              { key: keys.invoice, value: invoiceId },
            ],
          });
        } catch (e) {
          if ((e as Error).name !== 'WorkflowExecutionAlreadyStartedError') {
            throw new ApiError(
              503,
              'loyalty_unavailable',
              'the adjustment could not be started; retry with the same adjustmentId',
              { cause: (e as Error).message },
            );
          }
          handle = t.client.workflow.getHandle<typeof invoiceAdjustment>(workflowId); // done before: answer its result
        }
        const result = await resultWithin(handle.result(), ADJUSTMENT_WAIT_MS);
        // an answer that the work is still running is not kept: sent again, the request answers what it is then
        if (!result)
          return {
            status: 202,
            body: { status: 'in_progress', invoiceId, adjustmentId: body.adjustmentId, workflowId },
            keep: false,
          };
        return { status: 200, body: { status: 'done', ...result, workflowId } };
      });
    },
  );
}

/** How long the adjustment endpoint waits for the workflow before answering 202. */
const ADJUSTMENT_WAIT_MS = 5_000;

async function resultWithin<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
