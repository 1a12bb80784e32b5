import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { applyAdjustment, getAdjustment, recordAdjustment } from '../../db/adjustments';
import { ApiError, notFound } from '../../domain/errors';
import { ADJUSTMENT_DECISION_WINDOW, DEFAULT_ADJUSTMENT_THRESHOLD_POINTS } from '../../domain/program';
import { SA } from '../../domain/search-attributes';
import { adjustmentDecisionSchema, adjustmentParams, adjustmentSchema, programParams } from '../../domain/schemas';
import { adjustmentApproval, decideUpdate } from '../../workflows/adjustment';
import { requireTemporal, rethrowUpdateRefusal, type ApiContext } from '../context';
import { idempotencyKey, idempotent, parse, scopedIdempotencyKey } from '../validate';

export const adjustmentWorkflowId = (programId: string, adjustmentId: string) =>
  `adjustment:${programId}:${adjustmentId}`;

/** Manual point adjustments (support), with a finance approval above the program's threshold. */
export function adjustmentRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/programs/:programId/adjustments', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['support']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(adjustmentSchema, req.body, 'adjustment');
    const key = idempotencyKey(req);
    const program = await ctx.programs.get(programId);
    const threshold = program.rules.adjustments?.approvalThresholdPoints ?? DEFAULT_ADJUSTMENT_THRESHOLD_POINTS;
    const needsApproval = Math.abs(body.points) > threshold;
    const t = needsApproval ? requireTemporal(ctx, 'an adjustment above the threshold') : null;
    const { adjustment, existing } = await recordAdjustment(ctx.pool, {
      adjustmentId: randomUUID(),
      programId,
      memberId: body.memberId,
      points: body.points,
      reasonCode: body.reasonCode,
      comment: body.comment ?? null,
      requestedBy: principal.name,
      // scoped by principal and route (docs/access.md, "Idempotency"): the row's key is theirs alone
      idempotencyKey: scopedIdempotencyKey(principal.name, 'adjustments', key),
    });
    if (existing) reply.header('Idempotent-Replayed', 'true');
    if (!needsApproval) {
      await applyAdjustment(ctx.pool, adjustment.adjustmentId, null);
      return reply.status(201).send({
        ...(await getAdjustment(ctx.pool, programId, adjustment.adjustmentId)),
        approvalThresholdPoints: threshold,
      });
    }
    const workflowId = adjustmentWorkflowId(programId, adjustment.adjustmentId);
    await t!.client.workflow.start(adjustmentApproval, {
      workflowId,
      taskQueue: t!.taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [
        {
          programId,
          adjustmentId: adjustment.adjustmentId,
          memberId: body.memberId,
          points: body.points,
          requestedBy: principal.name,
          decideWithin: ADJUSTMENT_DECISION_WINDOW,
        },
      ],
      typedSearchAttributes: [
        { key: SA.program, value: programId },
        { key: SA.member, value: body.memberId },
      ],
      memo: { summary: `${body.points} pts for ${body.memberId} by ${principal.name}: awaiting finance` },
    });
    return reply.status(202).send({ ...adjustment, workflowId, approvalThresholdPoints: threshold });
  });

  app.post('/v1/programs/:programId/adjustments/:adjustmentId/approvals', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['finance']);
    const { programId, adjustmentId } = parse(adjustmentParams, req.params, 'path');
    const body = parse(adjustmentDecisionSchema, req.body, 'decision');
    const key = idempotencyKey(req);
    const route = 'adjustments.approvals';
    const request = { scope: programId, principal: principal.name, route, request: { adjustmentId, ...body }, key };
    return idempotent(ctx.pool, req, reply, request, async () => {
      const a = await getAdjustment(ctx.pool, programId, adjustmentId);
      if (!a) throw notFound('adjustment', { programId, adjustmentId });
      if (a.requestedBy === principal.name)
        throw new ApiError(403, 'segregation_of_duties', 'the requester cannot decide their own adjustment', {
          requestedBy: a.requestedBy,
        });
      if (a.status !== 'pending_approval')
        throw new ApiError(409, 'adjustment_decided', `the adjustment is ${a.status}`, { status: a.status });
      try {
        const decided = await requireTemporal(ctx, 'an approval')
          .client.workflow.getHandle(adjustmentWorkflowId(programId, adjustmentId))
          .executeUpdate(decideUpdate, {
            args: [{ decision: body.decision, by: principal.name, comment: body.comment ?? null }],
          });
        return { status: 200, body: decided };
      } catch (e) {
        rethrowUpdateRefusal(e, 'adjustment_decided');
      }
    });
  });

  app.get('/v1/programs/:programId/adjustments/:adjustmentId', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['support', 'finance']);
    const { programId, adjustmentId } = parse(adjustmentParams, req.params, 'path');
    const a = await getAdjustment(ctx.pool, programId, adjustmentId);
    if (!a) throw notFound('adjustment', { programId, adjustmentId });
    return { ...a, workflowId: adjustmentWorkflowId(programId, adjustmentId) };
  });
}
