import type { Pool } from 'pg';

export interface Violation {
  check: string;
  count: number;
  sample: unknown[];
}

/** The invariants of DESIGN.md, each a query that returns the rows breaking it. */
const CHECKS: Array<{ name: string; sql: string }> = [
  {
    name: 'member balance equals the sum of its ledger entries',
    sql: `select m.program_id, m.member_id, m.balance, coalesce(s.total, 0) as ledger_total
            from members m left join (select program_id, member_id, sum(points) as total from ledger_entries group by 1, 2) s
              using (program_id, member_id)
           where m.balance <> coalesce(s.total, 0)`,
  },
  {
    name: 'member balance equals the sum of its cohort points',
    sql: `select m.program_id, m.member_id, m.balance, coalesce(s.total, 0) as cohort_total
            from members m left join (select program_id, member_id, sum(points) as total from member_cohorts group by 1, 2) s
              using (program_id, member_id)
           where m.balance <> coalesce(s.total, 0)`,
  },
  {
    name: 'available and held points are not negative',
    sql: `select program_id, member_id, balance, held from members where held < 0 or balance - held < 0`,
  },
  {
    name: 'merged members hold no points and point at an existing member',
    sql: `select m.program_id, m.member_id from members m
           where m.status = 'merged' and (m.balance <> 0 or not exists
                 (select 1 from members s where s.program_id = m.program_id and s.member_id = m.merged_into))`,
  },
  {
    name: 'ledger entry cohort split adds up to the entry',
    sql: `select e.entry_id, e.points, coalesce(sum(c.points), 0) as split
            from ledger_entries e left join ledger_entry_cohorts c on c.entry_id = e.entry_id
           group by e.entry_id, e.points having e.points <> coalesce(sum(c.points), 0)`,
  },
  {
    name: 'every journal entry balances and matches its lines',
    sql: `select j.journal_entry_id, j.debit_minor, j.credit_minor, sum(l.debit_minor) as lines_debit, sum(l.credit_minor) as lines_credit
            from journal_entries j left join journal_lines l on l.journal_entry_id = j.journal_entry_id
           group by j.journal_entry_id
          having j.debit_minor <> j.credit_minor or coalesce(sum(l.debit_minor), -1) <> j.debit_minor
              or coalesce(sum(l.credit_minor), -1) <> j.credit_minor`,
  },
  {
    name: 'cohort points outstanding agree between the ledger, members and cohort figures',
    sql: `with led as (select e.program_id, c.cohort, sum(c.points) as pts from ledger_entries e
                         join ledger_entry_cohorts c on c.entry_id = e.entry_id group by 1, 2),
               mem as (select program_id, cohort, sum(points) as pts from member_cohorts group by 1, 2),
               fig as (select program_id, cohort, sum(points_issued - points_revoked - points_redeemed - points_expired) as pts
                         from cohort_stripes group by 1, 2)
          select coalesce(led.program_id, mem.program_id, fig.program_id) as program_id,
                 coalesce(led.cohort, mem.cohort, fig.cohort) as cohort, led.pts as ledger, mem.pts as members, fig.pts as figures
            from led full join mem using (program_id, cohort) full join fig using (program_id, cohort)
           where coalesce(led.pts, 0) <> coalesce(mem.pts, 0) or coalesce(led.pts, 0) <> coalesce(fig.pts, 0)`,
  },
  {
    name: 'liability (or provision) per cohort equals allocated less reversed less recognised',
    sql: `with gl as (select j.program_id, l.cohort, l.account, sum(l.credit_minor - l.debit_minor) as liability
                        from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
                       where l.account in ('loyalty_contract_liability', 'loyalty_provision') group by 1, 2, 3),
               fig as (select s.program_id, s.cohort, sum(s.allocated_minor - s.allocated_reversed_minor) as net
                         from cohort_stripes s group by 1, 2)
          select fig.program_id, fig.cohort, fig.net, c.recognized_minor, gl.liability
            from fig join cohorts c using (program_id, cohort)
            left join gl on gl.program_id = fig.program_id and gl.cohort = fig.cohort and gl.account = c.liability_account
           where fig.net - c.recognized_minor <> coalesce(gl.liability, 0)`,
  },
  {
    // ASC 606-10-55-48: breakage and redemptions release what was allocated, never more; a negative
    // liability would be revenue recognised from nothing (issue 13, defects 3 and 7).
    name: 'no cohort recognises more than its posted allocation (no liability below zero)',
    sql: `select s.program_id, s.cohort, sum(s.allocated_minor - s.allocated_reversed_minor) as posted, c.recognized_minor
            from cohort_stripes s join cohorts c using (program_id, cohort)
           group by s.program_id, s.cohort, c.recognized_minor
          having c.recognized_minor > greatest(sum(s.allocated_minor - s.allocated_reversed_minor), 0)`,
  },
  {
    name: 'every accrual has its earn entry with the same points',
    sql: `select a.program_id, a.invoice_id, a.points, e.points as ledger_points
            from accruals a left join ledger_entries e
              on e.program_id = a.program_id and e.idempotency_key = 'accrual:' || a.invoice_id
           where e.entry_id is null or e.points <> a.points`,
  },
  {
    name: 'held points equal the points of held redemptions',
    sql: `select m.program_id, m.member_id, m.held, coalesce(h.total, 0) as holds
            from members m left join (select program_id, member_id, sum(points_applied) as total from redemptions
                                       where status = 'held' group by 1, 2) h using (program_id, member_id)
           where m.held <> coalesce(h.total, 0)`,
  },
  {
    name: "a redemption's cohort split adds up to its points",
    sql: `select r.program_id, r.invoice_id, r.points_applied, coalesce(sum(c.points), 0) as split
            from redemptions r left join redemption_cohorts c using (program_id, invoice_id)
           where r.status <> 'declined' or c.points is not null
           group by r.program_id, r.invoice_id, r.points_applied having r.points_applied <> coalesce(sum(c.points), 0)`,
  },
  {
    name: "a redemption's points given back add up over its cohorts and never exceed what it applied",
    sql: `select r.program_id, r.invoice_id, r.points_reversed, coalesce(sum(c.points_reversed), 0) as split
            from redemptions r left join redemption_cohorts c using (program_id, invoice_id)
           group by r.program_id, r.invoice_id, r.points_reversed, r.points_applied, r.status
          having (r.status <> 'declined' and r.points_reversed <> coalesce(sum(c.points_reversed), 0))
              or r.points_reversed > r.points_applied or (r.status = 'reversed' and r.points_reversed <> r.points_applied)`,
  },
  {
    name: 'the audit log is intact: every row hashes to its hash, and each chain links without gaps up to its head',
    sql: `with x as (
            select a.*, lag(a.hash) over w as lag_hash, lag(a.seq) over w as lag_seq from audit_log a
            window w as (partition by a.chain order by a.seq))
          select chain, seq, 'row' as problem from x
           where seq <> coalesce(lag_seq, 0) + 1
              or hash <> ll_audit_hash(chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, coalesce(lag_hash, ''))
          union all
          select h.chain, h.seq, 'head' from audit_chain_heads h
            left join audit_log a on a.chain = h.chain and a.seq = h.seq
           where h.seq > 0 and a.hash is distinct from h.hash`,
  },
  {
    name: 'no idempotency key is left claimed without a response',
    sql: `select scope, idem_key from idempotency_keys where status_code = 0`,
  },
];

export async function verifyInvariants(
  pool: Pool,
  sampleSize = 5,
): Promise<{ checks: number; violations: Violation[] }> {
  const violations: Violation[] = [];
  for (const c of CHECKS) {
    const { rows } = await pool.query(`select * from (${c.sql}) v limit ${sampleSize + 1}`);
    if (rows.length > 0) {
      const { rows: cnt } = await pool.query(`select count(*)::int as n from (${c.sql}) v`);
      violations.push({ check: c.name, count: cnt[0].n, sample: rows.slice(0, sampleSize) });
    }
  }
  return { checks: CHECKS.length, violations };
}
