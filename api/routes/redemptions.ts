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
import { requireTemporal, type ApiContext } from '../context';
import { idempotencyKey, parse } from '../validate';

export function redemptionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const temporal = () => requireTemporal(ctx, 'a redemption');

  // Starts (or finds, for the same invoice) the saga and answers once the credit is applied in
  // billing or the redemption is declined: an update sent with the start, answered by the workflow.
  app.post('/v1/programs/:programId/redemptions', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['billing']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(redemptionSchema, req.body, 'redemption');
    idempotencyKey(req); // required; one invoice has one redemption, whatever the key
    const program = await ctx.programs.get(programId);
    const lockedUntil = await programLockedUntil(ctx.pool, programId);
    if (lockedUntil && new Date(body.occurredAt) < lockedUntil) {
      throw new ApiError(409, 'period_locked', 'occurredAt falls in a closed (frozen or locked) period', {
        occurredAt: body.occurredAt,
        openFrom: lockedUntil.toISOString(),
      });
    }
    const t = temporal();
    const workflowId = redemptionWorkflowId(programId, body.invoiceId);
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
    let outcome;
    try {
      outcome = await t.client.workflow.executeUpdateWithStart(outcomeUpdate, { startWorkflowOperation: start });
    } catch (e) {
      throw new ApiError(
        503,
        'loyalty_unavailable',
        'the redemption could not be started; retry with the same invoice',
        { cause: (e as Error).message },
      );
    }
    ctx.metrics.redemptions.inc({ status: outcome.status });
    if (outcome.status === 'applied') ctx.metrics.redeemedPoints.inc(outcome.pointsApplied ?? 0);
    return reply.status(201).send({ ...outcome, workflowId });
  });

  app.get('/v1/programs/:programId/redemptions/:invoiceId', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['billing', 'support', 'finance', 'controller']);
    const { programId, invoiceId } = parse(invoiceParams, req.params, 'path');
    const redemption = await findRedemption(ctx.pool, programId, invoiceId);
    if (!redemption) throw notFound('redemption', { programId, invoiceId });
    return { ...redemption, workflowId: redemptionWorkflowId(programId, invoiceId) };
  });

  app.post('/v1/programs/:programId/chargebacks', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['billing']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(chargebackSchema, req.body, 'chargeback');
    idempotencyKey(req);
    if ((await redemptionStatus(ctx.pool, programId, body.invoiceId)) === null)
      throw notFound('redemption', { programId, invoiceId: body.invoiceId });
    try {
      await temporal()
        .client.workflow.getHandle(redemptionWorkflowId(programId, body.invoiceId))
        .signal(chargebackSignal, { chargebackId: body.chargebackId, status: body.status });
    } catch (e) {
      if (e instanceof WorkflowNotFoundError)
        throw new ApiError(409, 'chargeback_window_closed', 'the redemption is past its chargeback window', {
          invoiceId: body.invoiceId,
        });
      throw e;
    }
    return reply
      .status(202)
      .send({ accepted: true, invoiceId: body.invoiceId, chargebackId: body.chargebackId, status: body.status });
  });

  // Billing lowered an invoice that has a redemption: the points beyond what the new total allows go
  // back to the member (its own workflow; see workflows/invoice-adjustment.ts). Answers with the
  // result once done, or 202 with the workflow id if it takes longer than a few seconds.
  app.post('/v1/programs/:programId/redemptions/:invoiceId/adjustments', async (req, reply) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['billing']);
    const { programId, invoiceId } = parse(invoiceParams, req.params, 'path');
    const body = parse(invoiceAdjustmentSchema, req.body, 'invoice adjustment');
    idempotencyKey(req); // required; the adjustmentId makes it act once
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
    if (!result)
      return reply.status(202).send({ status: 'in_progress', invoiceId, adjustmentId: body.adjustmentId, workflowId });
    return reply.status(200).send({ status: 'done', ...result, workflowId });
  });
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
