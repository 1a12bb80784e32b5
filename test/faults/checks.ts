/**
 * What must hold once the faults have stopped and everything has drained: the ledger's invariants,
 * a clean reconciliation, no saga left running or failed, and the ledger, billing and Temporal
 * agreeing with what the workload's own model says it was told.
 */
import type { Client as TemporalClient } from '@temporalio/client';
import type { Pool } from 'pg';
import { verifyInvariants } from '../../db/verify';
import { redemptionWorkflowId } from '../../domain/workflow-ids';
import { reconcileEverything } from '../helpers/stack';
import { simCall } from './http';
import type { Model, ProgramSpec, RedemptionRec } from './model';
import { sleep, type Rng } from './rng';
import { dbQuery } from './workload';

export interface CheckResult {
  name: string;
  problems: string[];
}

export interface CheckContext {
  pool: Pool;
  temporal: TemporalClient;
  taskQueue: string;
  billingUrl: string;
  model: Model;
  programs: ProgramSpec[];
  rng: Rng;
}

/** Seconds an expiry deadline may be past before its member counts as overdue (timers fire within a second). */
const OVERDUE_GRACE_SECONDS = 3;

const q = <R extends Record<string, unknown>>(c: CheckContext, sql: string, params: unknown[] = []) =>
  dbQuery<R>(c.pool, sql, params);

/** Waits (bounded) until nothing is in flight; returns what is still in flight if the bound passed. */
export async function drain(c: CheckContext, totalMs: number, note: (s: string) => void): Promise<string[]> {
  const deadline = Date.now() + totalMs;
  let lastNote = 0;
  for (;;) {
    const pending: string[] = [];
    const running = await c.temporal.workflow
      .count(`WorkflowType = 'redemptionSaga' AND ExecutionStatus = 'Running'`)
      .then(
        (r) => r.count,
        () => -1,
      );
    if (running !== 0) pending.push(`${running < 0 ? 'unknown number of' : running} redemption sagas running`);
    const [db] = await q<{ held: number; holds: number; wakeups: number; overdue: number }>(
      c,
      `
      select (select coalesce(sum(held), 0)::int from members) as held,
             (select count(*)::int from redemptions where status = 'held') as holds,
             (select count(*)::int from member_wakeups) as wakeups,
             (select count(*)::int from members where status = 'active' and expires_at < now() - make_interval(secs => $1)) as overdue`,
      [OVERDUE_GRACE_SECONDS],
    );
    if (db!.held > 0 || db!.holds > 0) pending.push(`${db!.holds} redemptions holding ${db!.held} points`);
    if (db!.wakeups > 0) pending.push(`${db!.wakeups} wake-ups in the outbox`);
    if (db!.overdue > 0) pending.push(`${db!.overdue} members past their expiry deadline`);
    if (pending.length === 0) return [];
    if (Date.now() > deadline) return pending;
    if (Date.now() - lastNote > 10_000) {
      note(`  draining: ${pending.join(', ')}`);
      lastNote = Date.now();
    }
    await sleep(1000);
  }
}

export async function runChecks(c: CheckContext, drainLeft: string[]): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const check = async (name: string, fn: () => Promise<string[]>) => {
    try {
      results.push({ name, problems: await fn() });
    } catch (e) {
      results.push({ name, problems: [`the check itself failed: ${(e as Error).stack ?? (e as Error).message}`] });
    }
  };
  await check(
    'everything drained after the faults stopped (no saga, hold, wake-up or deadline left over)',
    async () => drainLeft,
  );
  await check("every answer agreed with the workload's model, and every request got a final answer", async () => [
    ...c.model.mismatches,
  ]);
  await check('verifyInvariants (loyalty verify): no violation', async () =>
    (await verifyInvariants(c.pool)).violations.map(
      (v) => `${v.check}: ${v.count} rows, e.g. ${JSON.stringify(v.sample)}`,
    ),
  );
  await check('reconciliation of every program and day: no difference, nothing in progress', async () =>
    (await reconcileEverything(c.pool, { client: c.temporal, taskQueue: c.taskQueue })).map(
      (r) =>
        `${r.programId} ${r.date}: ${r.differenceCount} differences ${JSON.stringify(r.differences.slice(0, 3))}, in progress ${JSON.stringify(r.inProgress)}`,
    ),
  );
  await check('Temporal: no saga still running; no workflow failed, terminated, timed out or cancelled', async () =>
    temporalProblems(c),
  );
  for (const p of c.programs) {
    await check(
      `${p.id}: each accepted accrual is in the ledger once, with the model's points and its first answer`,
      async () => accrualProblems(c, p),
    );
    await check(`${p.id}: each refund is in the ledger once, as answered`, async () => refundProblems(c, p));
    await check(
      `${p.id}: each redemption ended as billing was told, in the ledger, in billing and in Temporal`,
      async () => redemptionProblems(c, p),
    );
    await check(`${p.id}: the merges in the ledger are the ones accepted`, async () => mergeProblems(c, p));
    await check(
      `${p.id}: each Idempotency-Key the workload used holds one response, the one it was answered`,
      async () => idempotencyProblems(c, p),
    );
    await check(
      `${p.id}: points add up: earned - revoked - redeemed - expired = balances${p.kind === 'keep' ? '; each balance as the model has it, nothing expired' : ''}`,
      async () => balanceProblems(c, p),
    );
    if (p.windowSeconds !== null) {
      await check(
        `${p.id}: points expire only after a full window without a purchase, never before the deadline, and none is left overdue`,
        async () => expiryProblems(c, p),
      );
      await check(
        `${p.id}: every point of a rolling program has a deadline (points given back after it expire again)`,
        async () => (await pointsWithoutDeadline(c, p)).map((r) => `no expiry deadline: ${JSON.stringify(r)}`),
      );
    }
  }
  return results;
}

async function temporalProblems(c: CheckContext): Promise<string[]> {
  const problems: string[] = [];
  const running = await c.temporal.workflow.count(`WorkflowType = 'redemptionSaga' AND ExecutionStatus = 'Running'`);
  if (running.count > 0) problems.push(`${running.count} redemption sagas still running`);
  const adjustments = await c.temporal.workflow.count(
    `WorkflowType = 'invoiceAdjustment' AND ExecutionStatus = 'Running'`,
  );
  if (adjustments.count > 0) problems.push(`${adjustments.count} invoice adjustments still running`);
  for await (const w of c.temporal.workflow.list({
    query: `ExecutionStatus = 'Failed' OR ExecutionStatus = 'Terminated' OR ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Canceled'`,
  })) {
    problems.push(`${w.workflowId} (${w.type}) ${w.status.name}`);
    if (problems.length > 50) break;
  }
  return problems;
}

async function accrualProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const problems: string[] = [];
  const rows = await q<{ invoice_id: string; accrual_id: string; points: string; amount_minor: string }>(
    c,
    'select invoice_id, accrual_id, points, amount_minor from accruals where program_id = $1',
    [p.id],
  );
  const byInvoice = new Map(rows.map((r) => [r.invoice_id, r]));
  const sent = c.model.accruals.filter((a) => a.p === p);
  const known = new Set(sent.map((a) => a.invoiceId));
  let points = 0;
  let accepted = 0;
  for (const a of sent) {
    const row = byInvoice.get(a.invoiceId);
    if (a.answer?.verdict === 'accepted') {
      accepted++;
      points += a.points;
      if (!row) problems.push(`${a.invoiceId}: accepted (${a.answer.status}) but not in the ledger`);
      else {
        if (Number(row.points) !== a.points || Number(row.amount_minor) !== a.amount)
          problems.push(
            `${a.invoiceId}: ledger ${row.points} pts for ${row.amount_minor}, model ${a.points} for ${a.amount}`,
          );
        if (row.accrual_id !== a.answer.body.accrualId)
          problems.push(
            `${a.invoiceId}: answered accrual ${a.answer.body.accrualId} (replayed: ${a.answer.replayed}), ledger has ${row.accrual_id}`,
          );
      }
    } else if (a.answer?.verdict === 'refused' && row) {
      problems.push(`${a.invoiceId}: refused (${a.answer.status}) but in the ledger`);
    }
  }
  for (const r of rows) if (!known.has(r.invoice_id)) problems.push(`${r.invoice_id}: in the ledger, never sent`);
  const [earn] = await q<{ n: number; pts: string }>(
    c,
    `select count(*)::int as n, coalesce(sum(points), 0) as pts from ledger_entries where program_id = $1 and type = 'earn'`,
    [p.id],
  );
  const unresolved = sent.filter((a) => a.answer?.verdict === 'unresolved').length;
  if (unresolved === 0 && (earn!.n !== accepted || Number(earn!.pts) !== points)) {
    problems.push(
      `earn entries: ${earn!.n} for ${earn!.pts} pts; model: ${accepted} accepted accruals for ${points} pts`,
    );
  }
  return problems;
}

async function refundProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const problems: string[] = [];
  const rows = await q<{
    refund_id: string;
    amount_minor: string;
    points_revoked: string;
    shortfall_points: string;
    entry_points: string | null;
    entries: number;
  }>(
    c,
    `
    select r.refund_id, r.amount_minor, r.points_revoked, r.shortfall_points,
           (select sum(points) from ledger_entries e where e.program_id = r.program_id and e.idempotency_key = 'refund:' || r.refund_id) as entry_points,
           (select count(*)::int from ledger_entries e where e.program_id = r.program_id and e.idempotency_key = 'refund:' || r.refund_id) as entries
      from refunds r where r.program_id = $1`,
    [p.id],
  );
  const byId = new Map(rows.map((r) => [r.refund_id, r]));
  const sent = c.model.refunds.filter((r) => r.p === p);
  const known = new Set(sent.map((r) => r.refundId));
  for (const r of sent) {
    const row = byId.get(r.refundId);
    if (r.answer?.verdict === 'accepted') {
      if (!row) {
        problems.push(`${r.refundId}: accepted but not in the ledger`);
        continue;
      }
      const revoked = Number(r.answer.body.pointsRevoked);
      if (
        Number(row.points_revoked) !== revoked ||
        Number(row.shortfall_points) !== Number(r.answer.body.shortfallPoints) ||
        Number(row.amount_minor) !== r.amount
      ) {
        problems.push(`${r.refundId}: answered ${JSON.stringify(r.answer.body)}, ledger ${JSON.stringify(row)}`);
      }
      if (row.entries !== 1 || Number(row.entry_points) !== -revoked)
        problems.push(`${r.refundId}: ${row.entries} ledger entries for ${row.entry_points} pts, answered -${revoked}`);
    } else if (r.answer?.verdict === 'refused' && row) {
      problems.push(`${r.refundId}: refused but in the ledger`);
    }
  }
  for (const r of rows)
    if (!known.has(r.refund_id) && !r.refund_id.startsWith('chargeback:'))
      problems.push(`${r.refund_id}: in the ledger, never sent`);
  return problems;
}

interface RedemptionRow {
  invoice_id: string;
  redemption_id: string;
  status: string;
  reason: string | null;
  points_applied: string;
  credit_minor: string;
  net: string | null;
  [k: string]: unknown;
}

/** What a redemption the workload got an answer for must have become: applied, reversed by our lost chargeback, or declined. */
function finalStatus(r: RedemptionRec): 'applied' | 'reversed' | 'declined' | null {
  if (r.answer?.verdict !== 'accepted') return null;
  if (r.answer.body.status === 'declined') return 'declined';
  return r.chargeback?.lost === 'accepted' ? 'reversed' : 'applied';
}

async function redemptionProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const problems: string[] = [];
  const rows = await q<RedemptionRow>(
    c,
    `
    select r.invoice_id, r.redemption_id::text, r.status, r.reason, r.points_applied, r.credit_minor,
           (select sum(points) from ledger_entries e where e.program_id = r.program_id
               and e.idempotency_key in ('redeem:' || r.invoice_id, 'redeem-reversal:' || r.invoice_id)) as net
      from redemptions r where r.program_id = $1`,
    [p.id],
  );
  const byInvoice = new Map(rows.map((r) => [r.invoice_id, r]));
  const claws = new Map(
    (
      await q<{ refund_id: string; points_revoked: string; shortfall_points: string; entry_points: string | null }>(
        c,
        `
    select r.refund_id, r.points_revoked, r.shortfall_points,
           (select sum(points) from ledger_entries e where e.program_id = r.program_id and e.idempotency_key = 'refund:' || r.refund_id) as entry_points
      from refunds r where r.program_id = $1 and r.refund_id like 'chargeback:%'`,
        [p.id],
      )
    ).map((r) => [r.refund_id, r]),
  );
  const sent = c.model.redemptions.filter((r) => r.p === p);
  const known = new Set(sent.map((r) => r.invoiceId));
  for (const rec of sent) {
    const final = finalStatus(rec);
    if (final === null) continue; // never answered: a mismatch already
    const inv = rec.invoiceId;
    const row = byInvoice.get(inv);
    const body = rec.answer!.body;
    const say = (s: string) =>
      problems.push(
        `${inv}: ${s} (answered ${JSON.stringify(body)}; chargeback ${JSON.stringify(rec.chargeback)}; ledger ${JSON.stringify(row ?? null)})`,
      );
    // the ledger
    if (final === 'declined') {
      // compensated after the commit (the GL refused): the ledger shows a redeem and its reversal
      const compensated = row?.status === 'reversed' && row.reason === 'compensated';
      if (row && row.status !== 'declined' && !compensated) say(`declined to billing, ${row.status} in the ledger`);
      if (row && Number(row.net ?? 0) !== 0) say(`declined, yet ${row.net} pts net in redeem entries`);
    } else if (!row) {
      say(`${final} but no redemption in the ledger`);
    } else {
      if (row.status !== final) say(`should be ${final}, the ledger says ${row.status}`);
      if (
        row.redemption_id !== body.redemptionId ||
        Number(row.points_applied) !== Number(body.pointsApplied) ||
        Number(row.credit_minor) !== Number(body.creditMinor)
      )
        say('the ledger differs from the answer');
      const net = Number(row.net ?? 0);
      if (net !== (final === 'applied' ? -Number(body.pointsApplied) : 0)) say(`redeem entries net ${net} pts`);
      if (final === 'reversed' && row.reason !== `chargeback_lost:${rec.chargeback!.chargebackId}`)
        say('reversed for another reason');
    }
    // the claw-back of a reversed redemption's earned points, once, never more than earned
    const claw = rec.chargeback ? claws.get(`chargeback:${rec.chargeback.chargebackId}`) : undefined;
    if (final === 'reversed' && rec.accrual) {
      if (!claw) say('reversed by a lost chargeback, but the points earned on the invoice were not clawed back');
      else if (
        Number(claw.points_revoked) + Number(claw.shortfall_points) !== rec.accrual.points ||
        Number(claw.entry_points ?? 0) !== -Number(claw.points_revoked)
      ) {
        say(`claw-back ${JSON.stringify(claw)} of an invoice that earned ${rec.accrual.points} pts`);
      }
    } else if (claw) {
      say(`clawed back ${JSON.stringify(claw)} though not reversed or nothing earned`);
    }
    // billing: one credit applied for an applied redemption, none otherwise
    const invoice = (await simCall(
      `${c.billingUrl}/invoices/${encodeURIComponent(inv)}`,
      'GET',
      undefined,
      null,
      c.rng,
    )) as {
      credits: Array<{ creditId: string; amountMinor: number; source: string | null; reversedAt: string | null }>;
    };
    const ours = invoice.credits.filter((x) => x.source === `loyalty:${p.id}`);
    const active = ours.filter((x) => x.reversedAt === null);
    if (final === 'applied') {
      if (
        active.length !== 1 ||
        active[0]!.creditId !== body.redemptionId ||
        active[0]!.amountMinor !== Number(body.creditMinor)
      )
        say(`billing's credits ${JSON.stringify(ours)}`);
    } else if (active.length !== 0) {
      say(`${final}, yet billing has ${JSON.stringify(active)} applied`);
    }
    if (final === 'reversed' && !ours.some((x) => x.creditId === body.redemptionId && x.reversedAt !== null))
      say(`billing never reversed the credit: ${JSON.stringify(ours)}`);
    // Temporal: the saga's last run says the same
    try {
      const result = (await c.temporal.workflow.getHandle(redemptionWorkflowId(p.id, inv)).result()) as
        { status: string; reason?: string | null } | undefined;
      // a later run (the request sent again after the first run ended) reports what the first
      // decided, as the ledger keeps it: compensated after the commit is `reversed`, reason
      // `compensated`, which billing was told as declined (the workload reads the answer alike)
      const status = result?.status === 'reversed' && result.reason === 'compensated' ? 'declined' : result?.status;
      if (status !== final) say(`the saga's result is ${JSON.stringify(result)}`);
    } catch (e) {
      say(`the saga's result cannot be read: ${(e as Error).message}`);
    }
  }
  for (const r of rows)
    if (!known.has(r.invoice_id)) problems.push(`${r.invoice_id}: a redemption in the ledger that was never requested`);
  return problems;
}

async function mergeProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const rows = await q<{ member_id: string; merged_into: string }>(
    c,
    `select member_id, merged_into from members where program_id = $1 and status = 'merged'`,
    [p.id],
  );
  const ledger = new Set(rows.map((r) => `${r.member_id}->${r.merged_into}`));
  // a merge repoints the members merged into the merged one at its survivor (chains stay one hop,
  // ll_merge): each accepted merge points at where its target's chain ends
  const into = new Map(
    c.model.merges.filter((m) => m.p === p && m.answer?.verdict === 'accepted').map((m) => [m.from, m.into]),
  );
  const survivor = (id: string) => {
    let at = id;
    for (let hops = 0; into.has(at) && hops <= into.size; hops++) at = into.get(at)!;
    return at;
  };
  const accepted = new Set([...into].map(([from, to]) => `${from}->${survivor(to)}`));
  const problems: string[] = [];
  for (const m of accepted) if (!ledger.has(m)) problems.push(`merge ${m} accepted, not in the ledger`);
  for (const m of ledger) if (!accepted.has(m)) problems.push(`merge ${m} in the ledger, not accepted`);
  return problems;
}

/** JSON with its keys sorted, so that two bodies compare by value. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : x,
  );
}

async function idempotencyProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const rows = await q<{ idem_key: string; status_code: number; response: unknown }>(
    c,
    'select idem_key, status_code, response from idempotency_keys where scope = $1',
    [p.id],
  );
  // keys are stored scoped by principal and route, `[principal, route, key]` (api/validate.ts
  // scopedIdempotencyKey): the workload's principals each use their own keys, so the key alone names it
  const clientKey = (k: string) => {
    if (!k.startsWith('[')) return k;
    try {
      const parts = JSON.parse(k) as unknown[];
      return typeof parts[2] === 'string' ? parts[2] : k;
    } catch {
      return k;
    }
  };
  const stored = new Map(rows.map((r) => [clientKey(r.idem_key), r]));
  const used: Array<[string, { verdict: string; status: number; body: unknown } | null]> = [
    ...c.model.accruals
      .filter((a) => a.p === p)
      .map((a) => [`accrual:${a.invoiceId}`, a.answer] as [string, typeof a.answer]),
    ...c.model.refunds
      .filter((r) => r.p === p)
      .map((r) => [`refund:${r.refundId}`, r.answer] as [string, typeof r.answer]),
    ...c.model.merges
      .filter((m) => m.p === p)
      .map((m) => [`merge:${m.from}:${m.into}`, m.answer] as [string, typeof m.answer]),
  ];
  const problems: string[] = [];
  for (const [key, answer] of used) {
    const row = stored.get(key);
    if (answer?.verdict === 'accepted') {
      // a replay answers 200 with the stored body of the first 201
      if (!row) problems.push(`${key}: accepted, no stored response`);
      else if (canonical(row.response) !== canonical(answer.body))
        problems.push(`${key}: answered ${canonical(answer.body)}, stored ${canonical(row.response)}`);
    } else if (answer?.verdict === 'refused' && row) {
      problems.push(`${key}: refused (${answer.status}), yet a response is stored: ${canonical(row.response)}`);
    }
  }
  return problems;
}

async function balanceProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const problems: string[] = [];
  const members = await q<{ member_id: string; balance: string; status: string }>(
    c,
    'select member_id, balance, status from members where program_id = $1',
    [p.id],
  );
  const [led] = await q<{ expired: string; clawed: string }>(
    c,
    `
    select coalesce(-(select sum(points) from ledger_entries where program_id = $1 and type = 'expire'), 0) as expired,
           coalesce((select sum(points_revoked) from refunds where program_id = $1 and refund_id like 'chargeback:%'), 0) as clawed`,
    [p.id],
  );
  const m = c.model;
  const earned = m.accruals
    .filter((a) => a.p === p && a.answer?.verdict === 'accepted')
    .reduce((s, a) => s + a.points, 0);
  const revoked = m.refunds
    .filter((r) => r.p === p && r.answer?.verdict === 'accepted')
    .reduce((s, r) => s + Number(r.answer!.body.pointsRevoked), 0);
  const redeemed = m.redemptions
    .filter((r) => r.p === p && finalStatus(r) === 'applied')
    .reduce((s, r) => s + Number(r.answer!.body.pointsApplied), 0);
  const balances = members.reduce((s, r) => s + Number(r.balance), 0);
  const expired = Number(led!.expired);
  const unresolved = [...m.accruals, ...m.refunds, ...m.redemptions].filter(
    (x) => x.p === p && x.answer?.verdict === 'unresolved',
  ).length;
  if (unresolved === 0 && earned - revoked - Number(led!.clawed) - redeemed - expired !== balances) {
    problems.push(
      `earned ${earned} - revoked ${revoked} - clawed back ${led!.clawed} - redeemed ${redeemed} - expired ${expired} = ${earned - revoked - Number(led!.clawed) - redeemed - expired}, but the balances add up to ${balances}`,
    );
  }
  if (p.kind === 'keep') {
    if (expired !== 0) problems.push(`${expired} points expired in a program without expiry`);
    const book = m.keep;
    let inexact = 0;
    for (const r of members) {
      if (!book.exact(r.member_id)) {
        inexact++;
        continue;
      }
      const want = book.mergedInto.has(r.member_id) ? 0 : (book.balance.get(r.member_id) ?? 0);
      if (Number(r.balance) !== want)
        problems.push(`${r.member_id} (${r.status}): balance ${r.balance}, model ${want}`);
    }
    for (const x of book.exists)
      if (!members.some((r) => r.member_id === x)) problems.push(`${x}: accrued, but no member row`);
    if (inexact > 0)
      problems.push(`${inexact} members the model lost track of (an operation on them never got a final answer)`);
  }
  return problems;
}

async function expiryProblems(c: CheckContext, p: ProgramSpec): Promise<string[]> {
  const problems: string[] = [];
  // Each expiry's deadline (its occurred_at) is at least a window after every purchase credited to
  // the member since its previous expiry (purchase protection), and not after the moment it ran.
  const early = await q<Record<string, unknown>>(
    c,
    `
    with e as (
      select entry_id, member_id, type, occurred_at, recorded_at, reference,
             max(entry_id) filter (where type = 'expire' and reference not like '%:released-hold:%')
               over (partition by member_id order by entry_id rows between unbounded preceding and 1 preceding) as prev_expire
        from ledger_entries where program_id = $1)
    select x.member_id, x.entry_id, x.occurred_at as deadline, x.recorded_at, max(b.occurred_at) as last_purchase
      from e x join e b on b.member_id = x.member_id and b.type = 'earn' and b.entry_id < x.entry_id and b.entry_id > coalesce(x.prev_expire, 0)
     where x.type = 'expire' and x.reference not like '%:released-hold:%'
     group by 1, 2, 3, 4
    having max(b.occurred_at) + make_interval(secs => $2) > x.occurred_at
     limit 20`,
    [p.id, p.windowSeconds],
  );
  for (const r of early) problems.push(`expired before a full window after the last purchase: ${JSON.stringify(r)}`);
  const beforeDeadline = await q<Record<string, unknown>>(
    c,
    `
    select member_id, entry_id, occurred_at as deadline, recorded_at from ledger_entries
     where program_id = $1 and type = 'expire' and reference not like '%:released-hold:%' and occurred_at > recorded_at limit 20`,
    [p.id],
  );
  for (const r of beforeDeadline) problems.push(`expired before its deadline: ${JSON.stringify(r)}`);
  const overdue = await q<Record<string, unknown>>(
    c,
    `
    select member_id, balance, held, expires_at from members
     where program_id = $1 and status = 'active' and expires_at < now() - make_interval(secs => $2) limit 20`,
    [p.id, OVERDUE_GRACE_SECONDS],
  );
  for (const r of overdue)
    problems.push(`deadline passed more than ${OVERDUE_GRACE_SECONDS} s ago, nothing expired: ${JSON.stringify(r)}`);
  return problems;
}

/**
 * Members of a rolling program holding points with no deadline. Points given back after the
 * deadline had passed (a lost chargeback, a lowered invoice, a released hold) used to carry none and
 * never expired; ll_rearm_returned_points now re-arms it (issue 13, defect 8), so none should be left.
 */
export async function pointsWithoutDeadline(c: CheckContext, p: ProgramSpec): Promise<Array<Record<string, unknown>>> {
  if (p.windowSeconds === null) return [];
  return q(
    c,
    `select member_id, balance, last_purchase_at from members where program_id = $1 and status = 'active' and balance > 0 and expires_at is null order by member_id`,
    [p.id],
  );
}

/**
 * How often the saga's compensations found a call in doubt done (docs/redemption-saga.md, "Calls in
 * doubt"): billing credits applied, then reversed, for redemptions the ledger declined; GL entries
 * of compensated redemptions, followed there by their reversal. Counted, not checked.
 */
export async function callsInDoubtSettled(c: CheckContext): Promise<{ billingCredits: number; glEntries: number }> {
  const declined = await dbQuery<{ program_id: string; redemption_id: string; day: string }>(
    c.pool,
    `select program_id, redemption_id::text, created_at::date::text as day from redemptions where status = 'declined'`,
  );
  let billingCredits = 0;
  for (const key of new Set(declined.map((r) => `${r.program_id} ${r.day}`))) {
    const [programId, day] = key.split(' ') as [string, string];
    const { credits } = (await simCall(
      `${c.billingUrl}/credits?date=${day}&source=${encodeURIComponent(`loyalty:${programId}`)}`,
      'GET',
      undefined,
      null,
      c.rng,
    )) as {
      credits: Array<{ creditId: string; reversedAt: string | null }>;
    };
    const ids = new Set(declined.filter((r) => r.program_id === programId).map((r) => r.redemption_id));
    billingCredits += credits.filter((x) => ids.has(x.creditId) && x.reversedAt !== null).length;
  }
  const [gl] = await dbQuery<{ n: number }>(
    c.pool,
    `select count(*)::int as n from redemptions r join gl_postings g on g.program_id = r.program_id and g.journal_key = 'redeem:' || r.invoice_id
      where r.status = 'reversed' and r.reason = 'compensated'`,
  );
  return { billingCredits, glEntries: gl?.n ?? 0 };
}
