import { z } from 'zod';
import { canEndBefore, parseDuration } from './duration';
import type { ProgramRules } from './program';
import { ruleChangeSchema } from './schemas';

/** The roles that approve a rule change when the program names none. */
export const DEFAULT_RULE_CHANGE_APPROVERS = ['finance', 'legal'] as const;
/** How long an adverse change waits after approval before it may take effect. */
export const DEFAULT_NOTICE_PERIOD = 'P30D';
/** How long a proposed change waits for its approvals before it expires. */
export const RULE_CHANGE_DECISION_WINDOW = 'P14D';

/**
 * A proposal (POST /v1/programs/{p}/rule-changes): the rule change and, optionally, the rule
 * version the proposer read and means to change (`baseVersion`); refused unless it is the one in
 * force (409 rule_change_base_not_active). Without it the base is the version in force.
 */
export const ruleChangeProposalSchema = ruleChangeSchema
  .extend({ baseVersion: z.number().int().positive().max(2_147_483_647).optional() })
  .strict();

/**
 * A proposal's quote (POST /v1/programs/{p}/quotes/rule-change): the rules alone, assessed against
 * the version in force (or `baseVersion`, refused unless it is that one), writing nothing.
 */
export const ruleChangeQuoteSchema = ruleChangeProposalSchema.pick({ rules: true, baseVersion: true }).strict();

/** Who approves a change to these rules, and the notice an adverse one waits after approval (the program's, else the defaults). */
export function approvalTerms(rules: ProgramRules): { requiredRoles: string[]; noticePeriod: string } {
  return {
    requiredRoles: [...(rules.ruleChanges?.requiredRoles ?? DEFAULT_RULE_CHANGE_APPROVERS)],
    noticePeriod: rules.ruleChanges?.noticePeriod ?? DEFAULT_NOTICE_PERIOD,
  };
}

const earnRate = (r: ProgramRules) => r.earn.points / r.earn.perAmountMinor;
type ExpiryLike = { policy: string; window?: string };
/** A window that may end before the old one for some start date (months are calendar months: domain/duration.ts). */
function shorter(after: ExpiryLike, before: ExpiryLike): boolean {
  const endless = (e: ExpiryLike) => e.policy === 'none' || !parseDuration(e.window ?? '');
  if (endless(after)) return false;
  return endless(before) || canEndBefore(after.window!, before.window!);
}

/** What makes a change adverse to members (it then needs the notice period): less value, a shorter window, fewer points per spend. */
export function adverseReasons(before: ProgramRules, after: ProgramRules): string[] {
  const reasons: string[] = [];
  if (after.pointValueMinor < before.pointValueMinor) reasons.push('lower point value');
  if (shorter(after.expiry, before.expiry)) reasons.push('shorter expiry window');
  // Every jurisdiction named before or after: one whose override is taken away falls back to the
  // default window, which may be shorter (as ll_expiry_window reads the rules).
  const jurisdictions = new Set([
    ...Object.keys(before.expiry.jurisdictions ?? {}),
    ...Object.keys(after.expiry.jurisdictions ?? {}),
  ]);
  for (const j of [...jurisdictions].sort()) {
    const old = before.expiry.jurisdictions?.[j] ?? before.expiry;
    const rule = after.expiry.jurisdictions?.[j] ?? after.expiry;
    if (shorter(rule, old)) reasons.push(`shorter expiry window in ${j}`);
  }
  if (earnRate(after) < earnRate(before)) reasons.push('lower earn rate');
  return reasons;
}

/** True when the expiry rules differ (members' deadlines must be recomputed at activation). */
export function expiryChanged(before: ProgramRules, after: ProgramRules): boolean {
  return JSON.stringify(before.expiry) !== JSON.stringify(after.expiry);
}
