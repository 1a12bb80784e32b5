import type { FastifyInstance } from 'fastify';
import { ApiError, notFound } from '../../domain/errors';
import type { ProgramRules } from '../../domain/program';
import { DEFAULT_NOTICE_PERIOD, DEFAULT_RULE_CHANGE_APPROVERS, RULE_CHANGE_DECISION_WINDOW } from '../../domain/rule-change';
import { SA } from '../../domain/search-attributes';
import { programParams, ruleChangeDecisionSchema, ruleChangeParams, ruleChangeSchema } from '../../domain/schemas';
import { decideRuleChangeUpdate, ruleChange, ruleChangeStateQuery, withdrawSignal } from '../../workflows/rule-change';
import { requireTemporal, rethrowUpdateRefusal, type ApiContext } from '../context';
import { idempotencyKey, parse } from '../validate';

export const ruleChangeWorkflowId = (programId: string, changeId: string) => `rule-change:${programId}:${changeId}`;

/** Rule changes: proposed by the program owner, approved by the required roles, activated on time. */
export function ruleChangeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/programs/:programId/rule-changes', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['program_owner']);
    const { programId } = parse(programParams, req.params, 'path');
    const body = parse(ruleChangeSchema, req.body, 'rule change');
    idempotencyKey(req);
    const program = await ctx.programs.get(programId);
    const t = requireTemporal(ctx, 'a rule change');
    const { rowCount } = await ctx.pool.query(
      `insert into rule_changes (program_id, change_id, proposed_by, base_version, rules, effective_at, comment, status)
       values ($1, $2, $3, $4, $5, $6, $7, 'assessing') on conflict do nothing`,
      [programId, body.changeId, principal.name, program.activeVersion, JSON.stringify(body.rules), body.effectiveAt, body.comment ?? null]);
    const workflowId = ruleChangeWorkflowId(programId, body.changeId);
    if (rowCount === 0) {
      // jsonb equality: the stored rules' keys come back in jsonb's order, not the request's
      const { rows } = await ctx.pool.query('select rules = $3::jsonb as same_rules, effective_at from rule_changes where program_id = $1 and change_id = $2',
        [programId, body.changeId, JSON.stringify(body.rules)]);
      if (!rows[0].same_rules || rows[0].effective_at.getTime() !== Date.parse(body.effectiveAt)) {
        throw new ApiError(409, 'rule_change_exists', 'this changeId was proposed with other rules', { changeId: body.changeId });
      }
    }
    const rules = program.rules as ProgramRules;
    await t.client.workflow.start(ruleChange, {
      workflowId, taskQueue: t.taskQueue, workflowIdConflictPolicy: 'USE_EXISTING',
      args: [{
        programId, changeId: body.changeId, proposedBy: principal.name, effectiveAt: new Date(body.effectiveAt).toISOString(),
        requiredRoles: [...(rules.ruleChanges?.requiredRoles ?? DEFAULT_RULE_CHANGE_APPROVERS)],
        noticePeriod: rules.ruleChanges?.noticePeriod ?? DEFAULT_NOTICE_PERIOD, decideWithin: RULE_CHANGE_DECISION_WINDOW,
      }],
      memo: { summary: `${body.changeId}: proposed by ${principal.name}` },
      typedSearchAttributes: [{ key: SA.program, value: programId }, { key: SA.change, value: body.changeId }],
    });
    return reply.status(202).send({ programId, changeId: body.changeId, status: 'assessing', workflowId });
  });

  app.post('/v1/programs/:programId/rule-changes/:changeId/approvals', async (req) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['finance', 'legal', 'controller', 'program_owner']);
    const { programId, changeId } = parse(ruleChangeParams, req.params, 'path');
    const body = parse(ruleChangeDecisionSchema, req.body, 'decision');
    idempotencyKey(req);
    const { rows } = await ctx.pool.query('select proposed_by from rule_changes where program_id = $1 and change_id = $2', [programId, changeId]);
    if (!rows[0]) throw notFound('rule change', { programId, changeId });
    if (rows[0].proposed_by === principal.name) throw new ApiError(403, 'segregation_of_duties', 'the proposer cannot approve their own change');
    try {
      return await requireTemporal(ctx, 'an approval').client.workflow.getHandle(ruleChangeWorkflowId(programId, changeId))
        .executeUpdate(decideRuleChangeUpdate, { args: [{ by: principal.name, roles: principal.roles, decision: body.decision, comment: body.comment ?? null }] });
    } catch (e) {
      rethrowUpdateRefusal(e, 'rule_change_not_awaiting_approval');
    }
  });

  app.post('/v1/programs/:programId/rule-changes/:changeId/withdraw', async (req, reply) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['program_owner']);
    const { programId, changeId } = parse(ruleChangeParams, req.params, 'path');
    idempotencyKey(req);
    const { rows } = await ctx.pool.query('select status from rule_changes where program_id = $1 and change_id = $2', [programId, changeId]);
    if (!rows[0]) throw notFound('rule change', { programId, changeId });
    if (!['assessing', 'awaiting_approvals', 'scheduled'].includes(rows[0].status)) {
      throw new ApiError(409, 'rule_change_not_withdrawable', `the change is ${rows[0].status}`, { status: rows[0].status });
    }
    await requireTemporal(ctx, 'a withdrawal').client.workflow.getHandle(ruleChangeWorkflowId(programId, changeId)).signal(withdrawSignal, { by: 'api' });
    return reply.status(202).send({ programId, changeId, withdrawing: true });
  });

  app.get('/v1/programs/:programId/rule-changes/:changeId', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['program_owner', 'finance', 'legal', 'controller']);
    const { programId, changeId } = parse(ruleChangeParams, req.params, 'path');
    const { rows } = await ctx.pool.query('select * from rule_changes where program_id = $1 and change_id = $2', [programId, changeId]);
    const c = rows[0];
    if (!c) throw notFound('rule change', { programId, changeId });
    const live = ctx.temporal && !['active', 'rejected', 'expired', 'withdrawn'].includes(c.status)
      ? await ctx.temporal.client.workflow.getHandle(ruleChangeWorkflowId(programId, changeId)).query(ruleChangeStateQuery).catch(() => null) : null;
    return {
      programId, changeId, proposedBy: c.proposed_by, proposedAt: c.proposed_at.toISOString(), baseVersion: c.base_version, rules: c.rules,
      effectiveAt: c.effective_at.toISOString(), comment: c.comment, status: live?.status ?? c.status, impact: live?.impact ?? c.impact,
      approvals: live?.approvals ?? c.approvals, activatesAt: live?.activatesAt ?? c.activates_at?.toISOString() ?? null, version: c.version,
      remindedAt: live?.remindedAt ?? c.reminded_at?.toISOString() ?? null,
      workflowId: ruleChangeWorkflowId(programId, changeId),
    };
  });
}
