import type { Pool } from 'pg';
import { canonicalLines, type JournalLine } from '../domain/reconciliation';
import { netPerAccount } from './journal';

const LIABILITY_ACCOUNTS = `('loyalty_contract_liability', 'loyalty_provision')`;

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
    // Every cohort (one with no stripe yet included; stripes of a cohort the table does not know are
    // a violation): the journal on its own account is exactly the tables' figure, both being sums of
    // the same rounded minor amounts.
    name: 'liability (or provision) per cohort equals allocated less reversed less recognised',
    sql: `with gl as (select j.program_id, l.cohort, l.account, sum(l.credit_minor - l.debit_minor) as liability
                        from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
                       where l.account in ('loyalty_contract_liability', 'loyalty_provision') group by 1, 2, 3),
               fig as (select s.program_id, s.cohort, sum(s.allocated_minor - s.allocated_reversed_minor) as net
                         from cohort_stripes s group by 1, 2)
          select coalesce(c.program_id, fig.program_id) as program_id, coalesce(c.cohort, fig.cohort) as cohort, fig.net,
                 c.recognized_minor, gl.liability
            from cohorts c full join fig on fig.program_id = c.program_id and fig.cohort = c.cohort
            left join gl on gl.program_id = c.program_id and gl.cohort = c.cohort and gl.account = c.liability_account
           where c.cohort is null or coalesce(fig.net, 0) - c.recognized_minor <> coalesce(gl.liability, 0)`,
  },
  {
    // ASC 606-10-55-48: breakage and redemptions release what was allocated, never more; a negative
    // liability would be revenue recognised from nothing (issue 13, defects 3 and 7). Read from the
    // journal, per cohort and account, whatever the cohort tables say.
    name: 'no liability is negative in the journal: per cohort, credits less debits on the contract liability and the provision are >= 0',
    sql: `select j.program_id, l.cohort, l.account, sum(l.credit_minor - l.debit_minor) as balance
            from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
           where l.account in ${LIABILITY_ACCOUNTS}
           group by 1, 2, 3 having sum(l.credit_minor - l.debit_minor) < 0`,
  },
  {
    // The same, as the cohort tables hold it: posted allocation less reversed less recognised.
    name: 'no liability is negative in the cohort figures: per cohort, allocation posted less reversed less recognised is >= 0',
    sql: `select s.program_id, s.cohort, sum(s.allocated_minor) as posted, sum(s.allocated_reversed_minor) as reversed, c.recognized_minor
            from cohort_stripes s join cohorts c using (program_id, cohort)
           group by s.program_id, s.cohort, c.recognized_minor
          having sum(s.allocated_minor - s.allocated_reversed_minor) - c.recognized_minor < 0
              or sum(s.allocated_minor - s.allocated_reversed_minor) < 0`,
  },
  {
    // With the check above (the cohort's own account equals posted - reversed - recognised, exactly:
    // both are sums of the same rounded minor amounts), this makes the journal's liability per
    // cohort the cohort figures' and nothing else: no liability line off its cohort's account, none
    // without a cohort, none on a cohort the tables do not know.
    name: "the journal holds each cohort's liability on the cohort's own account only, every liability line naming a known cohort",
    sql: `select j.program_id, l.cohort, l.account, c.liability_account as cohort_account, sum(l.credit_minor - l.debit_minor) as balance
            from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
            left join cohorts c on c.program_id = j.program_id and c.cohort = l.cohort
           where l.account in ${LIABILITY_ACCOUNTS}
           group by 1, 2, 3, 4
          having (c.liability_account is null or c.liability_account <> l.account) and sum(l.credit_minor - l.debit_minor) <> 0`,
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
    // Issue 14, item 2 (docs/audit.md): an intact chain proves nothing of a change that never got
    // its row (written with the triggers off). Each ledger entry, key change, close step, rule
    // version, manual adjustment's request and decision, principal, and decision request (an
    // approval, rejection, start or withdrawal asked for through the API, migrations 014 and 016) has
    // its row; rule changes are checked below. Journal entries have no row of their own (docs/audit.md says why).
    name: 'every ledger entry, key change, principal, close step, rule version, adjustment request and decision, and decision request has its audit row',
    sql: `with aud as (select subject, action from audit_log)
          select 'ledger_entry' as kind, e.program_id, e.entry_id::text as id, e.type as action from ledger_entries e
           where not exists (select 1 from aud a where a.subject = 'ledger_entry:' || e.entry_id and a.action = e.type)
          union all
          select 'key', null, k.key_id, v.action from api_keys k
            cross join lateral (values ('key_created'), (case when k.revoked_at is not null then 'key_revoked' end)) v(action)
           where v.action is not null and not exists (select 1 from aud a where a.subject = 'key:' || k.key_id and a.action = v.action)
          union all
          select 'principal', null, p.principal_id, v.action from principals p
            cross join lateral (values ('principal_created'), (case when p.disabled_at is not null then 'principal_disabled' end)) v(action)
           where v.action is not null and not exists (select 1 from aud a where a.subject = 'principal:' || p.principal_id and a.action = v.action)
          union all
          select 'close', c.program_id, c.period, 'close_' || c.status from closes c
           where not exists (select 1 from aud a where a.subject = 'period:' || c.program_id || ':' || c.period and a.action = 'close_' || c.status)
          union all
          select 'rule_version', v.program_id, v.version::text, 'rule_version' from program_rule_versions v
           where not exists (select 1 from aud a where a.subject = 'rules:' || v.program_id || ':' || v.version and a.action = 'rule_version')
          union all
          select 'adjustment', m.program_id, m.adjustment_id::text, s.action from manual_adjustments m
            cross join lateral (values ('adjustment_requested'), (case when m.status <> 'pending_approval' then 'adjustment_' || m.status end)) s(action)
           where s.action is not null
             and not exists (select 1 from aud a where a.subject = 'adjustment:' || m.program_id || ':' || m.adjustment_id and a.action = s.action)
          union all
          select 'decision_request', d.program_id, d.request_id::text, d.kind from decision_requests d
           where not exists (select 1 from aud a where a.subject = 'decision_request:' || d.request_id and a.action = 'decision_requested')`,
  },
  {
    // Every locked close's stored report foots: opening + issued - recognised + adjusted = closing,
    // for the contract liability and the provision (absent from reports stored before it was
    // reported apart), recognised = its parts, and the points likewise.
    name: "every locked close's stored roll-forward foots (liability, provision, points)",
    sql: `select c.program_id, c.period, v.part, v.rf
            from closes c cross join lateral (values ('liability', c.report->'liability'), ('provision', c.report->'provision')) v(part, rf)
           where c.status = 'locked' and v.rf is not null and jsonb_typeof(v.rf) = 'object'
             and ((v.rf->>'openingMinor')::bigint + (v.rf->>'issuedMinor')::bigint - (v.rf->>'recognizedMinor')::bigint
                    + (v.rf->>'adjustedMinor')::bigint <> (v.rf->>'closingMinor')::bigint
                  or (v.rf->>'recognizedMinor')::bigint <> coalesce((v.rf->'recognized'->>'redemptionsMinor')::bigint, 0)
                       + coalesce((v.rf->'recognized'->>'breakageMinor')::bigint, 0) + coalesce((v.rf->'recognized'->>'estimateChangeMinor')::bigint, 0))
          union all
          select c.program_id, c.period, 'points', c.report->'points'
            from closes c
           where c.status = 'locked'
             and (c.report->'points'->>'opening')::bigint + (c.report->'points'->>'issued')::bigint - (c.report->'points'->>'redeemed')::bigint
                 - (c.report->'points'->>'expired')::bigint + (c.report->'points'->>'adjusted')::bigint <> (c.report->'points'->>'closing')::bigint`,
  },
  {
    // Each locked period opens where the previous one closed, and no quarter is skipped between two
    // locked closes (checkCanClose closes them in order).
    name: 'each locked period opens where the previous locked period closed (liability, provision, points), with no quarter skipped',
    sql: `with c as (select program_id, period, report, substr(period, 1, 4)::int * 4 + substr(period, 7, 1)::int - 1 as qn
                       from closes where status = 'locked'),
               x as (select c.*, lag(c.qn) over w as prev_qn, lag(c.report) over w as prev_report, lag(c.period) over w as prev_period
                       from c window w as (partition by c.program_id order by c.qn))
          select program_id, period, prev_period, 'quarter skipped' as problem from x where prev_qn is not null and qn <> prev_qn + 1
          union all
          select program_id, period, prev_period, v.part from x
           cross join lateral (values
             ('liability', (report->'liability'->>'openingMinor')::bigint, (prev_report->'liability'->>'closingMinor')::bigint),
             ('provision', (report->'provision'->>'openingMinor')::bigint, (prev_report->'provision'->>'closingMinor')::bigint),
             ('points', (report->'points'->>'opening')::bigint, (prev_report->'points'->>'closing')::bigint)) v(part, opening, prev_closing)
           where prev_qn = qn - 1 and v.opening is not null and v.prev_closing is not null and v.opening <> v.prev_closing`,
  },
  {
    // A locked period never changes (entries dated in it are refused), so its stored closing is
    // still what the journal and the ledger hold dated before its end. A report stored before the
    // provision was reported apart summed both accounts in its liability.
    name: "every locked close's stored closing equals the journal and the ledger as of the period's end",
    sql: `with c as (select program_id, period, report,
                            (make_date(substr(period, 1, 4)::int, substr(period, 7, 1)::int * 3 - 2, 1) + interval '3 months')::timestamp
                              at time zone 'UTC' as period_end
                       from closes where status = 'locked'),
               money as (select c.program_id, c.period,
                                coalesce(sum(l.credit_minor - l.debit_minor) filter (where l.account = 'loyalty_contract_liability'), 0) as liability,
                                coalesce(sum(l.credit_minor - l.debit_minor) filter (where l.account = 'loyalty_provision'), 0) as provision
                           from c left join journal_entries j on j.program_id = c.program_id and j.occurred_at < c.period_end
                           left join journal_lines l on l.journal_entry_id = j.journal_entry_id and l.account in ${LIABILITY_ACCOUNTS}
                          group by 1, 2),
               pts as (select c.program_id, c.period, coalesce(sum(e.points), 0) as points
                         from c left join ledger_entries e on e.program_id = c.program_id and e.occurred_at < c.period_end
                        group by 1, 2)
          select c.program_id, c.period, money.liability, money.provision, pts.points,
                 c.report->'liability'->>'closingMinor' as report_liability, c.report->'provision'->>'closingMinor' as report_provision,
                 c.report->'points'->>'closing' as report_points
            from c join money using (program_id, period) join pts using (program_id, period)
           where (c.report->'liability'->>'closingMinor')::bigint
                   <> money.liability + case when c.report ? 'provision' then 0 else money.provision end
              or (c.report ? 'provision' and (c.report->'provision'->>'closingMinor')::bigint <> money.provision)
              or (c.report->'points'->>'closing')::bigint <> pts.points`,
  },
  {
    // Goodwill is consideration payable to a customer, never a purchase (docs/accounting.md,
    // "Goodwill points"): no accrual, no purchase's earn or refund, no invoice's journal in a
    // '<quarter>-goodwill' cohort.
    name: 'goodwill cohorts carry no purchased points or allocation (no accrual, earn, refund or invoice journal in them)',
    sql: `select program_id, cohort, 'accrual' as kind, invoice_id as ref from accruals where cohort like '%-goodwill'
          union all
          select e.program_id, c.cohort, e.type, e.reference from ledger_entries e join ledger_entry_cohorts c on c.entry_id = e.entry_id
           where e.type in ('earn', 'earn_reversal') and c.cohort like '%-goodwill'
          union all
          select j.program_id, l.cohort, j.kind, j.reference from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
           where l.cohort like '%-goodwill' and (j.reference like 'invoice:%' or j.reference like 'refund:%')
             and j.kind <> 'redemption_tax'`,
  },
  {
    // The per-point allocation A/N of a purchased cohort is its purchases' alone: what it issued and
    // allocated (before revocations and reversals, which take back a share pro rata) is exactly what
    // its accruals earned and allocated, to the micro, so no goodwill point ever entered it.
    name: 'purchased cohorts issue and allocate exactly what their accruals did (goodwill never changes their per-point allocation)',
    sql: `with fig as (select program_id, cohort, sum(points_issued) as issued, sum(allocated_minor) as allocated, sum(allocated_micro) as micro
                         from cohort_stripes where cohort not like '%-goodwill' group by 1, 2),
               acc as (select program_id, cohort, sum(points) as issued, sum(allocated_minor) as allocated, sum(allocated_micro) as micro
                         from accruals group by 1, 2)
          select coalesce(fig.program_id, acc.program_id) as program_id, coalesce(fig.cohort, acc.cohort) as cohort,
                 fig.issued, acc.issued as accrued_points, fig.allocated, acc.allocated as accrued_minor, fig.micro, acc.micro as accrued_micro
            from fig full join acc using (program_id, cohort)
           where coalesce(fig.cohort, acc.cohort) not like '%-goodwill'
             and (coalesce(fig.issued, 0) <> coalesce(acc.issued, 0) or coalesce(fig.allocated, 0) <> coalesce(acc.allocated, 0)
                  or coalesce(fig.micro, 0) <> coalesce(acc.micro, 0))`,
  },
  {
    name: 'no idempotency key is left claimed without a response',
    sql: `select scope, idem_key from idempotency_keys where status_code = 0`,
  },
  {
    // Issue 14, items 2 and 9 (db/functions/ll_audit_rule_change.sql, docs/rule-changes.md): the
    // chain, not the mutable approvals and status columns, is the record of a rule change's
    // decisions; an edited column, a decision written around the trigger or a deleted change shows here.
    name: "every rule change's proposal, decisions and status are in the audit chain, and an applied change had its approvals",
    sql: `with rc as (select program_id, change_id, 'rule_change:' || program_id || ':' || change_id as subject, proposed_by, base_version,
                         rules, status, approvals, version from rule_changes),
               aud as (select subject, seq, actor, action, after from audit_log where chain = 16 and subject like 'rule\\_change:%'),
               chained as (select subject, actor as by, after->>'role' as role, after->>'decision' as decision from aud
                            where action in ('rule_change_approve', 'rule_change_reject')),
               col as (select rc.subject, a->>'by' as by, a->>'role' as role, a->>'decision' as decision
                         from rc cross join lateral jsonb_array_elements(rc.approvals) a),
               last_status as (select distinct on (subject) subject,
                                      case when action = 'rule_change_proposed' then 'assessing' else after->>'status' end as status
                                 from aud where action not in ('rule_change_approve', 'rule_change_reject') order by subject, seq desc)
          select rc.program_id, rc.change_id, p.problem from rc join lateral (
                   select 'no proposal in the chain' as problem
                    where not exists (select 1 from aud where aud.subject = rc.subject and aud.action = 'rule_change_proposed')
                   union all
                   select format('decision on the change, not in the chain: %s %s as %s', col.by, col.decision, col.role) from col
                    where col.subject = rc.subject and not exists (select 1 from chained c where c.subject = col.subject
                          and c.by = col.by and c.role = col.role and c.decision = col.decision)
                   union all
                   select format('decision in the chain, not on the change: %s %s as %s', c.by, c.decision, c.role) from chained c
                    where c.subject = rc.subject and not exists (select 1 from col where col.subject = c.subject
                          and col.by = c.by and col.role = c.role and col.decision = c.decision)
                   union all
                   select format('status %s, the chain says %s', rc.status, coalesce(ls.status, 'nothing')) from (select 1) x
                     left join last_status ls on ls.subject = rc.subject where ls.status is distinct from rc.status
                   union all
                   select format('%s without an approval as %s in the chain by someone other than the proposer', rc.status, r.role)
                     from program_rule_versions v
                    cross join lateral jsonb_array_elements_text(coalesce(v.rules->'ruleChanges'->'requiredRoles', '["finance","legal"]')) r(role)
                    where v.program_id = rc.program_id and v.version = rc.base_version and rc.status in ('scheduled', 'active')
                      and not exists (select 1 from chained c where c.subject = rc.subject and c.role = r.role
                                      and c.decision = 'approve' and c.by <> rc.proposed_by)
                   union all
                   select format('%s decided %s times', c.by, count(*)) from chained c where c.subject = rc.subject group by c.by having count(*) > 1
                   union all
                   select format('active as version %s, whose rules are not the change''s or have no rule_version row in the chain', rc.version)
                    where rc.status = 'active' and (rc.version is null
                          or not exists (select 1 from program_rule_versions v where v.program_id = rc.program_id and v.version = rc.version and v.rules = rc.rules)
                          or not exists (select 1 from audit_log a where a.chain = 16 and a.action = 'rule_version'
                                         and a.subject = 'rules:' || rc.program_id || ':' || rc.version))
                 ) p on true
          union all
          select null, s.subject, 'the chain names a rule change that does not exist'
            from (select distinct subject from aud) s where not exists (select 1 from rc where rc.subject = s.subject)`,
  },
  {
    // Issue 15, item 5 (db/functions/ll_plan_gl_batch.sql): a daily or close batch sends the GL the
    // lines it stored when it claimed its journal entries; those must be the claimed entries' lines
    // net per account, or the GL got something the subledger does not hold.
    name: "every GL batch's lines are its journal entries' lines net per account",
    sql: `with claimed as (select c.entry_id, l.account, sum(l.debit_minor) - sum(l.credit_minor) as net
                             from gl_batch_journals c join journal_lines l on l.journal_entry_id = c.journal_entry_id group by 1, 2),
               stored as (select b.entry_id, x->>'account' as account, (x->>'debitMinor')::bigint - (x->>'creditMinor')::bigint as net
                            from gl_batches b cross join lateral jsonb_array_elements(b.lines) x)
          select coalesce(c.entry_id, s.entry_id) as entry_id, coalesce(c.account, s.account) as account,
                 c.net as journal_net, s.net as batch_net
            from (select * from claimed where net <> 0) c full join stored s on s.entry_id = c.entry_id and s.account = c.account
           where c.net is distinct from s.net`,
  },
  {
    // a batch is posted within minutes of being planned (its workflow retries); one a day old is a run that gave up
    name: 'no GL batch planned more than a day ago is left unposted',
    sql: `select b.entry_id, b.program_id, b.created_at from gl_batches b
           where b.created_at < now() - interval '1 day' and b.journal_count > 0
             and not exists (select 1 from gl_posted_journals g where g.gl_entry_id = b.entry_id)`,
  },
];

/**
 * Invariants that compare with what the ledger recorded posting to the GL: each returns the rows
 * breaking it. Lines compare the way the reconciliation compares them (net per account,
 * db/journal.ts netPerAccount; canonical form, domain/reconciliation.ts canonicalLines).
 */
const CHECKS_IN_CODE: Array<{ name: string; rows: (pool: Pool) => Promise<unknown[]> }> = [
  {
    // The subledger is what reached the GL: the journals marked as carried by a GL entry
    // (gl_posted_journals: a saga's journal, or everything a close posted) net, per account, to the
    // lines recorded for that entry (gl_postings), and an entry with anything to carry was recorded.
    name: 'every journal marked posted to the GL is in a recorded GL posting (gl_postings) with the same lines',
    rows: async (pool) => {
      const { rows: marked } = await pool.query<{
        gl_entry_id: string;
        program_id: string;
        account: string | null;
        d: string;
        c: string;
      }>(
        `select g.gl_entry_id, min(j.program_id) as program_id, l.account, coalesce(sum(l.debit_minor), 0)::text as d,
                coalesce(sum(l.credit_minor), 0)::text as c
           from gl_posted_journals g join journal_entries j on j.journal_entry_id = g.journal_entry_id
           left join journal_lines l on l.journal_entry_id = g.journal_entry_id
          group by g.gl_entry_id, l.account order by 1, 3`,
      );
      const { rows: postings } = await pool.query<{ entry_id: string; lines: JournalLine[] }>(
        `select entry_id, lines from gl_postings where entry_id in (select gl_entry_id from gl_posted_journals)`,
      );
      const recorded = new Map(postings.map((p) => [p.entry_id, p.lines]));
      const byEntry = new Map<string, { programId: string; rows: Array<{ account: string; d: string; c: string }> }>();
      for (const r of marked) {
        const e = byEntry.get(r.gl_entry_id) ?? { programId: r.program_id, rows: [] };
        if (r.account !== null) e.rows.push({ account: r.account, d: r.d, c: r.c });
        byEntry.set(r.gl_entry_id, e);
      }
      const broken: unknown[] = [];
      for (const [glEntryId, e] of byEntry) {
        const journal = netPerAccount(e.rows);
        const posted = recorded.get(glEntryId);
        // a close with nothing to post marks its journals with the id it would have used and posts nothing
        if (posted === undefined && journal.length === 0) continue;
        if (posted === undefined)
          broken.push({ glEntryId, programId: e.programId, problem: 'no gl_postings record', journal });
        else if (canonicalLines(posted) !== canonicalLines(journal))
          broken.push({ glEntryId, programId: e.programId, problem: 'lines differ', journal, posted });
      }
      return broken;
    },
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
  for (const c of CHECKS_IN_CODE) {
    const rows = await c.rows(pool);
    if (rows.length > 0) violations.push({ check: c.name, count: rows.length, sample: rows.slice(0, sampleSize) });
  }
  return { checks: CHECKS.length + CHECKS_IN_CODE.length, violations };
}
