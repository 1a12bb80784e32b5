import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { recordDecisionRequest } from '../../db/approval-requests';
import { applyAdjustment, getAdjustment, recordAdjustment, type AdjustmentView } from '../../db/adjustments';
import { ApiError, notFound } from '../../domain/errors';
import {
  ADJUSTMENT_DECISION_WINDOW,
  DEFAULT_ADJUSTMENT_APPROVAL_WINDOW,
  DEFAULT_ADJUSTMENT_THRESHOLD_POINTS,
} from '../../domain/program';
import { SA } from '../../domain/search-attributes';
import { adjustmentDecisionSchema, adjustmentParams, adjustmentSchema, programParams } from '../../domain/schemas';
import { adjustmentApproval, decideUpdate } from '../../workflows/adjustment';
import { answerWithin, requireTemporal, rethrowUpdateRefusal, stillRunning, type ApiContext } from '../context';
import { idempotencyKey, idempotent, parse, scopedIdempotencyKey } from '../validate';

export const adjustmentWorkflowId = (programId: string, adjustmentId: string) =>
  `adjustment:${programId}:${adjustmentId}`;

/**
 * Starts (or finds) the approval workflow of a request that waits for finance: an adjustment or a
 * merge (kind `merge`). Only while it is pending: a replay of a decided one starts no new run.
 */
export async function startAdjustmentApproval(ctx: ApiContext, a: AdjustmentView, what: string): Promise<string> {
  const workflowId = adjustmentWorkflowId(a.programId, a.adjustmentId);
  const t = requireTemporal(ctx, what);
  if (a.status !== 'pending_approval') return workflowId;
  const summary =
    a.kind === 'merge'
      ? `merge of ${a.memberId} (${a.points} pts) into ${a.intoMemberId} by ${a.requestedBy}: awaiting finance`
      : `${a.points} pts for ${a.memberId} by ${a.requestedBy}: awaiting finance`;
  await t.client.workflow.start(adjustmentApproval, {
    workflowId,
    taskQueue: t.taskQueue,
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [
      {
        programId: a.programId,
        adjustmentId: a.adjustmentId,
        memberId: a.memberId,
        points: a.points,
        requestedBy: a.requestedBy,
        decideWithin: ADJUSTMENT_DECISION_WINDOW,
      },
    ],
    typedSearchAttributes: [
      { key: SA.program, value: a.programId },
      { key: SA.member, value: a.memberId },
    ],
    memo: { summary },
  });
  return workflowId;
}

/** Manual point adjustments (support), with a finance approval above the program's threshold. */
export function adjustmentRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/programs/:programId/adjustments', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['support']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(adjustmentSchema, req.body, 'adjustment');
    const key = idempotencyKey(req);
    const program = await ctx.programs.get(programId);
    // the threshold and window the program's rules write out, else the defaults; the database
    // decides under its lock with the rules in force (ll_approval_gate), these are for a replay's answer
    const rules = {
      approvalThresholdPoints:
        program.rules.adjustments?.approvalThresholdPoints ?? DEFAULT_ADJUSTMENT_THRESHOLD_POINTS,
      approvalWindow: program.rules.adjustments?.approvalWindow ?? DEFAULT_ADJUSTMENT_APPROVAL_WINDOW,
    };
    const { adjustment, gate, existing } = await recordAdjustment(ctx.pool, {
      adjustmentId: randomUUID(),
      programId,
      memberId: body.memberId,
      points: body.points,
      reasonCode: body.reasonCode,
      comment: body.comment ?? null,
      requestedBy: principal.name,
      // scoped by principal and route (docs/access.md, "Idempotency"): the row's key is theirs alone
      idempotencyKey: scopedIdempotencyKey(principal.name, 'adjustments', key),
      defaultThresholdPoints: DEFAULT_ADJUSTMENT_THRESHOLD_POINTS,
      defaultWindow: DEFAULT_ADJUSTMENT_APPROVAL_WINDOW,
    });
    const { needsApproval, ...figures } = { ...rules, ...gate };
    if (existing) reply.header('Idempotent-Replayed', 'true');
    if (!needsApproval) {
      await applyAdjustment(ctx.pool, adjustment.adjustmentId, null);
      return reply
        .status(201)
        .send({ ...(await getAdjustment(ctx.pool, programId, adjustment.adjustmentId)), ...figures });
    }
    const workflowId = await startAdjustmentApproval(ctx, adjustment, 'an adjustment above the threshold');
    return reply.status(202).send({ ...adjustment, workflowId, ...figures });
  });

  app.post('/v1/programs/:programId/adjustments/:adjustmentId/approvals', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['finance'], { decision: true });
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
        const t = requireTemporal(ctx, 'an approval');
        const workflowId = adjustmentWorkflowId(programId, adjustmentId);
        const comment = body.comment ?? null;
        // the workflow takes only the request's id, and checks it against the database (issue 14,
        // item 1); the name is for runs from before the patch adjustment-approval-verified
        const requestId = await recordDecisionRequest(ctx.pool, principal, {
          kind: 'adjustment_approval',
          programId,
          subject: adjustmentId,
          workflowId,
          decision: body.decision,
          comment,
        });
        const decided = await answerWithin(
          t.client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, {
            args: [{ decision: body.decision, by: principal.name, comment, requestId }],
          }),
          ctx.workflowWaitMs,
        );
        // no answer in time: the decision request is recorded; the adjustment's GET shows when it counted
        if (!decided)
          return stillRunning(
            workflowId,
            `/v1/programs/${encodeURIComponent(programId)}/adjustments/${encodeURIComponent(adjustmentId)}`,
            { programId, adjustmentId },
          );
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
