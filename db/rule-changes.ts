import type { Pool } from 'pg';
import type { ProgramRules } from '../domain/program';
import { inTransaction } from './tx';

export type RuleChangeStatus =
  'assessing' | 'awaiting_approvals' | 'scheduled' | 'active' | 'rejected' | 'expired' | 'withdrawn' | 'superseded';

/** The statuses a change ends in: it never moves again (db/functions/ll_rule_change_final.sql). */
export const FINAL_RULE_CHANGE_STATUSES: readonly RuleChangeStatus[] = [
  'active',
  'rejected',
  'expired',
  'withdrawn',
  'superseded',
];
const FINAL_SQL = `('active', 'rejected', 'expired', 'withdrawn', 'superseded')`;

export interface RuleChangeRow {
  programId: string;
  changeId: string;
  proposedBy: string;
  proposedAt: Date;
  baseVersion: number;
  rules: ProgramRules;
  effectiveAt: Date;
  comment: string | null;
  status: RuleChangeStatus;
  impact: unknown;
  approvals: unknown;
  activatesAt: Date | null;
  /** the rule version it became, once active */
  version: number | null;
  remindedAt: Date | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const toRuleChange = (r: Record<string, any>): RuleChangeRow => ({
  programId: r.program_id,
  changeId: r.change_id,
  proposedBy: r.proposed_by,
  proposedAt: r.proposed_at,
  baseVersion: r.base_version,
  rules: r.rules,
  effectiveAt: r.effective_at,
  comment: r.comment,
  status: r.status,
  impact: r.impact,
  approvals: r.approvals,
  activatesAt: r.activates_at,
  version: r.version,
  remindedAt: r.reminded_at,
});

/** Records a proposed change as `assessing`; false when the change id exists already (nothing written). */
export async function insertRuleChange(
  pool: Pool,
  c: {
    programId: string;
    changeId: string;
    proposedBy: string;
    baseVersion: number;
    rules: ProgramRules;
    effectiveAt: string;
    comment: string | null;
  },
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `insert into rule_changes (program_id, change_id, proposed_by, base_version, rules, effective_at, comment, status)
     values ($1, $2, $3, $4, $5, $6, $7, 'assessing') on conflict do nothing`,
    [c.programId, c.changeId, c.proposedBy, c.baseVersion, JSON.stringify(c.rules), c.effectiveAt, c.comment],
  );
  return rowCount !== 0;
}

/**
 * Whether the stored change has these rules (jsonb equality: the stored rules' keys come back in
 * jsonb's order, not the request's), and its effective instant; null when there is no such change.
 */
export async function compareRuleChange(
  pool: Pool,
  programId: string,
  changeId: string,
  rules: ProgramRules,
): Promise<{ sameRules: boolean; effectiveAt: Date; status: RuleChangeStatus; baseVersion: number } | null> {
  const { rows } = await pool.query<{
    same_rules: boolean;
    effective_at: Date;
    status: RuleChangeStatus;
    base_version: number;
  }>(
    // the material-right judgment's time is the request's: a retry of the same proposal differs there only
    `select (rules #- '{accounting,notMaterialRight,judgedAt}') = ($3::jsonb #- '{accounting,notMaterialRight,judgedAt}') as same_rules,
            effective_at, status, base_version from rule_changes where program_id = $1 and change_id = $2`,
    [programId, changeId, JSON.stringify(rules)],
  );
  const r = rows[0];
  return r
    ? { sameRules: r.same_rules, effectiveAt: r.effective_at, status: r.status, baseVersion: r.base_version }
    : null;
}

/** Who proposed the change (null: no such change). */
export async function ruleChangeProposer(pool: Pool, programId: string, changeId: string): Promise<string | null> {
  const { rows } = await pool.query<{ proposed_by: string }>(
    'select proposed_by from rule_changes where program_id = $1 and change_id = $2',
    [programId, changeId],
  );
  return rows[0]?.proposed_by ?? null;
}

/** The change's stored status (null: no such change). */
export async function ruleChangeStatus(
  pool: Pool,
  programId: string,
  changeId: string,
): Promise<RuleChangeStatus | null> {
  const { rows } = await pool.query<{ status: RuleChangeStatus }>(
    'select status from rule_changes where program_id = $1 and change_id = $2',
    [programId, changeId],
  );
  return rows[0]?.status ?? null;
}

export async function getRuleChange(pool: Pool, programId: string, changeId: string): Promise<RuleChangeRow | null> {
  const { rows } = await pool.query('select * from rule_changes where program_id = $1 and change_id = $2', [
    programId,
    changeId,
  ]);
  return rows[0] ? toRuleChange(rows[0]) : null;
}

/** The proposed rules and the version they were proposed against (null: no such change). */
export async function ruleChangeRules(
  pool: Pool,
  programId: string,
  changeId: string,
): Promise<{ before: ProgramRules; after: ProgramRules } | null> {
  const { rows } = await pool.query<{ before: ProgramRules; after: ProgramRules }>(
    `select c.rules as after, v.rules as before from rule_changes c
       join program_rule_versions v on v.program_id = c.program_id and v.version = c.base_version
      where c.program_id = $1 and c.change_id = $2`,
    [programId, changeId],
  );
  return rows[0] ? { before: rows[0].before, after: rows[0].after } : null;
}

/** Points held by the program's active members. */
export async function outstandingPoints(pool: Pool, programId: string): Promise<bigint> {
  const {
    rows: [o],
  } = await pool.query<{ points: string }>(
    `select coalesce(sum(balance), 0)::bigint as points from members where program_id = $1 and status = 'active'`,
    [programId],
  );
  return BigInt(o!.points);
}

export interface EarlierExpiryMonth {
  /** YYYY-MM of the new deadline (UTC) */
  month: string;
  members: number;
  /** available points of those members (bigint as a string) */
  points: string;
  /** members (and their points) whose new deadline has passed already */
  pastMembers: number;
  pastPoints: string;
}

/**
 * With the expiry rules `expiry`: the active members with points whose deadline would move earlier
 * than the one they have, by month of the new deadline (set-based over the program's members).
 */
export async function earlierExpiryByMonth(
  pool: Pool,
  programId: string,
  expiry: ProgramRules['expiry'],
): Promise<EarlierExpiryMonth[]> {
  const { rows } = await pool.query<{
    month: string;
    members: number;
    points: string;
    past: boolean;
    past_members: number;
    past_points: string;
  }>(
    `select to_char(n.deadline at time zone 'UTC', 'YYYY-MM') as month, count(*)::int as members, sum(n.points)::bigint as points,
            bool_or(n.deadline <= now()) as past, sum(case when n.deadline <= now() then 1 else 0 end)::int as past_members,
            sum(case when n.deadline <= now() then n.points else 0 end)::bigint as past_points
       from (select ll_add_duration(m.last_purchase_at, ll_expiry_window($2::jsonb, m.jurisdiction)) as deadline, m.expires_at, m.balance - m.held as points
               from members m where m.program_id = $1 and m.status = 'active' and m.balance > 0 and m.last_purchase_at is not null) n
      where n.deadline is not null and (n.expires_at is null or n.deadline < n.expires_at)
      group by 1 order by 1`,
    [programId, JSON.stringify(expiry)],
  );
  return rows.map((r) => ({
    month: r.month,
    members: r.members,
    points: r.points,
    pastMembers: r.past_members,
    pastPoints: r.past_points,
  }));
}

/** The assessed impact; the change now awaits its approvals. */
export async function recordRuleChangeImpact(
  pool: Pool,
  programId: string,
  changeId: string,
  impact: unknown,
  adverse: boolean,
): Promise<void> {
  await pool.query(
    // only from assessing: a change that ended (or moved on) is never sent back to its approvals
    `update rule_changes set impact = $3, adverse = $4, status = 'awaiting_approvals', updated_at = now()
      where program_id = $1 and change_id = $2 and status = 'assessing'`,
    [programId, changeId, JSON.stringify(impact), adverse],
  );
}

/**
 * The workflow's view of the change: its status, the approvals so far, when it activates. A change
 * that ended is left as it is: a workflow started before activation could supersede a change would
 * otherwise try to write `active` over `superseded` (the trigger ll_rule_change_final refuses it).
 * New decisions in `approvals` get their audit rows from the trigger ll_audit_rule_change.
 */
export async function recordRuleChangeState(
  pool: Pool,
  c: { programId: string; changeId: string; status: string; approvals: unknown[]; activatesAt: string | null },
): Promise<void> {
  await pool.query(
    `update rule_changes set status = $3, approvals = $4, activates_at = $5, updated_at = now()
      where program_id = $1 and change_id = $2 and status not in ${FINAL_SQL}`,
    [c.programId, c.changeId, c.status, JSON.stringify(c.approvals), c.activatesAt],
  );
}

/**
 * One decision (approval or rejection), appended to the change's approvals as it is taken: the
 * trigger ll_audit_rule_change writes its audit row in this transaction. Once per person (a retried
 * activity, or the workflow's later rewrite of the whole array, adds nothing); never on a change
 * that ended.
 */
export async function recordRuleChangeDecision(
  pool: Pool,
  c: {
    programId: string;
    changeId: string;
    decision: { role: string; by: string; decision: 'approve' | 'reject'; comment: string | null };
  },
): Promise<void> {
  await pool.query(
    `update rule_changes set approvals = approvals || jsonb_build_array($3::jsonb), updated_at = now()
      where program_id = $1 and change_id = $2 and status not in ${FINAL_SQL}
        and not exists (select 1 from jsonb_array_elements(approvals) a where a->>'by' = $3::jsonb->>'by')`,
    [c.programId, c.changeId, JSON.stringify(c.decision)],
  );
}

/**
 * The reminder to the approvers into the notifications outbox (once per idempotency key) and the
 * time of the first reminder on the change, in one transaction.
 */
export async function recordRuleChangeReminder(
  pool: Pool,
  r: {
    programId: string;
    changeId: string;
    subject: string;
    recipients: string[];
    message: string;
    idempotencyKey: string;
  },
): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query(
      `insert into notifications (program_id, kind, subject, recipients, message, idempotency_key)
       values ($1, 'rule_change_reminder', $2, $3, $4, $5) on conflict (idempotency_key) do nothing`,
      [r.programId, r.subject, r.recipients, r.message, r.idempotencyKey],
    );
    await client.query(
      'update rule_changes set reminded_at = coalesce(reminded_at, now()) where program_id = $1 and change_id = $2',
      [r.programId, r.changeId],
    );
  });
}

/** What activation did: the version made, or why none was (the change is then `superseded`, or had ended). */
export type ActivationResult =
  | { version: number; superseded?: undefined }
  | { version: null; superseded: { baseVersion: number; activeVersion: number } }
  | { version: null; superseded?: undefined; ended: RuleChangeStatus };

/**
 * The change's rules become the program's next rule version, in force from now; once per change
 * (the change's row is locked, and a change that has its version already returns it). Only if the
 * program's rules are still those it was proposed against: the program's row is locked first, so
 * two activations run one after the other and the second sees the first's version; if any version
 * was made since the change's base (its latest version is the one in force: versions are only ever
 * made effective now), nothing is activated and the change ends `superseded` in this transaction,
 * with its audit row. The approvals were given to a difference from that base, not from the rules
 * in force now. A change that ended otherwise (rejected, withdrawn, expired) is never activated.
 */
export async function activateRuleChange(
  pool: Pool,
  programId: string,
  changeId: string,
  createdBy: string,
): Promise<ActivationResult> {
  return inTransaction(pool, async (client) => {
    await client.query('select 1 from programs where program_id = $1 for update', [programId]);
    const {
      rows: [c],
    } = await client.query('select * from rule_changes where program_id = $1 and change_id = $2 for update', [
      programId,
      changeId,
    ]);
    if (!c) throw new Error(`no rule change ${changeId}`);
    if (c.version !== null) return { version: c.version };
    if (c.status !== 'scheduled') return { version: null, ended: c.status };
    const {
      rows: [latest],
    } = await client.query<{ version: number }>(
      'select max(version)::int as version from program_rule_versions where program_id = $1',
      [programId],
    );
    if (latest!.version !== c.base_version) {
      await client.query(
        `update rule_changes set status = 'superseded', updated_at = now() where program_id = $1 and change_id = $2`,
        [programId, changeId],
      );
      return { version: null, superseded: { baseVersion: c.base_version, activeVersion: latest!.version } };
    }
    const {
      rows: [v],
    } = await client.query<{ version: number }>(
      `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
       select $1, coalesce(max(version), 0) + 1, now(), $2, $3 from program_rule_versions where program_id = $1 returning version`,
      [programId, JSON.stringify(c.rules), createdBy],
    );
    await client.query(
      `update rule_changes set version = $3, status = 'active', updated_at = now() where program_id = $1 and change_id = $2`,
      [programId, changeId, v!.version],
    );
    return { version: v!.version };
  });
}
