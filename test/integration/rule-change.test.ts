import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { verifyInvariants } from '../../db/verify';
import { ruleChangeWorkflowId } from '../../api/routes/rule-changes';
import {
  activateRuleChange,
  insertRuleChange,
  recordRuleChangeDecision,
  recordRuleChangeImpact,
  recordRuleChangeState,
} from '../../db/rule-changes';
import {
  principalKey,
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  recordHistory,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Rule changes: impact, approvals (the proposer never, one person one role, a rejection ends it),
// the notice period of an adverse change, activation by a durable timer, re-arming of members'
// deadlines after a shorter window (a member now past it expires), withdrawal, rollback.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  worker = await startWorker(pool);
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
});
afterAll(async () => {
  const result = await verifyInvariants(pool);
  await api.close();
  await worker.stop();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString();
const baseRules = (p: string) => {
  const {
    programId: _p,
    name: _n,
    currency: _c,
    ...rules
  } = programBody(p, { ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT3S' } });
  return rules as Record<string, unknown>;
};
async function program() {
  const p = uniqueId('rc');
  assert.equal(
    (
      await call('POST', '/v1/programs', {
        body: programBody(p, { ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT3S' } }),
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId: 'old', invoiceId: 'i-old', amountMinor: 50_000, occurredAt: daysAgo(200) },
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId: 'new', invoiceId: 'i-new', amountMinor: 30_000, occurredAt: daysAgo(10) },
      })
    ).status,
    201,
  );
  return p;
}
const propose = (p: string, changeId: string, rules: Record<string, unknown>, effectiveAt = new Date().toISOString()) =>
  call('POST', `/v1/programs/${p}/rule-changes`, {
    role: 'program_owner',
    body: { changeId, effectiveAt, rules, comment: 'test' },
  });
const decide = (
  p: string,
  changeId: string,
  role: 'finance' | 'legal' | 'admin' | 'program_owner',
  decision = 'approve',
) => call('POST', `/v1/programs/${p}/rule-changes/${changeId}/approvals`, { role, body: { decision } });
const read = async (p: string, changeId: string) =>
  (await call('GET', `/v1/programs/${p}/rule-changes/${changeId}`, { role: 'finance' })).body;
const awaiting = (p: string, changeId: string) =>
  eventually(`${changeId} awaiting approvals`, async () =>
    (await read(p, changeId)).status === 'awaiting_approvals' ? read(p, changeId) : null,
  );
const member = async (p: string, m: string) =>
  (await call('GET', `/v1/programs/${p}/members/${m}`, { role: 'support' })).body;

test('a shorter window: impact, approvals with segregation of duties, notice, activation, deadlines re-armed (a member past the new one expires); rollback', async () => {
  const p = await program();
  const shorter = { ...baseRules(p), expiry: { policy: 'rolling', window: 'P100D' } };
  // the quote shows the impact before the proposal, writing nothing; then the proposal records the same
  const quoted = await call('POST', `/v1/programs/${p}/quotes/rule-change`, {
    role: 'program_owner',
    body: { rules: shorter, baseVersion: 1 },
  });
  assert.equal(quoted.status, 200);
  assert.deepEqual(
    [quoted.body.baseVersion, quoted.body.requiredRoles, quoted.body.noticePeriod],
    [1, ['finance', 'legal'], 'PT3S'],
  );
  const stale = await call('POST', `/v1/programs/${p}/quotes/rule-change`, {
    role: 'finance',
    body: { rules: shorter, baseVersion: 2 },
  });
  assert.deepEqual([stale.status, stale.body.error.code], [409, 'rule_change_base_not_active']);
  const billing = await call('POST', `/v1/programs/${p}/quotes/rule-change`, {
    role: 'billing',
    body: { rules: shorter },
  });
  assert.equal(billing.status, 403);
  assert.equal((await call('GET', `/v1/programs/${p}/rule-changes`, { role: 'finance' })).body.items.length, 0);
  assert.equal((await propose(p, 'shorter', shorter)).status, 202);
  const c = await awaiting(p, 'shorter');
  assert.deepEqual(c.impact, quoted.body.impact);
  assert.deepEqual(c.impact.adverse, ['shorter expiry window']);
  assert.deepEqual(
    [
      c.impact.earlierExpiry.members,
      c.impact.earlierExpiry.alreadyPast.members,
      c.impact.earlierExpiry.alreadyPast.points,
    ],
    [2, 1, 500],
  );
  assert.deepEqual(c.impact.pointsPer10000Minor, { before: 100, after: 100 });

  const own = await decide(p, 'shorter', 'program_owner');
  assert.deepEqual([own.status, own.body.error.code], [403, 'segregation_of_duties']);
  const first = await decide(p, 'shorter', 'finance');
  assert.deepEqual(
    [first.status, first.body.status, first.body.approvals.map((a: { role: string }) => a.role)],
    [200, 'awaiting_approvals', ['finance']],
  );
  // the decision is in the audit chain as it is taken, before the change's status moves
  const chained = await pool.query(
    `select actor, after->>'role' as role from audit_log where subject = $1 and action = 'rule_change_approve'`,
    [`rule_change:${p}:shorter`],
  );
  assert.deepEqual(chained.rows, [{ actor: 'test-finance', role: 'finance' }]);
  const twice = await decide(p, 'shorter', 'finance');
  assert.deepEqual([twice.status, twice.body.error.code], [403, 'segregation_of_duties'], 'one person, one role');
  const approvedAt = Date.now();
  const byAdmin = await decide(p, 'shorter', 'admin');
  assert.deepEqual([byAdmin.status, byAdmin.body.error.code], [403, 'forbidden'], 'admin does not stand in for legal');
  const second = await decide(p, 'shorter', 'legal');
  assert.deepEqual(
    [second.body.status, second.body.approvals.map((a: { role: string; by: string }) => `${a.role}:${a.by}`)],
    ['scheduled', ['finance:test-finance', 'legal:test-legal']],
  );
  assert.ok(Date.parse(second.body.activatesAt) >= approvedAt + 3000 - 1000, 'adverse: not before the notice period');

  await eventually('active', async () => (await read(p, 'shorter')).status === 'active', 20_000);
  const prog = (await call('GET', `/v1/programs/${p}`, { role: 'finance' })).body;
  assert.deepEqual([prog.activeRuleVersion.version, prog.expiry.window], [2, 'P100D']);
  await eventually(
    'the member past the new deadline expired',
    async () => (await member(p, 'old')).balance === 0,
    20_000,
  );
  const fresh = await member(p, 'new');
  assert.equal(fresh.balance, 300);
  const { rows } = await pool.query(
    `select last_purchase_at from members where program_id = $1 and member_id = 'new'`,
    [p],
  );
  assert.equal(
    Date.parse(fresh.expiresAt),
    rows[0].last_purchase_at.getTime() + 100 * 86_400_000,
    'deadline recomputed: last purchase + 100 days',
  );
  await recordHistory(worker.client, c.workflowId, 'rule-change-active');
  // each entry records the rule version it was made under: the expiry under version 2
  const { rows: versions } = await pool.query(
    `select type, rule_version from ledger_entries where program_id = $1 and member_id = 'old' order by entry_id`,
    [p],
  );
  assert.deepEqual(
    versions.map((r) => [r.type, r.rule_version]),
    [
      ['earn', 1],
      ['expire', 2],
    ],
  );

  // rollback: the previous rules again, through the same path (a longer window is not adverse: no notice)
  assert.equal((await propose(p, 'rollback', baseRules(p))).status, 202);
  await awaiting(p, 'rollback');
  assert.deepEqual((await read(p, 'rollback')).impact.adverse, []);
  await decide(p, 'rollback', 'legal');
  await decide(p, 'rollback', 'finance');
  await eventually('rolled back', async () => (await read(p, 'rollback')).status === 'active', 20_000);
  const back = (await call('GET', `/v1/programs/${p}`, { role: 'finance' })).body;
  assert.deepEqual([back.activeRuleVersion.version, back.expiry.window], [3, 'P365D']);
});

test('one person holding admin and legal fills legal only: admin stands in for no open role', async () => {
  const p = await program();
  await propose(p, 'pat', { ...baseRules(p), earn: { points: 2, perAmountMinor: 100 } });
  await awaiting(p, 'pat');
  const pat = await principalKey(pool, ['admin', 'legal']);
  const first = await call('POST', `/v1/programs/${p}/rule-changes/pat/approvals`, {
    key: pat.key,
    body: { decision: 'approve' },
  });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(
    [first.body.status, first.body.approvals.map((a: { role: string; by: string }) => `${a.role}:${a.by}`)],
    ['awaiting_approvals', [`legal:${pat.principal}`]],
    'not finance: pat holds no finance role',
  );
  const legal = await decide(p, 'pat', 'legal');
  assert.deepEqual([legal.status, legal.body.error?.code], [409, 'forbidden'], 'legal is taken; finance is open');
  assert.equal((await decide(p, 'pat', 'finance')).body.status, 'scheduled');
});

test('a rejection ends it; an approved change that has not taken effect can be withdrawn; bad proposals', async () => {
  const p = await program();
  const richer = { ...baseRules(p), earn: { points: 2, perAmountMinor: 100 } };
  await propose(p, 'richer', richer);
  await awaiting(p, 'richer');
  const no = await decide(p, 'richer', 'legal', 'reject');
  assert.equal(no.body.status, 'rejected');
  const late = await decide(p, 'richer', 'finance');
  assert.equal(late.status, 409);
  // once its workflow has ended too: still 409, not a 500 (the update finds no running workflow)
  await worker.client.workflow.getHandle(ruleChangeWorkflowId(p, 'richer')).result();
  const later = await decide(p, 'richer', 'finance');
  assert.deepEqual([later.status, later.body.error?.code], [409, 'rule_change_not_awaiting_approval']);

  await propose(p, 'later', richer, new Date(Date.now() + 3_600_000).toISOString());
  await awaiting(p, 'later');
  await decide(p, 'later', 'finance');
  assert.equal((await decide(p, 'later', 'legal')).body.status, 'scheduled');
  assert.equal(
    (await call('POST', `/v1/programs/${p}/rule-changes/later/withdraw`, { role: 'program_owner' })).status,
    202,
  );
  await eventually('withdrawn', async () => (await read(p, 'later')).status === 'withdrawn');
  assert.equal((await call('GET', `/v1/programs/${p}`, { role: 'finance' })).body.activeRuleVersion.version, 1);
  assert.equal(
    (await call('POST', `/v1/programs/${p}/rule-changes/later/withdraw`, { role: 'program_owner' })).status,
    409,
  );

  const bad = await call('POST', `/v1/programs/${p}/rule-changes`, {
    role: 'program_owner',
    body: { changeId: 'x', effectiveAt: 'soon', rules: richer },
  });
  assert.deepEqual([bad.status, bad.body.error.code], [400, 'validation_failed']);
  const wrongRole = await call('POST', `/v1/programs/${p}/rule-changes`, {
    role: 'finance',
    body: { changeId: 'y', effectiveAt: new Date().toISOString(), rules: richer },
  });
  assert.equal(wrongRole.status, 403);
  const clash = await propose(p, 'later', { ...richer, pointValueMinor: 5 });
  assert.deepEqual([clash.status, clash.body.error.code], [409, 'rule_change_ended']);
  assert.equal(
    (await pool.query(`select count(*)::int as n from rule_changes where program_id = $1`, [p])).rows[0].n,
    2,
  );
  // a switch to the cost method needs the judgment that the points give no material right
  const toCost = { ...baseRules(p), accounting: { method: 'incremental_cost', costPerPointMinor: 1 } };
  const unjudged = await propose(p, 'to-cost', toCost);
  assert.deepEqual([unjudged.status, unjudged.body.error.code], [422, 'material_right_judgment_required']);
  assert.equal(
    (await pool.query(`select count(*)::int as n from rule_changes where program_id = $1`, [p])).rows[0].n,
    2,
  );
  const judged = {
    ...toCost,
    accounting: { ...toCost.accounting, notMaterialRight: { justification: 'a token reward, assessed by finance' } },
  };
  const at = new Date().toISOString();
  assert.equal((await propose(p, 'to-cost', judged, at)).status, 202);
  const again = await propose(p, 'to-cost', judged, at);
  assert.equal(again.status, 202, JSON.stringify(again.body));
  const stored = (
    await pool.query(`select rules from rule_changes where program_id = $1 and change_id = 'to-cost'`, [p])
  ).rows[0].rules;
  assert.equal(stored.accounting.notMaterialRight.judgedBy, 'test-program_owner');
  assert.equal(stored.accounting.notMaterialRight.justification, 'a token reward, assessed by finance');
});

/** The change's audit rows in order: the action, and the actor of the proposal and of each decision. */
const auditOf = async (p: string, changeId: string) =>
  (
    await pool.query(`select actor, action from audit_log where subject = $1 order by seq`, [
      `rule_change:${p}:${changeId}`,
    ])
  ).rows.map((r) =>
    r.action === 'rule_change_proposed' || r.action === 'rule_change_approve' || r.action === 'rule_change_reject'
      ? `${r.action}:${r.actor}`
      : r.action,
  );

test('a change activates only on its base: one approved after another version became active ends superseded; baseVersion must be the version in force', async () => {
  const p = await program();
  const richer = { ...baseRules(p), earn: { points: 2, perAmountMinor: 100 } };
  const dearer = { ...baseRules(p), pointValueMinor: 2 };
  // both proposed against version 1
  assert.equal((await propose(p, 'first', richer)).status, 202);
  assert.equal((await propose(p, 'second', dearer)).status, 202);
  await awaiting(p, 'first');
  await awaiting(p, 'second');
  assert.deepEqual([(await read(p, 'first')).baseVersion, (await read(p, 'second')).baseVersion], [1, 1]);
  await decide(p, 'first', 'finance');
  await decide(p, 'first', 'legal');
  await eventually('first active', async () => (await read(p, 'first')).status === 'active', 20_000);

  // the second was approved for a difference from version 1; version 2 is in force: not activated
  await decide(p, 'second', 'finance');
  assert.equal((await decide(p, 'second', 'legal')).body.status, 'scheduled');
  await eventually('second superseded', async () => (await read(p, 'second')).status === 'superseded', 20_000);
  const result = await worker.client.workflow.getHandle(ruleChangeWorkflowId(p, 'second')).result();
  assert.equal(result.status, 'superseded');
  await recordHistory(worker.client, ruleChangeWorkflowId(p, 'second'), 'rule-change-superseded');
  const prog = (await call('GET', `/v1/programs/${p}`, { role: 'finance' })).body;
  assert.deepEqual([prog.activeRuleVersion.version, prog.pointValueMinor], [2, 1], 'version 2 stays in force');
  assert.equal((await read(p, 'second')).version, null);
  assert.deepEqual(await auditOf(p, 'second'), [
    'rule_change_proposed:test-program_owner',
    'rule_change_awaiting_approvals',
    'rule_change_approve:test-finance',
    'rule_change_approve:test-legal',
    'rule_change_scheduled',
    'rule_change_superseded',
  ]);
  // proposed again under its id: refused; the program owner proposes it anew against version 2
  const again = await propose(p, 'second', dearer);
  assert.deepEqual([again.status, again.body.error.code], [409, 'rule_change_ended']);

  const stale = await call('POST', `/v1/programs/${p}/rule-changes`, {
    role: 'program_owner',
    body: { changeId: 'stale', effectiveAt: new Date().toISOString(), rules: dearer, baseVersion: 1 },
  });
  assert.deepEqual(
    [stale.status, stale.body.error.code, stale.body.error.details],
    [409, 'rule_change_base_not_active', { baseVersion: 1, activeVersion: 2 }],
  );
  assert.equal(
    (await pool.query(`select count(*)::int as n from rule_changes where program_id = $1 and change_id = 'stale'`, [p]))
      .rows[0].n,
    0,
  );
  // a change is the whole rule set: activated on version 2, `dearer` would have taken back the
  // first change's earn rate, which nobody approved; proposed anew, it carries it
  const anew = await call('POST', `/v1/programs/${p}/rule-changes`, {
    role: 'program_owner',
    body: {
      changeId: 'second-v2',
      effectiveAt: new Date().toISOString(),
      rules: { ...richer, pointValueMinor: 2 },
      baseVersion: 2,
    },
  });
  assert.equal(anew.status, 202);
  await awaiting(p, 'second-v2');
  assert.equal((await read(p, 'second-v2')).baseVersion, 2);
  await decide(p, 'second-v2', 'finance');
  await decide(p, 'second-v2', 'legal');
  await eventually('second-v2 active', async () => (await read(p, 'second-v2')).status === 'active', 20_000);
  const now = (await call('GET', `/v1/programs/${p}`, { role: 'finance' })).body;
  assert.deepEqual([now.activeRuleVersion.version, now.pointValueMinor, now.earn.points], [3, 2, 2]);
});

test('a rejected change stays rejected: not proposed again under its id, not re-opened, its decisions in the chain; verify catches an edited decision', async () => {
  const p = await program();
  const richer = { ...baseRules(p), earn: { points: 2, perAmountMinor: 100 } };
  await propose(p, 'no', richer);
  await awaiting(p, 'no');
  await decide(p, 'no', 'finance');
  assert.equal((await decide(p, 'no', 'legal', 'reject')).body.status, 'rejected');
  await worker.client.workflow.getHandle(ruleChangeWorkflowId(p, 'no')).result();
  await recordHistory(worker.client, ruleChangeWorkflowId(p, 'no'), 'rule-change-rejected');

  // the same proposal again, same id and rules: refused, and no second workflow run re-opens it
  const again = await propose(p, 'no', richer);
  assert.deepEqual([again.status, again.body.error.code], [409, 'rule_change_rejected']);
  const runs = [];
  for await (const w of worker.client.workflow.list({ query: `WorkflowId = '${ruleChangeWorkflowId(p, 'no')}'` }))
    runs.push(w.runId);
  assert.equal(runs.length, 1);
  const late = await decide(p, 'no', 'legal');
  assert.deepEqual([late.status, late.body.error.code], [409, 'rule_change_not_awaiting_approval']);
  const withdraw = await call('POST', `/v1/programs/${p}/rule-changes/no/withdraw`, { role: 'program_owner' });
  assert.equal(withdraw.status, 409);
  // nor by a write to its row, and never deleted
  await assert.rejects(
    pool.query(`update rule_changes set status = 'scheduled' where program_id = $1 and change_id = 'no'`, [p]),
    /rule_change_final/,
  );
  await assert.rejects(
    // (as the owner: the app role may not delete at all; the trigger refuses everyone)
    db.adminPool.query(`delete from rule_changes where program_id = $1 and change_id = 'no'`, [p]),
    /rule_change_final/,
  );
  const c = await read(p, 'no');
  assert.deepEqual(
    [c.status, c.approvals.map((a: { decision: string }) => a.decision)],
    ['rejected', ['approve', 'reject']],
  );
  assert.deepEqual(await auditOf(p, 'no'), [
    'rule_change_proposed:test-program_owner',
    'rule_change_awaiting_approvals',
    'rule_change_approve:test-finance',
    'rule_change_reject:test-legal',
    'rule_change_rejected',
  ]);

  // someone bypassing the triggers turns the rejection into an approval and schedules it: verify names it
  const check = (v: { check: string }) => v.check.startsWith("every rule change's proposal, decisions and status");
  assert.equal((await verifyInvariants(pool)).violations.filter(check).length, 0);
  const client = await db.adminPool.connect();
  try {
    await client.query('set session_replication_role = replica');
    const {
      rows: [before],
    } = await client.query(`select status, approvals from rule_changes where program_id = $1 and change_id = 'no'`, [
      p,
    ]);
    await client.query(
      `update rule_changes set status = 'scheduled', approvals = jsonb_set(approvals, '{1,decision}', '"approve"')
        where program_id = $1 and change_id = 'no'`,
      [p],
    );
    const found = (await verifyInvariants(pool)).violations.find(check);
    const problems = (found?.sample ?? []).map((r) => (r as { problem: string }).problem);
    assert.ok(
      problems.includes('decision on the change, not in the chain: test-legal approve as legal'),
      JSON.stringify(problems),
    );
    assert.ok(
      problems.includes('decision in the chain, not on the change: test-legal reject as legal'),
      JSON.stringify(problems),
    );
    assert.ok(problems.includes('status scheduled, the chain says rejected'), JSON.stringify(problems));
    await client.query(
      `update rule_changes set status = $2, approvals = $3 where program_id = $1 and change_id = 'no'`,
      [p, before.status, JSON.stringify(before.approvals)],
    );
  } finally {
    await client.query('set session_replication_role = origin');
    client.release();
  }
  assert.equal((await verifyInvariants(pool)).violations.filter(check).length, 0);
});

test('two changes on the same base activated at once: the program lock orders them, one becomes version 2, the other is superseded', async () => {
  const p = await program();
  const rules = baseRules(p);
  // both approved and scheduled through the same writes as the workflow's (so their chain rows are there)
  for (const [changeId, pointValueMinor] of [
    ['a', 2],
    ['b', 3],
  ] as const) {
    await insertRuleChange(pool, {
      programId: p,
      changeId,
      proposedBy: 'olga',
      baseVersion: 1,
      rules: { ...rules, pointValueMinor } as never,
      effectiveAt: new Date().toISOString(),
      comment: null,
    });
    await recordRuleChangeImpact(pool, p, changeId, {}, false);
    const approvals = [
      { role: 'finance', by: 'fred', decision: 'approve' as const, comment: null },
      { role: 'legal', by: 'lea', decision: 'approve' as const, comment: null },
    ];
    for (const decision of approvals) await recordRuleChangeDecision(pool, { programId: p, changeId, decision });
    await recordRuleChangeState(pool, { programId: p, changeId, status: 'scheduled', approvals, activatesAt: null });
  }
  const results = await Promise.all(['a', 'b'].map((c) => activateRuleChange(pool, p, c, 'olga')));
  assert.deepEqual(results.map((r) => r.version).sort(), [2, null]);
  const loser = results.find((r) => r.version === null)!;
  assert.deepEqual(loser.superseded, { baseVersion: 1, activeVersion: 2 });
  const { rows } = await pool.query(
    `select status, count(*)::int as n from rule_changes where program_id = $1 and change_id in ('a', 'b') group by 1 order by 1`,
    [p],
  );
  assert.deepEqual(rows, [
    { status: 'active', n: 1 },
    { status: 'superseded', n: 1 },
  ]);
  assert.equal(
    (await pool.query(`select max(version)::int as v from program_rule_versions where program_id = $1`, [p])).rows[0].v,
    2,
  );
  // activating again answers what was done, and moves nothing
  const again = await Promise.all(['a', 'b'].map((c) => activateRuleChange(pool, p, c, 'olga')));
  assert.deepEqual(
    again.map((r) => r.version),
    results.map((r) => r.version),
  );
});
