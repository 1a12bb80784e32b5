import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { RuleChangeActivities, RuleChangeImpact } from '../activities/rule-change';
import { waitMs } from './durations';

export interface RuleChangeInput {
  programId: string;
  changeId: string;
  proposedBy: string;
  effectiveAt: string;
  /** each must be filled by a different person, never the proposer */
  requiredRoles: string[];
  /** an adverse change takes effect no sooner than this after its approval */
  noticePeriod: string;
  /** no decision by then: expired (a reminder goes out halfway) */
  decideWithin: string;
}

export interface RuleChangeApproval {
  role: string;
  by: string;
  decision: 'approve' | 'reject';
  comment: string | null;
}

export interface RuleChangeState {
  status:
    'assessing' | 'awaiting_approvals' | 'scheduled' | 'active' | 'rejected' | 'expired' | 'withdrawn' | 'superseded';
  impact: RuleChangeImpact | null;
  approvals: RuleChangeApproval[];
  activatesAt: string | null;
  remindedAt: string | null;
}

/**
 * A decision on the change. Since patch `rule-change-decision-verified` only `requestId` counts: the
 * decision request the API recorded (db/approval-requests.ts), whose principal, roles, decision and
 * comment an activity reads from the database; the other fields are what runs from before read (the
 * API still sends them, for them).
 */
export const decideRuleChangeUpdate = defineUpdate<
  RuleChangeState,
  [{ by?: string; roles?: string[]; decision?: 'approve' | 'reject'; comment?: string | null; requestId?: string }]
>('decide');
/**
 * A withdrawal. Since patch `rule-change-withdrawal-verified` only `requestId` counts: the withdrawal
 * request the API recorded, verified by an activity against the database; `by` is what runs from
 * before read (the API still sends it, for them).
 */
export const withdrawSignal = defineSignal<[{ by?: string; requestId?: string }]>('withdraw');
export const ruleChangeStateQuery = defineQuery<RuleChangeState>('state');

const act = proxyActivities<RuleChangeActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 20 },
});

/** The activity's refusal as the update's own failure (its code, not "activity failed"), for the API. */
const refusedAs = (e: unknown): never => {
  if (e instanceof ActivityFailure && e.cause instanceof ApplicationFailure)
    throw ApplicationFailure.nonRetryable(e.cause.message, e.cause.type);
  throw e;
};

/**
 * `rule-change:<programId>:<changeId>`: impact assessment, approvals by the required roles (the
 * proposer never, one person one role, a rejection ends it, no decision in time expires it), the
 * notice period for a change adverse to members, then activation at the effective instant by a
 * durable timer, and, if the expiry rules changed, every member's deadline recomputed and re-armed.
 */
export async function ruleChange(input: RuleChangeInput): Promise<RuleChangeState> {
  const ref = { programId: input.programId, changeId: input.changeId };
  const state: RuleChangeState = {
    status: 'assessing',
    impact: null,
    approvals: [],
    activatesAt: null,
    remindedAt: null,
  };
  let withdrawn = false;
  // Who proposed it, which roles must approve it, its notice, its effective instant and its decision
  // window: since patch `rule-change-terms-from-ledger` read from the database before any decision
  // can be taken (an activity, below), not from the input, which anyone who can reach Temporal can
  // write (a change started with no required roles would activate unapproved; issue 14, item 1).
  let terms: Pick<RuleChangeInput, 'proposedBy' | 'requiredRoles' | 'noticePeriod' | 'effectiveAt' | 'decideWithin'> =
    input;
  // Each decision goes into the database and the audit chain as it is taken (issue 14, item 2), and
  // the change's end waits for those writes. Workflows started before only recorded the approvals
  // with the change's status.
  const decisionsRecorded = patched('rule-change-decision-audit');
  let recording = 0;
  const filled = () =>
    terms.requiredRoles.every((r) => state.approvals.some((a) => a.role === r && a.decision === 'approve'));
  const rejected = () => state.approvals.some((a) => a.decision === 'reject');
  const record = () =>
    act.recordRuleChange({ ...ref, status: state.status, approvals: state.approvals, activatesAt: state.activatesAt });
  const memo = (summary: string) => upsertMemo({ summary: `${input.changeId}: ${summary}` });

  setHandler(ruleChangeStateQuery, () => state);
  const withdraw = () => {
    // a rejected change stays rejected: a withdrawal arriving before its status moved changes nothing
    if (decisionsRecorded && rejected()) return;
    if (state.status === 'assessing' || state.status === 'awaiting_approvals' || state.status === 'scheduled')
      withdrawn = true;
  };
  // Anyone who can reach Temporal can send this signal under any name: a withdrawal counts only once
  // an activity has verified the API's withdrawal request against the database. Runs from before
  // took the signal as sent.
  const withdrawalsVerified = patched('rule-change-withdrawal-verified');
  let withdrawnBy: string | null = null;
  setHandler(withdrawSignal, async (w) => {
    if (!withdrawalsVerified) return withdraw();
    if (typeof w?.requestId !== 'string') return; // a name alone changes nothing
    // counted while it is verified: the change does not end (expired, say) before the withdrawal counts
    recording += 1;
    try {
      const verified = await act.verifyRuleChangeWithdrawal({
        ...ref,
        workflowId: workflowInfo().workflowId,
        requestId: w.requestId,
      });
      withdraw();
      if (withdrawn) withdrawnBy ??= verified.by;
    } catch (e) {
      // refused (an unknown, forged or revoked request, a key without program_owner): changes nothing
      if (!(e instanceof ActivityFailure)) throw e;
    } finally {
      recording -= 1;
    }
  });
  // Anyone who can reach Temporal can send this update under any name and roles (issue 14, item 1):
  // a decision counts only once an activity has verified the API's decision request against the
  // database, and the rules below are applied to what the database says. Runs from before took the
  // name and roles as sent.
  const decisionsVerified = patched('rule-change-decision-verified');
  /** Why decision `d` cannot be taken now (null: it can). */
  const refusalOf = (d: { by: string; roles: string[] }): ApplicationFailure | null => {
    if (d.by === terms.proposedBy)
      return ApplicationFailure.nonRetryable('the proposer cannot approve their own change', 'segregation_of_duties');
    if (state.status !== 'awaiting_approvals')
      return ApplicationFailure.nonRetryable(`the change is ${state.status}`, 'rule_change_not_awaiting_approval');
    // a rejection ends it at once: nothing decided after it, even before the status moves
    if (rejected())
      return ApplicationFailure.nonRetryable('the change is rejected', 'rule_change_not_awaiting_approval');
    if (state.approvals.some((a) => a.by === d.by))
      return ApplicationFailure.nonRetryable('one person fills at most one required role', 'segregation_of_duties');
    const open = terms.requiredRoles.filter((r) => !state.approvals.some((a) => a.role === r));
    if (!open.some((r) => d.roles.includes(r) || d.roles.includes('admin'))) {
      return ApplicationFailure.nonRetryable(
        `no open approval for the roles ${d.roles.join(', ')} (open: ${open.join(', ') || 'none'})`,
        'forbidden',
      );
    }
    return null;
  };
  const take = async (d: { by: string; roles: string[]; decision: 'approve' | 'reject'; comment: string | null }) => {
    const open = terms.requiredRoles.filter((r) => !state.approvals.some((a) => a.role === r));
    const role =
      d.decision === 'reject'
        ? (terms.requiredRoles.find((r) => d.roles.includes(r) || d.roles.includes('admin')) ?? 'unknown')
        : open.find((r) => d.roles.includes(r) || d.roles.includes('admin'))!;
    const decision = { role, by: d.by, decision: d.decision, comment: d.comment };
    state.approvals.push(decision);
    if (decisionsRecorded) {
      recording += 1;
      try {
        await act.recordRuleChangeDecision({ ...ref, decision });
      } finally {
        recording -= 1;
      }
    }
    // the decision that settles it answers with what follows (scheduled or rejected); the others at once
    if (filled() || rejected()) await condition(() => state.status !== 'awaiting_approvals');
    return state;
  };
  setHandler(
    decideRuleChangeUpdate,
    async (d) => {
      if (!decisionsVerified)
        return take({ by: d.by!, roles: d.roles!, decision: d.decision!, comment: d.comment ?? null });
      // counted while it is verified: the change does not end on the decisions before it meanwhile
      recording += 1;
      let verified: Awaited<ReturnType<RuleChangeActivities['verifyRuleChangeDecision']>>;
      try {
        verified = await act
          .verifyRuleChangeDecision({
            ...ref,
            workflowId: workflowInfo().workflowId,
            requestId: d.requestId!,
            requiredRoles: terms.requiredRoles,
          })
          .catch(refusedAs);
      } finally {
        recording -= 1;
      }
      // the state may have moved while the activity ran: checked again, on the database's answer
      const refused = refusalOf(verified);
      if (refused) throw refused;
      return take(verified);
    },
    {
      validator: (d) => {
        if (decisionsVerified) {
          if (typeof d.requestId !== 'string')
            throw ApplicationFailure.nonRetryable(
              'a decision goes through the API (POST .../rule-changes/{changeId}/approvals)',
              'decision_request_required',
            );
          if (state.status !== 'awaiting_approvals')
            throw ApplicationFailure.nonRetryable(`the change is ${state.status}`, 'rule_change_not_awaiting_approval');
          if (rejected())
            throw ApplicationFailure.nonRetryable('the change is rejected', 'rule_change_not_awaiting_approval');
          return;
        }
        const refused = refusalOf({ by: d.by!, roles: d.roles! });
        if (refused) throw refused;
      },
    },
  );

  if (patched('rule-change-terms-from-ledger')) terms = await act.ruleChangeTerms(ref);
  state.impact = await act.assessRuleChangeImpact(ref);
  state.status = 'awaiting_approvals';
  memo(
    `awaiting ${terms.requiredRoles.join(' and ')}${state.impact.adverse.length ? `; adverse: ${state.impact.adverse.join(', ')}` : ''}`,
  );

  const decideMs = waitMs(Date.now(), terms.decideWithin);
  const decideBy = new Date(Date.now() + decideMs).toISOString();
  const done = () => (filled() || rejected() || withdrawn) && recording === 0;
  if (!(await condition(done, decideMs / 2))) {
    state.remindedAt = new Date(Date.now()).toISOString();
    const awaitingRoles = terms.requiredRoles.filter((r) => !state.approvals.some((a) => a.role === r));
    memo(`reminder: still awaiting ${awaitingRoles.join(' and ')}`);
    // Workflows started before the reminder became a message only set the memo.
    if (patched('rule-change-reminder-notification'))
      await act.remindRuleChangeApprovers({ ...ref, awaitingRoles, decideBy });
    await record();
    await condition(done, decideMs - decideMs / 2);
  }
  if (withdrawn || rejected() || !filled()) {
    state.status = withdrawn ? 'withdrawn' : rejected() ? 'rejected' : 'expired';
    memo(withdrawnBy && withdrawn ? `withdrawn by ${withdrawnBy}` : state.status);
    await record();
    return state;
  }

  // Adverse to members: not before the notice period has passed since the approval.
  const approvedAtMs = Date.now();
  const noticeMs = state.impact.adverse.length ? waitMs(approvedAtMs, terms.noticePeriod) : 0;
  const activatesAtMs = Math.max(Date.parse(terms.effectiveAt), approvedAtMs + noticeMs);
  state.activatesAt = new Date(activatesAtMs).toISOString();
  state.status = 'scheduled';
  memo(`approved; takes effect ${state.activatesAt}`);
  await record();

  if (await condition(() => withdrawn, Math.max(activatesAtMs - Date.now(), 0))) {
    state.status = 'withdrawn';
    memo(withdrawnBy ? `withdrawn by ${withdrawnBy} before it took effect` : 'withdrawn before it took effect');
    await record();
    return state;
  }
  const activation = await act.activateRuleVersion({ ...ref, proposedBy: terms.proposedBy });
  // Another version became active since the change's base: nothing was activated, the activity
  // ended the change `superseded` (older workflows never got that answer).
  if (patched('rule-change-base-check') && activation.version === null) {
    const s = activation.superseded;
    state.status = s ? 'superseded' : activation.ended;
    memo(
      s
        ? `superseded: proposed against version ${s.baseVersion}, version ${s.activeVersion} is active; propose again under a new id`
        : `not activated: the change is ${activation.ended}`,
    );
    return state;
  }
  state.status = 'active';
  await record();
  if (state.impact.expiryChanged) {
    const { members } = await act.rearmMemberDeadlines(ref);
    memo(`active; ${members} member deadline(s) recomputed and re-armed`);
  } else {
    memo('active');
  }
  return state;
}
