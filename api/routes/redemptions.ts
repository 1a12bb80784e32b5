import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { ApiError, notFound } from '../../domain/errors';
import { rateToMillionths } from '../../domain/money';
import { chargebackSchema, invoiceParams, programParams, redemptionSchema } from '../../domain/schemas';
import { SEARCH_ATTRIBUTES } from '../../domain/workflow-ids';
import { chargebackSignal, outcomeUpdate, redemptionSaga } from '../../workflows/redemption';
import type { ApiContext } from '../context';
import { idempotencyKey, parse } from '../validate';

export const redemptionWorkflowId = (programId: string, invoiceId: string) => `redemption:${programId}:${invoiceId}`;
const keys = {
  program: defineSearchAttributeKey(SEARCH_ATTRIBUTES.program, SearchAttributeType.KEYWORD),
  member: defineSearchAttributeKey(SEARCH_ATTRIBUTES.member, SearchAttributeType.KEYWORD),
  invoice: defineSearchAttributeKey(SEARCH_ATTRIBUTES.invoice, SearchAttributeType.KEYWORD),
};

export function redemptionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const temporal = () => {
    if (!ctx.temporal) throw new ApiError(503, 'loyalty_unavailable', 'redemptions need Temporal, which this API is not connected to');
    return ctx.temporal;
  };

  // Starts (or finds, for the same invoice) the saga and answers once the credit is applied in
  // billing or the redemption is declined: an update sent with the start, answered by the workflow.
  app.post('/v1/programs/:programId/redemptions', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['billing']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(redemptionSchema, req.body, 'redemption');
    idempotencyKey(req); // required; one invoice has one redemption, whatever the key
    const program = await ctx.programs.get(programId);
    const t = temporal();
    const workflowId = redemptionWorkflowId(programId, body.invoiceId);
    const rules = program.rules;
    const start = new WithStartWorkflowOperation(redemptionSaga, {
      workflowId,
      taskQueue: t.taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [{
        programId, invoiceId: body.invoiceId, redemptionId: randomUUID(), memberId: body.memberId, points: body.points,
        invoiceTotalMinor: body.invoiceTotalMinor, occurredAt: new Date(body.occurredAt).toISOString(), jurisdiction: body.jurisdiction ?? null,
        rules: {
          pointValueMinor: rules.pointValueMinor, minPoints: rules.redemption.minPoints,
          maxInvoiceShareMillionths: rateToMillionths(rules.redemption.maxInvoiceShare).toString(),
          cohortOrder: rules.redemption.cohortOrder, chargebackWindow: rules.chargebackWindow,
        },
      }],
      memo: { summary: `redemption of ${body.points} pts on ${body.invoiceId} for ${body.memberId}` },
      typedSearchAttributes: [{ key: keys.program, value: programId }, { key: keys.member, value: body.memberId }, { key: keys.invoice, value: body.invoiceId }],
    });
    let outcome;
    try {
      outcome = await t.client.workflow.executeUpdateWithStart(outcomeUpdate, { startWorkflowOperation: start });
    } catch (e) {
      throw new ApiError(503, 'loyalty_unavailable', 'the redemption could not be started; retry with the same invoice', { cause: (e as Error).message });
    }
    return reply.status(201).send({ ...outcome, workflowId });
  });

  app.get('/v1/programs/:programId/redemptions/:invoiceId', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['billing', 'support', 'finance', 'controller']);
    const { programId, invoiceId } = parse(invoiceParams, req.params, 'path');
    const { rows } = await ctx.pool.query('select ll_redemption_view(r) as v from redemptions r where program_id = $1 and invoice_id = $2', [programId, invoiceId]);
    if (!rows[0]) throw notFound('redemption', { programId, invoiceId });
    return { ...rows[0].v, workflowId: redemptionWorkflowId(programId, invoiceId) };
  });

  app.post('/v1/programs/:programId/chargebacks', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['billing']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(chargebackSchema, req.body, 'chargeback');
    idempotencyKey(req);
    const { rows } = await ctx.pool.query(`select status from redemptions where program_id = $1 and invoice_id = $2`, [programId, body.invoiceId]);
    if (!rows[0]) throw notFound('redemption', { programId, invoiceId: body.invoiceId });
    try {
      await temporal().client.workflow.getHandle(redemptionWorkflowId(programId, body.invoiceId)).signal(chargebackSignal, { chargebackId: body.chargebackId, status: body.status });
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new ApiError(409, 'chargeback_window_closed', 'the redemption is past its chargeback window', { invoiceId: body.invoiceId });
      throw e;
    }
    return reply.status(202).send({ accepted: true, invoiceId: body.invoiceId, chargebackId: body.chargebackId, status: body.status });
  });
}
