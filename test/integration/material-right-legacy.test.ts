import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import { verifyInvariants } from '../../db/verify';
import {
  eventually,
  freshDatabase,
  rewriteAsLegacy,
  httpClient,
  programBody,
  startApi,
  uniqueId,
  type TestApi,
} from '../helpers/stack';

// Review finding (issue 13, defect 4): a program put on incremental_cost before the judgment that its
// points are no material right was required has none on record, and kept accruing provisions. Its
// new accruals are refused (422 material_right_judgment_required, nothing written) until rules
// with the judgment are in force.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
  call = httpClient(api);
});
afterAll(async () => {
  const result = await verifyInvariants(db.pool);
  await api.close();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

test('a cost-method program without the recorded judgment accrues nothing until a rule version records it', async () => {
  const p = uniqueId('legacy');
  const created = await call('POST', '/v1/programs', {
    body: programBody(p, {
      accounting: {
        method: 'incremental_cost',
        costPerPointMinor: 1,
        notMaterialRight: { justification: 'recorded later below' },
      },
    }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // what a program created before the requirement holds: the cost method, no judgment (the table
  // refuses any change to a rule version now: written as an older release left it, triggers off)
  await rewriteAsLegacy(
    db.adminPool,
    `update program_rule_versions set rules = rules #- '{accounting,notMaterialRight}' where program_id = $1`,
    [p],
  );
  const accrue = (invoiceId: string) =>
    call('POST', `/v1/programs/${p}/accruals`, {
      role: 'billing',
      body: { memberId: 'm', invoiceId, amountMinor: 10_000, occurredAt: new Date().toISOString() },
    });
  const written = async () =>
    (
      await db.pool.query(
        `select (select count(*)::int from accruals where program_id = $1) as accruals,
                (select count(*)::int from ledger_entries where program_id = $1) as entries,
                (select count(*)::int from journal_entries where program_id = $1) as journals`,
        [p],
      )
    ).rows[0];

  const refused = await eventually('the API reads the rules without the judgment', async () => {
    const r = await accrue('i-1');
    return r.status === 422 ? r : null;
  });
  assert.equal(refused.body.error.code, 'material_right_judgment_required');
  assert.deepEqual(await written(), { accruals: 0, entries: 0, journals: 0 });

  // a rule change records the judgment (its workflow is rule-change.test.ts's subject): a new
  // version in force now, with who judged and when
  await db.pool.query(
    `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
     select program_id, version + 1, now(),
            jsonb_set(rules, '{accounting,notMaterialRight}',
                      jsonb_build_object('justification', 'a 1% rebate any customer gets', 'judgedBy', 'test-admin', 'judgedAt', now())),
            'test-admin'
       from program_rule_versions where program_id = $1 order by version desc limit 1`,
    [p],
  );
  const accepted = await eventually('the API reads the rules with the judgment', async () => {
    const r = await accrue('i-1');
    return r.status === 201 ? r : null;
  });
  assert.equal(accepted.body.points, 100);
  assert.deepEqual(await written(), { accruals: 1, entries: 1, journals: 1 });
});
