import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { recordDecisionRequest, verifyDecisionRequest } from '../../db/approval-requests';
import {
  AccessChangeError,
  createKey,
  createPrincipal,
  newSecret,
  putKey,
  updatePrincipal,
  type Principal,
  type Role,
} from '../../db/keys';
import { closeQuarter } from '../../workflows/close';
import { closeWorkflowId, DEFAULT_CLOSE_APPROVAL } from '../../domain/workflow-ids';
import {
  causeMessages,
  eventually,
  programBody,
  recordHistory,
  startCloseStack,
  uniqueId,
  type CloseStack,
} from '../helpers/stack';

// Keys scoped to programs; segregation of duties between people (issue 14, item 5). Principals are
// rows (people or services); a key belongs to one and uses only the roles both hold; SoD compares
// principal ids, never labels; admin does not stand in for an approver's role; a service cannot
// decide; a close's starter is the API's verified start request, not a workflow input.
let stack: CloseStack;
let pool: Pool;
let call: CloseStack['call'];

beforeAll(async () => {
  stack = await startCloseStack(15);
  ({ pool, call } = stack);
});
afterAll(async () => {
  await stack?.stop();
});

async function program(): Promise<string> {
  const programId = uniqueId('pr');
  const res = await call('POST', '/v1/programs', { body: programBody(programId) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}

/** A key of its own for `principal` (made if missing, given the roles), optionally only for some programs. */
async function keyOf(principal: string, roles: Role[], o: { kind?: 'person' | 'service'; programs?: string[] } = {}) {
  const keyId = uniqueId('k');
  const secret = newSecret(keyId);
  await putKey(pool, { keyId, secret, principal, roles, kind: o.kind, programs: o.programs ?? null });
  return secret;
}

const code = (r: { body: unknown }) => (r.body as { error?: { code?: string } }).error?.code;

async function awaitingApproval(p: string, period: string) {
  await eventually(
    `the close of ${period} awaits approval`,
    async () => {
      const r = await call('GET', `/v1/programs/${p}/closes/${period}`, { role: 'finance' });
      return r.status === 200 && r.body.step === 'awaiting_approval' ? true : null;
    },
    60_000,
  );
}

describe('a key limited to programs', () => {
  test('reaches its programs and nothing else; a refused write writes nothing', async () => {
    const [mine, theirs] = [await program(), await program()];
    const key = await keyOf(uniqueId('billing-eu'), ['billing'], { programs: [mine] });
    const accrual = (memberId: string) => ({
      memberId,
      invoiceId: uniqueId('inv'),
      amountMinor: 1000,
      occurredAt: new Date(Date.now() - 60_000).toISOString(),
    });
    const ok = await call('POST', `/v1/programs/${mine}/accruals`, { key, body: accrual('m1') });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const refused = await call('POST', `/v1/programs/${theirs}/accruals`, { key, body: accrual('m1') });
    assert.deepEqual([refused.status, code(refused)], [403, 'program_not_allowed']);
    const read = await call('GET', `/v1/programs/${theirs}`, { key });
    assert.deepEqual([read.status, code(read)], [403, 'program_not_allowed']);
    const member = await call('GET', `/v1/programs/${theirs}/members/m1`, { role: 'support' });
    assert.equal(member.status, 404, 'nothing was written for the other program');
    const me = await call('GET', '/v1/whoami', { key });
    assert.deepEqual(me.body.programs, [mine]);
    assert.equal(me.body.kind, 'service');
  });

  test('an admin key limited to one program cannot create another', async () => {
    const key = await keyOf(uniqueId('ops'), ['admin'], { programs: ['only-this'] });
    const other = uniqueId('pr');
    const res = await call('POST', '/v1/programs', { key, body: programBody(other) });
    assert.deepEqual([res.status, code(res)], [403, 'program_not_allowed']);
    assert.equal((await call('GET', `/v1/programs/${other}`)).status, 404);
  });

  test('cannot use the codec (payloads are not per program)', async () => {
    const key = await keyOf(uniqueId('support'), ['support'], { programs: ['p1'] });
    const res = await call('POST', '/codec/decode', { key, body: { payloads: [] } });
    // with no codec configured an unscoped key would get 503; a scoped one is refused before that
    assert.deepEqual([res.status, code(res)], [403, 'program_not_allowed']);
  });
});

describe('principals are people or services, and keys belong to them', () => {
  test('a key is made only for an existing, active principal and only with roles it holds', async () => {
    const alice = uniqueId('alice');
    await assert.rejects(
      createKey(pool, { principal: alice, roles: ['finance'] }),
      (e: unknown) => e instanceof AccessChangeError && e.code === 'principal_unknown',
    );
    await createPrincipal(pool, { principalId: alice, kind: 'person', roles: ['finance'] });
    await assert.rejects(
      createKey(pool, { principal: alice, roles: ['controller'] }),
      (e: unknown) => e instanceof AccessChangeError && e.code === 'role_not_held',
    );
    await assert.rejects(
      createPrincipal(pool, { principalId: alice, kind: 'service', roles: [] }),
      (e: unknown) => e instanceof AccessChangeError && e.code === 'principal_exists',
    );
    const { secret } = await createKey(pool, { principal: alice, roles: ['finance'] });
    await updatePrincipal(pool, alice, { disabled: true });
    const res = await call('GET', '/v1/whoami', { key: secret });
    assert.deepEqual([res.status, code(res)], [401, 'unauthorized'], 'a disabled principal authenticates nothing');
    await assert.rejects(
      createKey(pool, { principal: alice, roles: ['finance'] }),
      (e: unknown) => e instanceof AccessChangeError && e.code === 'principal_disabled',
    );
    // never deleted: the app role may not, and the table's trigger refuses even its owner
    await assert.rejects(pool.query('delete from principals where principal_id = $1', [alice]), /permission denied/);
    await assert.rejects(
      stack.db.adminPool.query('delete from principals where principal_id = $1', [alice]),
      /append_only/,
    );
  });

  test('a key uses only the roles its principal still holds', async () => {
    const bob = uniqueId('bob');
    const key = await keyOf(bob, ['finance', 'support']);
    await updatePrincipal(pool, bob, { roles: ['support'] });
    const me = await call('GET', '/v1/whoami', { key });
    assert.deepEqual(me.body.roles, ['support']);
    const p = await program();
    const res = await call('POST', `/v1/programs/${p}/closes`, { key, body: { period: '2026-Q1' } });
    assert.deepEqual([res.status, code(res)], [403, 'forbidden']);
  });
});

describe('segregation of duties between principals', () => {
  test('a close: not its starter under another key, not admin, not a service; another controller may', async () => {
    const p = await program();
    const dana = uniqueId('dana');
    const danaFinance = await keyOf(dana, ['finance']);
    const danaController = await keyOf(dana, ['controller']);
    const started = await call('POST', `/v1/programs/${p}/closes`, { key: danaFinance, body: { period: '2026-Q1' } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await awaitingApproval(p, '2026-Q1');
    const approve = (key: string) => call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { key });

    const own = await approve(danaController);
    assert.deepEqual([own.status, code(own)], [403, 'segregation_of_duties'], JSON.stringify(own.body));
    const admin = await approve(await keyOf(uniqueId('root'), ['admin']));
    assert.deepEqual([admin.status, code(admin)], [403, 'forbidden'], 'admin does not stand in for a controller');
    const robot = await approve(await keyOf(uniqueId('robot'), ['controller'], { kind: 'service' }));
    assert.deepEqual([robot.status, code(robot)], [403, 'decision_needs_person']);
    const status = await call('GET', `/v1/programs/${p}/closes/2026-Q1`, { role: 'finance' });
    assert.equal(status.body.step, 'awaiting_approval', 'no refused approval moved the close');

    const ok = await approve(await keyOf(uniqueId('erin'), ['controller']));
    assert.deepEqual([ok.status, ok.body.status], [200, 'locked'], JSON.stringify(ok.body));
    await recordHistory(stack.worker.client, closeWorkflowId(p, '2026-Q1'), 'close-start-verified');
    assert.equal(ok.body.approvedBy !== dana, true);
  });

  test("the workflow's own check: a decision of a disabled principal, a service, or admin alone does not count", async () => {
    const p = await program();
    const workflowId = closeWorkflowId(p, '2026-Q2');
    const request = async (principal: string, roles: Role[], kind: 'person' | 'service' = 'person') => {
      const keyId = uniqueId('k');
      await putKey(pool, { keyId, secret: newSecret(keyId), principal, roles, kind });
      const who: Principal = { keyId, name: principal, kind, roles, programs: null };
      return recordDecisionRequest(pool, who, {
        kind: 'close_approval',
        programId: p,
        subject: '2026-Q2',
        workflowId,
        decision: 'approve',
        comment: null,
      });
    };
    const verify = (requestId: string) =>
      verifyDecisionRequest(
        pool,
        requestId,
        { kind: 'close_approval', programId: p, subject: '2026-Q2', workflowId },
        ['controller'],
        'someone-else',
      );
    const frank = uniqueId('frank');
    const byFrank = await request(frank, ['controller']);
    assert.equal((await verify(byFrank)).ok, true);
    await updatePrincipal(pool, frank, { disabled: true });
    assert.deepEqual(await verify(byFrank).then((v) => !v.ok && v.code), 'unauthorized');
    assert.deepEqual(
      await verify(await request(uniqueId('bot'), ['controller'], 'service')).then((v) => !v.ok && v.code),
      'decision_needs_person',
    );
    assert.deepEqual(await verify(await request(uniqueId('adm'), ['admin'])).then((v) => !v.ok && v.code), 'forbidden');
  });

  test('a close started on Temporal under a made-up name freezes nothing', async () => {
    const p = await program();
    const handle = await stack.worker.client.workflow.start(closeQuarter, {
      workflowId: closeWorkflowId(p, '2026-Q1'),
      taskQueue: stack.worker.taskQueue,
      args: [{ programId: p, period: '2026-Q1', startedBy: 'nobody', override: null, ...DEFAULT_CLOSE_APPROVAL }],
    });
    await assert.rejects(handle.result(), (e: unknown) => /decision request/.test(causeMessages(e)));
    const close = await call('GET', `/v1/programs/${p}/closes/2026-Q1`, { role: 'finance' });
    assert.equal(close.status, 404, 'no close row: nothing frozen');
    const { rows } = await pool.query('select locked_until from programs where program_id = $1', [p]);
    assert.equal(rows[0].locked_until, null, 'the quarter was not frozen');
  });
});
