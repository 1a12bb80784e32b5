import type { Pool } from 'pg';
import type { CursorKey } from '../domain/cursor';
import { toAdjustmentView } from './adjustments';
import { MEMBER_COLUMNS } from './ledger';

/**
 * The lists' queries (docs/api.md, "Lists and pagination"): keyset pages in a stable order, each
 * row with its sort key (`key_at`: a time as text with microseconds, which a JavaScript Date would
 * round to milliseconds and so repeat or skip rows). Each fetches `limit + 1` rows: the extra one
 * says whether there is a next page (domain/cursor.ts pageOf). Served by the indexes of migration
 * 017 (db/migrations/017_list_indexes.sql).
 */

/** A time as a cursor holds it: UTC with microseconds, as timestamptz compares. */
const keyAt = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** A statement's conditions and their parameters, numbered as they are added. */
class Where {
  readonly params: unknown[] = [];
  private readonly conds: string[] = [];

  /** a parameter's placeholder */
  p(v: unknown): string {
    this.params.push(v);
    return `$${this.params.length}`;
  }

  and(cond: string | false): this {
    if (cond) this.conds.push(cond);
    return this;
  }

  get sql(): string {
    return this.conds.length ? `where ${this.conds.join(' and ')}` : '';
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Row = Record<string, any>;

export interface MembersFilter {
  status?: string;
  /** a deadline from now to now + this duration, or to this instant: ordered by deadline, then id */
  window?: { within?: string; before?: string };
  after?: CursorKey;
  limit: number;
}

/**
 * A program's members by id; with a deadline window, those with points whose deadline falls in it,
 * soonest first.
 */
export async function listMembers(pool: Pool, programId: string, f: MembersFilter): Promise<Row[]> {
  const w = new Where();
  w.and(`program_id = ${w.p(programId)}`).and(f.status !== undefined && `status = ${w.p(f.status)}`);
  if (f.window) {
    w.and('balance > 0 and expires_at >= now()');
    // both bounds given: the earlier one
    w.and(f.window.within !== undefined && `expires_at < ll_add_duration(now(), ${w.p(f.window.within)}::interval)`);
    w.and(f.window.before !== undefined && `expires_at < ${w.p(f.window.before)}::timestamptz`);
    if (f.after) w.and(`(expires_at, member_id) > (${w.p(f.after[0])}::timestamptz, ${w.p(f.after[1])})`);
  } else if (f.after) w.and(`member_id > ${w.p(f.after[1])}`); // its time is not read (domain/cursor.ts LIST_KEYS)
  // qualified: the select list's expires_at is its text (ll_ts), which an unqualified order by would sort
  const order = f.window ? 'm.expires_at, m.member_id' : 'm.member_id';
  const { rows } = await pool.query(
    `select ${MEMBER_COLUMNS}, ${keyAt('m.expires_at')} as key_at from members m ${w.sql} order by ${order} limit ${w.p(f.limit + 1)}`,
    w.params,
  );
  return rows;
}

export interface RedemptionsFilter {
  /** business dates (occurred_at, UTC), inclusive */
  from?: string;
  to?: string;
  status?: string;
  after?: CursorKey;
  limit: number;
}

/** A program's redemptions by business time (occurredAt), then invoice. */
export async function listRedemptions(pool: Pool, programId: string, f: RedemptionsFilter): Promise<Row[]> {
  const w = new Where();
  w.and(`r.program_id = ${w.p(programId)}`)
    .and(f.status !== undefined && `r.status = ${w.p(f.status)}`)
    .and(f.from !== undefined && `r.occurred_at >= (${w.p(f.from)}::date)::timestamp at time zone 'UTC'`)
    .and(f.to !== undefined && `r.occurred_at < (${w.p(f.to)}::date + 1)::timestamp at time zone 'UTC'`)
    .and(!!f.after && `(r.occurred_at, r.invoice_id) > (${w.p(f.after?.[0])}::timestamptz, ${w.p(f.after?.[1])})`);
  const { rows } = await pool.query(
    `select ll_redemption_view(r) || jsonb_build_object('occurredAt', ll_ts(r.occurred_at), 'createdAt', ll_ts(r.created_at)) as v,
            ${keyAt('r.occurred_at')} as key_at, r.invoice_id
       from redemptions r ${w.sql} order by r.occurred_at, r.invoice_id limit ${w.p(f.limit + 1)}`,
    w.params,
  );
  return rows;
}

export interface StatusFilter {
  status?: string;
  after?: CursorKey;
  limit: number;
}

/** A program's manual adjustments and merges by request time, then id. */
export async function listAdjustments(
  pool: Pool,
  programId: string,
  f: StatusFilter & { kind?: string },
): Promise<Array<ReturnType<typeof toAdjustmentView> & { keyAt: string }>> {
  const w = new Where();
  w.and(`program_id = ${w.p(programId)}`)
    .and(f.status !== undefined && `status = ${w.p(f.status)}`)
    .and(f.kind !== undefined && `kind = ${w.p(f.kind)}`)
    .and(
      !!f.after && `(requested_at, adjustment_id) > (${w.p(f.after?.[0])}::timestamptz, ${w.p(f.after?.[1])}::uuid)`,
    );
  const { rows } = await pool.query(
    `select *, ${keyAt('requested_at')} as key_at from manual_adjustments ${w.sql}
      order by requested_at, adjustment_id limit ${w.p(f.limit + 1)}`,
    w.params,
  );
  return rows.map((r) => ({ ...toAdjustmentView(r), keyAt: r.key_at as string }));
}

/** A program's rule changes by proposal time, then id (their rules and impact: GET of the change). */
export async function listRuleChanges(pool: Pool, programId: string, f: StatusFilter): Promise<Row[]> {
  const w = new Where();
  w.and(`program_id = ${w.p(programId)}`)
    .and(f.status !== undefined && `status = ${w.p(f.status)}`)
    .and(!!f.after && `(proposed_at, change_id) > (${w.p(f.after?.[0])}::timestamptz, ${w.p(f.after?.[1])})`);
  const { rows } = await pool.query(
    `select change_id, proposed_by, ll_ts(proposed_at) as proposed_at, base_version, ll_ts(effective_at) as effective_at,
            comment, status, adverse, approvals, ll_ts(activates_at) as activates_at, version, ${keyAt('c.proposed_at')} as key_at
       from rule_changes c ${w.sql} order by c.proposed_at, c.change_id limit ${w.p(f.limit + 1)}`,
    w.params,
  );
  return rows;
}

/** Programs by id, after the cursor's; `programs` null: every program (a key scoped to none). */
export async function listPrograms(
  pool: Pool,
  f: { programs: string[] | null; after: CursorKey | undefined; limit: number },
): Promise<Row[]> {
  const w = new Where();
  w.and(f.programs !== null && `p.program_id = any(${w.p(f.programs)})`).and(
    !!f.after && `p.program_id > ${w.p(f.after?.[0])}`,
  );
  const { rows } = await pool.query(
    `select p.program_id, p.name, p.currency, p.currency_digits, ll_ts(p.created_at) as created_at, v.version
       from programs p
       join lateral (select max(version) as version from program_rule_versions r
                      where r.program_id = p.program_id and r.effective_at <= now()) v on true
       ${w.sql} order by p.program_id limit ${w.p(f.limit + 1)}`,
    w.params,
  );
  return rows;
}

/** A program's closes by period (their reports: GET .../closes/{period}/report). */
export async function listCloses(pool: Pool, programId: string, f: StatusFilter): Promise<Row[]> {
  const w = new Where();
  w.and(`program_id = ${w.p(programId)}`)
    .and(f.status !== undefined && `status = ${w.p(f.status)}`)
    .and(!!f.after && `period > ${w.p(f.after?.[0])}`);
  const { rows } = await pool.query(
    `select period, status, started_by, ll_ts(started_at) as started_at, override_rate, override_justification,
            (proposal->>'totalCatchUpMinor')::bigint as total_catch_up_minor, approved_by, ll_ts(approved_at) as approved_at,
            ll_ts(booked_at) as booked_at, gl_entry_id
       from closes c ${w.sql} order by c.period limit ${w.p(f.limit + 1)}`,
    w.params,
  );
  return rows;
}

export interface InboxQuery {
  /** the principal: their own requests are left out, and rule changes they decided already */
  by: string;
  /** the roles whose decisions to list (admin stands in for none of them) */
  roles: string[];
  /** the programs the key reaches (null: every one), or the one asked */
  programs: string[] | null;
  /** a rule change's required roles when its base version names none (domain/rule-change.ts) */
  defaultRuleChangeRoles: readonly string[];
  after?: CursorKey;
  limit: number;
}

/**
 * What awaits a decision by one of `roles` from `by`, oldest request first: proposed or escalated
 * closes (a controller), pending adjustments and merges (finance), and rule changes awaiting
 * approvals with a required role still open that `by` holds, that `by` has not decided under
 * another role and that nobody has rejected. Never `by`'s own requests (segregation of duties).
 * A rule change is listed once, under the first open required role `by` holds (the role their
 * approval fills: workflows/rule-change.ts), with every open role in its summary.
 */
export async function approvalInbox(pool: Pool, q: InboxQuery): Promise<Row[]> {
  const w = new Where();
  const by = w.p(q.by);
  const roles = `${w.p(q.roles)}::text[]`;
  const programs = `${w.p(q.programs)}::text[]`;
  const inPrograms = (col: string) => `(${programs} is null or ${col} = any(${programs}))`;
  const defaults = `${w.p(JSON.stringify(q.defaultRuleChangeRoles))}::jsonb`;
  w.and(
    !!q.after &&
      `(i.requested_at, i.kind, i.program_id, i.id) > (${w.p(q.after?.[0])}::timestamptz, ${w.p(q.after?.[1])}, ${w.p(q.after?.[2])}, ${w.p(q.after?.[3])})`,
  );
  const { rows } = await pool.query(
    `select i.kind, i.program_id, i.id, i.awaiting_role, i.requested_by, ll_ts(i.requested_at) as requested_at, i.summary,
            ${keyAt('i.requested_at')} as key_at
       from (
         select 'close' as kind, c.program_id, c.period as id, 'controller' as awaiting_role, c.started_by as requested_by,
                c.started_at as requested_at,
                jsonb_build_object('period', c.period, 'status', c.status,
                  'totalCatchUpMinor', (c.proposal->>'totalCatchUpMinor')::bigint,
                  'override', case when c.override_rate is null then null
                                   else jsonb_build_object('rate', c.override_rate, 'justification', c.override_justification) end) as summary
           from closes c
          where c.status in ('proposed', 'escalated') and 'controller' = any(${roles}) and c.started_by <> ${by}
            and ${inPrograms('c.program_id')}
         union all
         select a.kind, a.program_id, a.adjustment_id::text, 'finance', a.requested_by, a.requested_at,
                jsonb_build_object('memberId', a.member_id, 'intoMemberId', a.into_member_id, 'points', a.points,
                  'reasonCode', a.reason_code, 'comment', a.comment)
           from manual_adjustments a
          where a.status = 'pending_approval' and 'finance' = any(${roles}) and a.requested_by <> ${by}
            and ${inPrograms('a.program_id')}
         union all
         select 'rule_change', c.program_id, c.change_id, o.mine[1], c.proposed_by, c.proposed_at,
                jsonb_build_object('changeId', c.change_id, 'effectiveAt', ll_ts(c.effective_at), 'adverse', c.adverse,
                  'openRoles', to_jsonb(o.open), 'approvals', c.approvals)
           from rule_changes c
           join program_rule_versions v on v.program_id = c.program_id and v.version = c.base_version
          cross join lateral (
            select array_agg(r.role order by r.n) as open,
                   array_agg(r.role order by r.n) filter (where r.role = any(${roles})) as mine
              from jsonb_array_elements_text(coalesce(v.rules->'ruleChanges'->'requiredRoles', ${defaults})) with ordinality r(role, n)
             where not exists (select 1 from jsonb_array_elements(c.approvals) d where d->>'role' = r.role)) o
          where c.status = 'awaiting_approvals' and c.proposed_by <> ${by} and o.mine is not null
            and not exists (select 1 from jsonb_array_elements(c.approvals) d where d->>'by' = ${by} or d->>'decision' = 'reject')
            and ${inPrograms('c.program_id')}
       ) i
      ${w.sql}
      order by i.requested_at, i.kind, i.program_id, i.id
      limit ${w.p(q.limit + 1)}`,
    w.params,
  );
  return rows;
}
