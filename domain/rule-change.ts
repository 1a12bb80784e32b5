import { nominalMs } from './duration';
import type { ProgramRules } from './program';

/** The roles that approve a rule change when the program names none. */
export const DEFAULT_RULE_CHANGE_APPROVERS = ['finance', 'legal'] as const;
/** How long an adverse change waits after approval before it may take effect. */
export const DEFAULT_NOTICE_PERIOD = 'P30D';
/** How long a proposed change waits for its approvals before it expires. */
export const RULE_CHANGE_DECISION_WINDOW = 'P14D';

const earnRate = (r: ProgramRules) => r.earn.points / r.earn.perAmountMinor;
const windowMs = (r: ProgramRules) => (r.expiry.policy === 'none' ? Infinity : nominalMs(r.expiry.window ?? '') ?? Infinity);

/** What makes a change adverse to members (it then needs the notice period): less value, a shorter window, fewer points per spend. */
export function adverseReasons(before: ProgramRules, after: ProgramRules): string[] {
  const reasons: string[] = [];
  if (after.pointValueMinor < before.pointValueMinor) reasons.push('lower point value');
  if (windowMs(after) < windowMs(before)) reasons.push('shorter expiry window');
  for (const [j, rule] of Object.entries(after.expiry.jurisdictions ?? {})) {
    const old = before.expiry.jurisdictions?.[j] ?? before.expiry;
    const oldMs = old.policy === 'none' ? Infinity : nominalMs(old.window ?? '') ?? Infinity;
    const newMs = rule.policy === 'none' ? Infinity : nominalMs(rule.window ?? '') ?? Infinity;
    if (newMs < oldMs) reasons.push(`shorter expiry window in ${j}`);
  }
  if (earnRate(after) < earnRate(before)) reasons.push('lower earn rate');
  return reasons;
}

/** True when the expiry rules differ (members' deadlines must be recomputed at activation). */
export function expiryChanged(before: ProgramRules, after: ProgramRules): boolean {
  return JSON.stringify(before.expiry) !== JSON.stringify(after.expiry);
}
