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
import { z } from 'zod';
import { answerWithin, requireTemporal, rethrowUpdateRefusal, stillRunning, type ApiContext } from '../context';
import { inProgressAnswer, route } from '../route';
import { idempotencyKey, idempotent, scopedIdempotencyKey } from '../validate';

/** An adjustment as recorded (db/adjustments.ts AdjustmentView), with its workflow where it has one. */
const adjustmentAnswer = z
  .object({ adjustmentId: z.string(), programId: z.string(), memberId: z.string(), status: z.string() })
  .loose()
  .describe('the adjustment: applied (201), or awaiting finance (202, with its workflowId)');
const decisionAnswer = z.object({}).loose().describe("the workflow's answer to the decision");

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
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/adjustments',
      summary: "A manual adjustment: applied at once up to the program's threshold, else it waits for finance",
      roles: ['support'],
      params: programParams,
      body: adjustmentSchema,
      idempotency: 'required',
      responses: { 201: adjustmentAnswer, 202: adjustmentAnswer },
      errors: {
        409: ['idempotency_key_reused', 'adjustment_exists', 'member_not_active', 'member_has_holds'],
        422: ['insufficient_points', 'amount_out_of_range'],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
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
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/adjustments/:adjustmentId/approvals',
      summary: 'Approve or reject an adjustment (not its requester)',
      roles: ['finance'],
      decision: true,
      params: adjustmentParams,
      body: adjustmentDecisionSchema,
      idempotency: 'required',
      responses: { 200: decisionAnswer, 202: inProgressAnswer },
      errors: {
        403: ['segregation_of_duties'],
        409: ['idempotency_key_reused', 'idempotency_request_in_progress', 'adjustment_decided'],
        503: ['loyalty_unavailable'],
      },
    },
    async (req, reply, principal) => {
      const { programId, adjustmentId } = req.params;
      const body = req.body;
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
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/adjustments/:adjustmentId',
      summary: 'An adjustment and its decision',
      roles: ['support', 'finance'],
      params: adjustmentParams,
      responses: { 200: adjustmentAnswer.describe('the adjustment and its decision') },
    },
    async (req) => {
      const { programId, adjustmentId } = req.params;
      const a = await getAdjustment(ctx.pool, programId, adjustmentId);
      if (!a) throw notFound('adjustment', { programId, adjustmentId });
      return { ...a, workflowId: adjustmentWorkflowId(programId, adjustmentId) };
    },
  );
}
