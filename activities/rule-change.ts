import { heartbeat, log } from '@temporalio/activity';
import type { Pool } from 'pg';
import { rearmDeadlines } from '../db/rearm';
import { RATE_SCALE, rateToMillionths } from '../domain/money';
import type { ProgramRules } from '../domain/program';
import { adverseReasons, expiryChanged } from '../domain/rule-change';

export interface RuleChangeRef {
  programId: string;
  changeId: string;
}

export interface RuleChangeImpact {
  adverse: string[];
  expiryChanged: boolean;
  outstandingPoints: number;
  /** the value of the outstanding points expected to be redeemed: points x value x u, before and after */
  expectedRedemptionValueMinor: { before: number; after: number; change: number };
  /** points earned per 100.00 (10,000 minor units) of spend */
  pointsPer10000Minor: { before: number; after: number };
  /** with the new expiry rules: members (and their points) whose deadline moves earlier, by month of the new deadline */
  earlierExpiry: { members: number; points: number; alreadyPast: { members: number; points: number }; byMonth: Array<{ month: string; members: number; points: number }> };
}

/** The rule-change workflow's steps, bound to the ledger database. */
export function createRuleChangeActivities(pool: Pool) {
  async function rulesOf(ref: RuleChangeRef) {
    const { rows } = await pool.query(
      `select c.rules as after, v.rules as before from rule_changes c
         join program_rule_versions v on v.program_id = c.program_id and v.version = c.base_version
        where c.program_id = $1 and c.change_id = $2`, [ref.programId, ref.changeId]);
    if (!rows[0]) throw new Error(`no rule change ${ref.changeId}`);
    return { before: rows[0].before as ProgramRules, after: rows[0].after as ProgramRules };
  }

  return {
    /** The change against the version in force: liability, expiry, earn rate (set-based over the program's members). */
    async assessRuleChangeImpact(ref: RuleChangeRef): Promise<RuleChangeImpact> {
      const { before, after } = await rulesOf(ref);
      const { rows: [o] } = await pool.query(
        `select coalesce(sum(balance), 0)::bigint as points from members where program_id = $1 and status = 'active'`, [ref.programId]);
      const points = BigInt(o.points);
      const value = (r: ProgramRules) => (points * BigInt(r.pointValueMinor) * rateToMillionths(r.expectedRedemptionRate)) / RATE_SCALE;
      const { rows: months } = await pool.query(
        `select to_char(n.deadline at time zone 'UTC', 'YYYY-MM') as month, count(*)::int as members, sum(n.points)::bigint as points,
                bool_or(n.deadline <= now()) as past, sum(case when n.deadline <= now() then 1 else 0 end)::int as past_members,
                sum(case when n.deadline <= now() then n.points else 0 end)::bigint as past_points
           from (select m.last_purchase_at + ll_expiry_window($2::jsonb, m.jurisdiction) as deadline, m.expires_at, m.balance - m.held as points
                   from members m where m.program_id = $1 and m.status = 'active' and m.balance > 0 and m.last_purchase_at is not null) n
          where n.deadline is not null and (n.expires_at is null or n.deadline < n.expires_at)
          group by 1 order by 1`, [ref.programId, JSON.stringify(after.expiry)]);
      const sum = (k: string) => months.reduce((s, r) => s + Number(r[k]), 0);
      const impact: RuleChangeImpact = {
        adverse: adverseReasons(before, after), expiryChanged: expiryChanged(before, after), outstandingPoints: Number(points),
        expectedRedemptionValueMinor: { before: Number(value(before)), after: Number(value(after)), change: Number(value(after) - value(before)) },
        pointsPer10000Minor: { before: Math.floor((10_000 * before.earn.points) / before.earn.perAmountMinor), after: Math.floor((10_000 * after.earn.points) / after.earn.perAmountMinor) },
        earlierExpiry: {
          members: sum('members'), points: sum('points'), alreadyPast: { members: sum('past_members'), points: sum('past_points') },
          byMonth: months.slice(0, 24).map((r) => ({ month: r.month, members: r.members, points: Number(r.points) })),
        },
      };
      await pool.query(`update rule_changes set impact = $3, adverse = $4, status = 'awaiting_approvals', updated_at = now() where program_id = $1 and change_id = $2`,
        [ref.programId, ref.changeId, JSON.stringify(impact), impact.adverse.length > 0]);
      return impact;
    },

    async recordRuleChange(q: RuleChangeRef & { status: string; approvals: unknown[]; activatesAt: string | null }): Promise<void> {
      await pool.query(`update rule_changes set status = $3, approvals = $4, activates_at = $5, updated_at = now() where program_id = $1 and change_id = $2`,
        [q.programId, q.changeId, q.status, JSON.stringify(q.approvals), q.activatesAt]);
    },

    /**
     * Half the decision window has passed: a reminder to the roles still awaited, into the
     * notifications outbox (once per change, whatever the retries).
     */
    async remindRuleChangeApprovers(q: RuleChangeRef & { awaitingRoles: string[]; decideBy: string }): Promise<void> {
      const message = `Rule change ${q.changeId} of program ${q.programId} awaits the approval of ${q.awaitingRoles.join(' and ')}; without a decision by ${q.decideBy} it expires.`;
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query(
          `insert into notifications (program_id, kind, subject, recipients, message, idempotency_key)
           values ($1, 'rule_change_reminder', $2, $3, $4, $5) on conflict (idempotency_key) do nothing`,
          [q.programId, `rule change ${q.changeId}: approval awaited`, q.awaitingRoles, message, `rule-change-reminder:${q.programId}:${q.changeId}`]);
        await client.query('update rule_changes set reminded_at = coalesce(reminded_at, now()) where program_id = $1 and change_id = $2', [q.programId, q.changeId]);
        await client.query('commit');
      } catch (e) {
        await client.query('rollback').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
      log.info('rule change reminder sent', { programId: q.programId, changeId: q.changeId, awaitingRoles: q.awaitingRoles });
    },

    /** The new rule version, in force from now; once per change. */
    async activateRuleVersion(ref: RuleChangeRef & { proposedBy: string }): Promise<{ version: number }> {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const { rows: [c] } = await client.query('select * from rule_changes where program_id = $1 and change_id = $2 for update', [ref.programId, ref.changeId]);
        if (c.version !== null) {
          await client.query('commit');
          return { version: c.version };
        }
        const { rows: [v] } = await client.query(
          `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
           select $1, coalesce(max(version), 0) + 1, now(), $2, $3 from program_rule_versions where program_id = $1 returning version`,
          [ref.programId, JSON.stringify(c.rules), ref.proposedBy]);
        await client.query(`update rule_changes set version = $3, status = 'active', updated_at = now() where program_id = $1 and change_id = $2`, [ref.programId, ref.changeId, v.version]);
        await client.query('commit');
        return { version: v.version };
      } catch (e) {
        await client.query('rollback').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },

    /** After an expiry-rule change: member deadlines recomputed and their workflows woken (db/rearm.ts); progress in the heartbeat. */
    async rearmMemberDeadlines(ref: RuleChangeRef): Promise<{ members: number }> {
      return { members: await rearmDeadlines(pool, ref.programId, (rearmed) => heartbeat({ rearmed })) };
    },
  };
}

export type RuleChangeActivities = ReturnType<typeof createRuleChangeActivities>;
