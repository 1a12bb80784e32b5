import type { Pool } from 'pg';
import { RATE_SCALE, rateToMillionths } from '../domain/money';
import type { ProgramRules } from '../domain/program';
import { adverseReasons, expiryChanged } from '../domain/rule-change';
import { earlierExpiryByMonth, outstandingPoints, type EarlierExpiryMonth } from './rule-changes';

export interface RuleChangeImpact {
  adverse: string[];
  expiryChanged: boolean;
  outstandingPoints: number;
  /** the value of the outstanding points expected to be redeemed: points x value x u, before and after */
  expectedRedemptionValueMinor: { before: number; after: number; change: number };
  /** points earned per 100.00 (10,000 minor units) of spend */
  pointsPer10000Minor: { before: number; after: number };
  /** with the new expiry rules: members (and their points) whose deadline moves earlier, by month of the new deadline */
  earlierExpiry: {
    members: number;
    points: number;
    alreadyPast: { members: number; points: number };
    byMonth: Array<{ month: string; members: number; points: number }>;
  };
}

/**
 * A rule change's impact against the version it replaces, read from the program's members now
 * (set-based). One home for both its callers: the rule-change workflow's assessment, which records
 * it, and the proposal quote (POST .../quotes/rule-change), which writes nothing.
 */
export async function readRuleChangeImpact(
  pool: Pool,
  programId: string,
  before: ProgramRules,
  after: ProgramRules,
): Promise<RuleChangeImpact> {
  const points = await outstandingPoints(pool, programId);
  const value = (r: ProgramRules) =>
    (points * BigInt(r.pointValueMinor) * rateToMillionths(r.expectedRedemptionRate)) / RATE_SCALE;
  const months = await earlierExpiryByMonth(pool, programId, after.expiry);
  const sum = (pick: (m: EarlierExpiryMonth) => number | string) => months.reduce((s, m) => s + Number(pick(m)), 0);
  return {
    adverse: adverseReasons(before, after),
    expiryChanged: expiryChanged(before, after),
    outstandingPoints: Number(points),
    expectedRedemptionValueMinor: {
      before: Number(value(before)),
      after: Number(value(after)),
      change: Number(value(after) - value(before)),
    },
    pointsPer10000Minor: {
      before: Math.floor((10_000 * before.earn.points) / before.earn.perAmountMinor),
      after: Math.floor((10_000 * after.earn.points) / after.earn.perAmountMinor),
    },
    earlierExpiry: {
      members: sum((m) => m.members),
      points: sum((m) => m.points),
      alreadyPast: { members: sum((m) => m.pastMembers), points: sum((m) => m.pastPoints) },
      byMonth: months.slice(0, 24).map((m) => ({ month: m.month, members: m.members, points: Number(m.points) })),
    },
  };
}
