import { heartbeat, log } from '@temporalio/activity';
import type { Pool } from 'pg';
import { ApplicationFailure } from '@temporalio/activity';
import { verifyDecisionRequest, type VerifiedDecision } from '../db/approval-requests';
import { rearmDeadlines } from '../db/rearm';
import { readRuleChangeImpact, type RuleChangeImpact } from '../db/rule-change-impact';
import {
  activateRuleChange,
  getRuleChange,
  ruleChangeProposer,
  recordRuleChangeDecision,
  recordRuleChangeImpact,
  recordRuleChangeReminder,
  recordRuleChangeState,
  ruleChangeRules,
  type ActivationResult,
} from '../db/rule-changes';
import { approvalTerms, RULE_CHANGE_DECISION_WINDOW } from '../domain/rule-change';

export interface RuleChangeRef {
  programId: string;
  changeId: string;
}

export type { RuleChangeImpact };

/** The rule-change workflow's steps, bound to the ledger database. */
export function createRuleChangeActivities(pool: Pool) {
  async function rulesOf(ref: RuleChangeRef) {
    const rules = await ruleChangeRules(pool, ref.programId, ref.changeId);
    if (!rules) throw new Error(`no rule change ${ref.changeId}`);
    return rules;
  }

  return {
    /** The change against the version in force: liability, expiry, earn rate (set-based over the program's members). */
    async assessRuleChangeImpact(ref: RuleChangeRef): Promise<RuleChangeImpact> {
      const { before, after } = await rulesOf(ref);
      const impact = await readRuleChangeImpact(pool, ref.programId, before, after);
      await recordRuleChangeImpact(pool, ref.programId, ref.changeId, impact, impact.adverse.length > 0);
      return impact;
    },

    async recordRuleChange(
      q: RuleChangeRef & { status: string; approvals: unknown[]; activatesAt: string | null },
    ): Promise<void> {
      await recordRuleChangeState(pool, q);
    },

    /**
     * The change's terms as the database has them (issue 14, item 1), not as the workflow's input
     * says: its proposer and effective instant as the API recorded the proposal, the required roles
     * and the notice period of the rule version it was proposed against (the API's own reading when it
     * started the workflow), and the decision window every change gets.
     */
    async ruleChangeTerms(ref: RuleChangeRef): Promise<{
      proposedBy: string;
      requiredRoles: string[];
      noticePeriod: string;
      effectiveAt: string;
      decideWithin: string;
    }> {
      const change = await getRuleChange(pool, ref.programId, ref.changeId);
      if (!change) throw ApplicationFailure.nonRetryable(`no rule change ${ref.changeId}`, 'not_found');
      const { before } = await rulesOf(ref);
      return {
        proposedBy: change.proposedBy,
        ...approvalTerms(before),
        effectiveAt: change.effectiveAt.toISOString(),
        decideWithin: RULE_CHANGE_DECISION_WINDOW,
      };
    },

    /**
     * A decision counts only once this passes (issue 14, item 1): the decision request the API
     * recorded exists and is for this change, its key is active, its principal holds one of the
     * required roles (or admin) and is not the change's proposer as the database has it. Answers the
     * decision as the request holds it (who, their roles now, approve or reject, the comment); the
     * workflow then applies its own rules (an open role, one person one role). A refusal is final.
     */
    async verifyRuleChangeDecision(
      q: RuleChangeRef & { workflowId: string; requestId: string; requiredRoles: string[] },
    ): Promise<VerifiedDecision> {
      const proposedBy = await ruleChangeProposer(pool, q.programId, q.changeId);
      if (proposedBy === null) throw ApplicationFailure.nonRetryable(`no rule change ${q.changeId}`, 'not_found');
      const verdict = await verifyDecisionRequest(
        pool,
        q.requestId,
        { kind: 'rule_change_decision', programId: q.programId, subject: q.changeId, workflowId: q.workflowId },
        q.requiredRoles,
        proposedBy,
      );
      if (!verdict.ok) throw ApplicationFailure.nonRetryable(verdict.reason, verdict.code);
      return verdict.decision;
    },

    /**
     * A withdrawal counts only once this passes (issue 14): the withdrawal request the API recorded
     * exists and is for this change, its key is active and of the same principal, and that principal
     * holds program_owner (or admin), the API's own rule for who may withdraw. Answers who withdrew.
     */
    async verifyRuleChangeWithdrawal(
      q: RuleChangeRef & { workflowId: string; requestId: string },
    ): Promise<{ requestId: string; by: string }> {
      const verdict = await verifyDecisionRequest(
        pool,
        q.requestId,
        { kind: 'rule_change_withdrawal', programId: q.programId, subject: q.changeId, workflowId: q.workflowId },
        ['program_owner'],
        null,
      );
      if (!verdict.ok) throw ApplicationFailure.nonRetryable(verdict.reason, verdict.code);
      return { requestId: verdict.decision.requestId, by: verdict.decision.by };
    },

    /** One decision, into the change's approvals and the audit chain as it is taken (once per person). */
    async recordRuleChangeDecision(
      q: RuleChangeRef & {
        decision: { role: string; by: string; decision: 'approve' | 'reject'; comment: string | null };
      },
    ): Promise<void> {
      await recordRuleChangeDecision(pool, q);
    },

    /**
     * Half the decision window has passed: a reminder to the roles still awaited, into the
     * notifications outbox (once per change, whatever the retries).
     */
    async remindRuleChangeApprovers(q: RuleChangeRef & { awaitingRoles: string[]; decideBy: string }): Promise<void> {
      const message = `Rule change ${q.changeId} of program ${q.programId} awaits the approval of ${q.awaitingRoles.join(' and ')}; without a decision by ${q.decideBy} it expires.`;
      await recordRuleChangeReminder(pool, {
        programId: q.programId,
        changeId: q.changeId,
        subject: `rule change ${q.changeId}: approval awaited`,
        recipients: q.awaitingRoles,
        message,
        idempotencyKey: `rule-change-reminder:${q.programId}:${q.changeId}`,
      });
      log.info('rule change reminder sent', {
        programId: q.programId,
        changeId: q.changeId,
        awaitingRoles: q.awaitingRoles,
      });
    },

    /**
     * The new rule version, in force from now; once per change. Refused when another version became
     * active since the change's base: the change is then `superseded` (db/rule-changes.ts).
     */
    async activateRuleVersion(ref: RuleChangeRef & { proposedBy: string }): Promise<ActivationResult> {
      const result = await activateRuleChange(pool, ref.programId, ref.changeId, ref.proposedBy);
      if (result.superseded)
        log.warn('rule change superseded: another version became active since its base', {
          ...ref,
          ...result.superseded,
        });
      return result;
    },

    /** After an expiry-rule change: member deadlines recomputed and their workflows woken (db/rearm.ts); progress in the heartbeat. */
    async rearmMemberDeadlines(ref: RuleChangeRef): Promise<{ members: number }> {
      return { members: await rearmDeadlines(pool, ref.programId, (rearmed) => heartbeat({ rearmed })) };
    },
  };
}

export type RuleChangeActivities = ReturnType<typeof createRuleChangeActivities>;
