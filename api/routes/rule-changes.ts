import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { recordDecisionRequest } from '../../db/approval-requests';
import {
  FINAL_RULE_CHANGE_STATUSES,
  compareRuleChange,
  getRuleChange,
  insertRuleChange,
  ruleChangeProposer,
  ruleChangeStatus,
} from '../../db/rule-changes';
import type { ProgramRow } from '../../db/programs';
import { ApiError, notFound } from '../../domain/errors';
import { MATERIAL_RIGHT_JUDGMENT_MESSAGE, withMaterialRightJudgment, type ProgramRules } from '../../domain/program';
import { approvalTerms, RULE_CHANGE_DECISION_WINDOW, ruleChangeProposalSchema } from '../../domain/rule-change';
import { SA } from '../../domain/search-attributes';
import { programParams, ruleChangeDecisionSchema, ruleChangeParams } from '../../domain/schemas';
import { decideRuleChangeUpdate, ruleChange, ruleChangeStateQuery, withdrawSignal } from '../../workflows/rule-change';
import { z } from 'zod';
import { answerWithin, requireTemporal, rethrowUpdateRefusal, stillRunning, type ApiContext } from '../context';
import { inProgressAnswer, route } from '../route';
import { idempotencyKey, idempotent } from '../validate';

const proposed = z.object({
  programId: z.string(),
  changeId: z.string(),
  status: z.literal('assessing'),
  workflowId: z.string(),
});
const decided = z.object({}).loose().describe("the workflow's answer: the change's approvals and status");
const withdrawing = z.object({ programId: z.string(), changeId: z.string(), withdrawing: z.literal(true) });
const ruleChangeView = z
  .object({ programId: z.string(), changeId: z.string(), status: z.string(), workflowId: z.string() })
  .loose();
export const RULE_CHANGE_READERS = ['program_owner', 'finance', 'legal', 'controller'] as const;

/**
 * The rules a proposal (or its quote) puts forward, against the program's version in force: refused
 * when the proposer read another version, or when the cost method lacks its judgment.
 */
export function proposedRules(
  program: ProgramRow,
  body: { rules: unknown; baseVersion?: number },
  proposer: string,
): ProgramRules {
  // A change is a difference from the version its proposer read: if that is no longer the one in
  // force, the impact and the approvals would be about other rules than the ones it replaces.
  if (body.baseVersion !== undefined && body.baseVersion !== program.activeVersion)
    throw new ApiError(
      409,
      'rule_change_base_not_active',
      `version ${body.baseVersion} is not the version in force (${program.activeVersion}): propose against it`,
      { baseVersion: body.baseVersion, activeVersion: program.activeVersion },
    );
  // a change to (or on) the cost method needs the judgment that the points give no material
  // right: the proposer's, now; a change staying on incremental_cost without one keeps the one in force
  const proposed = withMaterialRightJudgment(body.rules as ProgramRules, proposer, new Date(), program.rules);
  if (!proposed)
    throw new ApiError(422, 'material_right_judgment_required', MATERIAL_RIGHT_JUDGMENT_MESSAGE, {
      field: 'rules.accounting.notMaterialRight',
    });
  return proposed;
}

export const ruleChangeWorkflowId = (programId: string, changeId: string) => `rule-change:${programId}:${changeId}`;

/** Rule changes: proposed by the program owner, approved by the required roles, activated on time. */
export function ruleChangeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/rule-changes',
      summary: 'Propose a rule version: impact, approvals, notice, activation',
      roles: ['program_owner'],
      params: programParams,
      body: ruleChangeProposalSchema,
      idempotency: 'required',
      responses: { 202: proposed },
      errors: {
        409: [
          'idempotency_key_reused',
          'idempotency_request_in_progress',
          'rule_change_base_not_active',
          'rule_change_exists',
          'rule_change_rejected',
          'rule_change_ended',
        ],
        422: ['material_right_judgment_required'],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      const request = { scope: programId, principal: principal.name, route: 'rule-changes', request: body, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        const program = await ctx.programs.get(programId);
        const proposed = proposedRules(program, body, principal.name);
        const t = requireTemporal(ctx, 'a rule change');
        const inserted = await insertRuleChange(ctx.pool, {
          programId,
          changeId: body.changeId,
          proposedBy: principal.name,
          baseVersion: program.activeVersion,
          rules: proposed,
          effectiveAt: body.effectiveAt,
          comment: body.comment ?? null,
        });
        const workflowId = ruleChangeWorkflowId(programId, body.changeId);
        if (!inserted) {
          const stored = await compareRuleChange(ctx.pool, programId, body.changeId, proposed);
          // A change that ended stays ended: proposing it again would start a second workflow under
          // the same id (a rejected change approved the second time round). A new proposal needs a new id.
          if (stored?.status === 'rejected')
            throw new ApiError(
              409,
              'rule_change_rejected',
              'this change was rejected: propose it under a new changeId',
              {
                changeId: body.changeId,
              },
            );
          if (stored && FINAL_RULE_CHANGE_STATUSES.includes(stored.status))
            throw new ApiError(
              409,
              'rule_change_ended',
              `this change is ${stored.status}: propose it under a new changeId`,
              {
                changeId: body.changeId,
                status: stored.status,
              },
            );
          if (
            !stored ||
            !stored.sameRules ||
            stored.effectiveAt.getTime() !== Date.parse(body.effectiveAt) ||
            (body.baseVersion !== undefined && body.baseVersion !== stored.baseVersion)
          ) {
            throw new ApiError(409, 'rule_change_exists', 'this changeId was proposed with other rules', {
              changeId: body.changeId,
            });
          }
        }
        const rules = program.rules as ProgramRules;
        await t.client.workflow
          .start(ruleChange, {
            workflowId,
            taskQueue: t.taskQueue,
            // a retried proposal joins the running workflow; one whose workflow ended never starts another
            // (the status check above, and this if the change ended in between)
            workflowIdConflictPolicy: 'USE_EXISTING',
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            args: [
              {
                programId,
                changeId: body.changeId,
                proposedBy: principal.name,
                effectiveAt: new Date(body.effectiveAt).toISOString(),
                ...approvalTerms(rules),
                decideWithin: RULE_CHANGE_DECISION_WINDOW,
              },
            ],
            memo: { summary: `${body.changeId}: proposed by ${principal.name}` },
            typedSearchAttributes: [
              { key: SA.program, value: programId },
              { key: SA.change, value: body.changeId },
            ],
          })
          .catch((e: unknown) => {
            if (e instanceof WorkflowExecutionAlreadyStartedError)
              throw new ApiError(409, 'rule_change_ended', 'this change has ended: propose it under a new changeId', {
                changeId: body.changeId,
              });
            throw e;
          });
        return { status: 202, body: { programId, changeId: body.changeId, status: 'assessing', workflowId } };
      });
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/rule-changes/:changeId/approvals',
      summary: 'Approve or reject a rule change for one required role (never the proposer, one role per person)',
      roles: ['finance', 'legal', 'controller', 'program_owner'],
      decision: true,
      params: ruleChangeParams,
      body: ruleChangeDecisionSchema,
      idempotency: 'required',
      responses: { 200: decided, 202: inProgressAnswer },
      errors: {
        403: ['segregation_of_duties'],
        409: [
          'idempotency_key_reused',
          'idempotency_request_in_progress',
          'rule_change_not_awaiting_approval',
          'rule_change_final',
        ],
      },
    },
    async (req, reply, principal) => {
      const { programId, changeId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      const route = 'rule-changes.approvals';
      const request = { scope: programId, principal: principal.name, route, request: { changeId, ...body }, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        const proposedBy = await ruleChangeProposer(ctx.pool, programId, changeId);
        if (proposedBy === null) throw notFound('rule change', { programId, changeId });
        if (proposedBy === principal.name)
          throw new ApiError(403, 'segregation_of_duties', 'the proposer cannot approve their own change');
        try {
          const t = requireTemporal(ctx, 'an approval');
          const workflowId = ruleChangeWorkflowId(programId, changeId);
          // the workflow takes only the request's id, and checks it against the database (issue 14, item 1)
          const requestId = await recordDecisionRequest(ctx.pool, principal, {
            kind: 'rule_change_decision',
            programId,
            subject: changeId,
            workflowId,
            decision: body.decision,
            comment: body.comment ?? null,
          });
          const decided = await answerWithin(
            t.client.workflow.getHandle(workflowId).executeUpdate(decideRuleChangeUpdate, {
              args: [
                {
                  by: principal.name,
                  roles: principal.roles,
                  decision: body.decision,
                  comment: body.comment ?? null,
                  requestId,
                },
              ],
            }),
            ctx.workflowWaitMs,
          );
          // no answer in time: the decision request is recorded; the change's GET shows when it counted
          if (!decided)
            return stillRunning(
              workflowId,
              `/v1/programs/${encodeURIComponent(programId)}/rule-changes/${encodeURIComponent(changeId)}`,
              { programId, changeId },
            );
          return { status: 200, body: decided };
        } catch (e) {
          rethrowUpdateRefusal(e, 'rule_change_not_awaiting_approval');
        }
      });
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/rule-changes/:changeId/withdraw',
      summary: 'Withdraw a change that has not taken effect',
      roles: ['program_owner'],
      params: ruleChangeParams,
      idempotency: 'required',
      responses: { 202: withdrawing },
      errors: {
        409: ['idempotency_key_reused', 'idempotency_request_in_progress', 'rule_change_not_withdrawable'],
      },
    },
    async (req, reply, principal) => {
      const { programId, changeId } = req.params;
      const key = idempotencyKey(req);
      const route = 'rule-changes.withdraw';
      const request = { scope: programId, principal: principal.name, route, request: { changeId }, key };
      return idempotent(ctx.pool, req, reply, request, async () => {
        const status = await ruleChangeStatus(ctx.pool, programId, changeId);
        if (status === null) throw notFound('rule change', { programId, changeId });
        if (!['assessing', 'awaiting_approvals', 'scheduled'].includes(status)) {
          throw new ApiError(409, 'rule_change_not_withdrawable', `the change is ${status}`, { status });
        }
        const t = requireTemporal(ctx, 'a withdrawal');
        const workflowId = ruleChangeWorkflowId(programId, changeId);
        // the workflow counts the withdrawal once an activity has checked this request (issue 14)
        const requestId = await recordDecisionRequest(ctx.pool, principal, {
          kind: 'rule_change_withdrawal',
          programId,
          subject: changeId,
          workflowId,
          decision: 'withdraw',
          comment: null,
        });
        try {
          await t.client.workflow.getHandle(workflowId).signal(withdrawSignal, { by: principal.name, requestId });
        } catch (e) {
          // it ended between the status read and the signal: nothing left to withdraw
          if (e instanceof WorkflowNotFoundError)
            throw new ApiError(409, 'rule_change_not_withdrawable', 'the change has ended', { changeId });
          throw e;
        }
        return { status: 202, body: { programId, changeId, withdrawing: true } };
      });
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/rule-changes/:changeId',
      summary: 'A rule change: impact, approvals, status',
      roles: RULE_CHANGE_READERS,
      params: ruleChangeParams,
      responses: { 200: ruleChangeView },
    },
    async (req) => {
      const { programId, changeId } = req.params;
      const c = await getRuleChange(ctx.pool, programId, changeId);
      if (!c) throw notFound('rule change', { programId, changeId });
      const live =
        ctx.temporal && !FINAL_RULE_CHANGE_STATUSES.includes(c.status)
          ? await ctx.temporal.client.workflow
              .getHandle(ruleChangeWorkflowId(programId, changeId))
              .query(ruleChangeStateQuery)
              .catch(() => null)
          : null;
      return {
        programId,
        changeId,
        proposedBy: c.proposedBy,
        proposedAt: c.proposedAt.toISOString(),
        baseVersion: c.baseVersion,
        rules: c.rules,
        effectiveAt: c.effectiveAt.toISOString(),
        comment: c.comment,
        status: live?.status ?? c.status,
        impact: live?.impact ?? c.impact,
        approvals: live?.approvals ?? c.approvals,
        activatesAt: live?.activatesAt ?? c.activatesAt?.toISOString() ?? null,
        version: c.version,
        remindedAt: live?.remindedAt ?? c.remindedAt?.toISOString() ?? null,
        workflowId: ruleChangeWorkflowId(programId, changeId),
      };
    },
  );
}
