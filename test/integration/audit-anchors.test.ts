import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import { afterAll, describe, test } from 'vitest';
import {
  anchorConfigFrom,
  checkAuditAnchors,
  closeAnchorMemo,
  fileAnchorStore,
  readAnchorKey,
} from '../../db/audit-anchors';
import { verifyInvariants } from '../../db/verify';
import { glClient } from '../../activities/services/gl';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startCloseStack,
  uniqueId,
  type TestApi,
} from '../helpers/stack';

// Issue 14, item 2: someone holding the database's superuser rewrites a chain and recomputes every
// hash after it and the head, cuts its tail, or deletes it; the chains still link, so the chain
// check alone passes (asserted below); the signed anchors, written outside the database, catch each.
const anchorDir = mkdtempSync(join(tmpdir(), 'loyalty-anchors-'));
process.env.LOYALTY_AUDIT_ANCHOR_DIR = join(anchorDir, 'anchors');
process.env.LOYALTY_AUDIT_ANCHOR_KEY_FILE = join(anchorDir, 'key.pem');

let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
let p: string;

const cli = (...args: string[]) =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), ...args, '--database-url', db.url],
    { encoding: 'utf8' },
  );

async function asSuperuser<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await db.adminPool.connect();
  try {
    await c.query('set session_replication_role = replica');
    return await fn(c);
  } finally {
    await c.query('reset session_replication_role');
    c.release();
  }
}

/** Recomputes the hashes of `chain` from `fromSeq` on and moves its head to its last row, as a careful insider would. */
async function rehash(c: PoolClient, chain: number, fromSeq: number): Promise<void> {
  const { rows } = await c.query<{ seq: string }>(
    `select seq from audit_log where chain = $1 and seq >= $2 order by seq`,
    [chain, fromSeq],
  );
  for (const r of rows)
    await c.query(
      `update audit_log a set hash = ll_audit_hash(a.chain, a.seq, a.at, a.actor, a.action, a.program_id, a.member_id, a.subject,
              a.before, a.after, a.idempotency_key, coalesce((select b.hash from audit_log b where b.chain = a.chain and b.seq = a.seq - 1), ''))
        where a.chain = $1 and a.seq = $2`,
      [chain, r.seq],
    );
  await c.query(
    `update audit_chain_heads h set seq = coalesce(l.seq, 0), hash = coalesce(l.hash, '')
       from (select max(seq) as seq from audit_log where chain = $1) m
       left join audit_log l on l.chain = $1 and l.seq = m.seq
      where h.chain = $1`,
    [chain],
  );
}

const chainCheck = async () =>
  (await verifyInvariants(db.pool)).violations.filter((v) => v.check.startsWith('the audit log is intact'));

const accrue = async (member: string, invoice: string) =>
  assert.equal(
    (
      await httpClient(api)('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId: member, invoiceId: invoice, amountMinor: 10_000, occurredAt: '2026-10-01T00:00:00Z' },
      })
    ).status,
    201,
  );

/** A database with a program, two members' accruals, an anchor, then more accruals after it. */
async function anchoredLedger(): Promise<{ chain: number }> {
  db = await freshDatabase();
  api = await startApi(db.pool);
  p = uniqueId('an');
  assert.equal((await httpClient(api)('POST', '/v1/programs', { body: programBody(p) })).status, 201);
  await accrue('m-1', 'inv-1');
  await accrue('m-1', 'inv-1b');
  await accrue('m-2', 'inv-2');
  const anchored = cli('audit', 'anchor', '--label', 'test');
  assert.equal(anchored.status, 0, anchored.stderr);
  assert.match(anchored.stdout, /anchored 17 chains/);
  await accrue('m-1', 'inv-3'); // rows after the anchor: the rewrite below recomputes past it
  const clean = cli('verify');
  assert.equal(clean.status, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, /anchors: 1 signed checkpoint/);
  const { rows } = await db.pool.query<{ chain: number }>(
    `select chain from audit_log where program_id = $1 and member_id = 'm-1' limit 1`,
    [p],
  );
  return { chain: rows[0]!.chain };
}

async function teardown() {
  await api.close();
  await db.drop();
}

afterAll(() => rmSync(anchorDir, { recursive: true, force: true }));

describe('signed audit anchors', () => {
  test('a row rewritten with every hash after it and the head recomputed: only the anchor catches it', async () => {
    const { chain } = await anchoredLedger();
    try {
      await asSuperuser(async (c) => {
        const { rows } = await c.query<{ seq: string }>(
          `update audit_log set after = jsonb_set(after, '{points}', '1000')
            where program_id = $1 and subject in (select 'ledger_entry:' || entry_id from ledger_entries where program_id = $1 and idempotency_key = 'accrual:inv-1')
            returning seq`,
          [p],
        );
        await rehash(c, chain, Number(rows[0]!.seq));
      });
      assert.deepEqual(await chainCheck(), [], 'the chain links again: its own hashes cannot tell');
      const out = cli('verify');
      assert.equal(out.status, 1, out.stdout);
      assert.match(out.stdout, /VIOLATION no anchored audit row was rewritten/);
      const found = await checkAuditAnchors(db.pool, {
        store: fileAnchorStore(anchorConfigFrom().dir),
        key: readAnchorKey(anchorConfigFrom().keyFile),
      });
      assert.deepEqual(
        found.problems.map((x) => [x.problem, x.chain]),
        [['rewritten', chain]],
      );
    } finally {
      await teardown();
    }
  });

  test('a truncated tail (rows cut back past the anchor, the head moved back) is caught', async () => {
    const { chain } = await anchoredLedger();
    try {
      await asSuperuser(async (c) => {
        // from m-1's second accrual (anchored) on: the chain keeps its first row and ends before the anchored head
        const { rows } = await c.query<{ seq: string }>(
          `select seq from audit_log where chain = $1
              and subject in (select 'ledger_entry:' || entry_id from ledger_entries where program_id = $2 and idempotency_key = 'accrual:inv-1b')`,
          [chain, p],
        );
        await c.query(`delete from audit_log where chain = $1 and seq >= $2`, [chain, rows[0]!.seq]);
        await rehash(c, chain, Number(rows[0]!.seq));
      });
      assert.deepEqual(await chainCheck(), []);
      const out = cli('verify');
      assert.equal(out.status, 1, out.stdout);
      assert.match(out.stdout, /VIOLATION no audit chain is shorter than its last anchor \(truncated tail\)/);
    } finally {
      await teardown();
    }
  });

  test('a deleted chain (its rows gone, its head reset) is caught', async () => {
    const { chain } = await anchoredLedger();
    try {
      await asSuperuser(async (c) => {
        await c.query(`delete from audit_log where chain = $1`, [chain]);
        await c.query(`update audit_chain_heads set seq = 0, hash = '' where chain = $1`, [chain]);
      });
      assert.deepEqual(await chainCheck(), []);
      const out = cli('verify');
      assert.equal(out.status, 1, out.stdout);
      assert.match(out.stdout, /VIOLATION every audit chain an anchor names still exists \(deleted chain\)/);
    } finally {
      await teardown();
    }
  });

  test('an anchor edited in its file fails its signature; the close anchors once and its memo carries the head', async () => {
    await anchoredLedger();
    try {
      const file = join(
        anchorConfigFrom().dir,
        `${(await db.pool.query('select current_database() as d')).rows[0].d}.jsonl`,
      );
      const original = readFileSync(file, 'utf8');
      // someone lowers an anchored head in the file to match a truncated chain: the signature no longer holds
      writeFileSync(
        file,
        original.replace(/"seq":([1-9]\d*)/, (_m, n) => `"seq":${Number(n) - 1}`),
      );
      const out = cli('verify');
      assert.equal(out.status, 1, out.stdout);
      assert.match(out.stdout, /VIOLATION every audit anchor's signature holds/);
      writeFileSync(file, original);
      assert.equal(cli('verify').status, 0);

      const memo = await closeAnchorMemo(db.pool, p, '2026-Q4');
      assert.equal(await closeAnchorMemo(db.pool, p, '2026-Q4'), memo, 'a retried close reuses its anchor');
      const head = (await db.pool.query(`select seq, hash from audit_chain_heads where chain = 16`)).rows[0];
      assert.equal(memo, `audit 16:${head.seq}:${head.hash} anchor:${memo!.split('anchor:')[1]}`);
      assert.ok(`loyalty close 2026-Q4 ${memo}`.length <= 200, 'fits the GL description');
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      assert.equal(lines.filter((l) => l.includes(`"close:${p}:2026-Q4"`)).length, 1);
      assert.equal(cli('verify').status, 0);
    } finally {
      await teardown();
    }
  });

  test("a real close anchors the chains and its GL entry's description carries chain 16's head and the anchor's digest", async () => {
    const stack = await startCloseStack(7);
    try {
      const q = uniqueId('ac');
      assert.equal((await stack.call('POST', '/v1/programs', { body: programBody(q) })).status, 201);
      assert.equal(
        (
          await stack.call('POST', `/v1/programs/${q}/accruals`, {
            role: 'billing',
            body: { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 10_000, occurredAt: '2026-02-01T00:00:00Z' },
          })
        ).status,
        201,
      );
      assert.equal(
        (await stack.call('POST', `/v1/programs/${q}/closes`, { role: 'finance', body: { period: '2026-Q1' } })).status,
        202,
      );
      await eventually(
        'awaiting approval',
        async () => {
          const s = (await stack.call('GET', `/v1/programs/${q}/closes/2026-Q1`, { role: 'controller' })).body;
          return s.step === 'awaiting_approval' ? s : null;
        },
        30_000,
      );
      const approved = await stack.call('POST', `/v1/programs/${q}/closes/2026-Q1/approve`, { role: 'controller' });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      // nothing redeemed, no catch-up: the close's entry is the one for the days no daily posting carried
      assert.equal(approved.body.glEntryId, `loyalty:${q}:close-rest:2026-Q1`);
      const entry = await glClient({ baseUrl: stack.sims.glUrl, timeoutMs: 1000 }).getEntry(approved.body.glEntryId);
      const m =
        /^loyalty close 2026-Q1 not posted daily \(1\) audit 16:(\d+):([0-9a-f]{64}) anchor:([0-9a-f]{16})$/.exec(
          entry.description,
        );
      assert.ok(m, entry.description);
      const database = (await stack.pool.query('select current_database() as d')).rows[0].d as string;
      const lines = readFileSync(join(anchorConfigFrom().dir, `${database}.jsonl`), 'utf8')
        .trim()
        .split('\n');
      const line = lines.find((l) => l.includes(`"close:${q}:2026-Q1"`))!;
      assert.equal(createHash('sha256').update(line).digest('hex').slice(0, 16), m[3]);
      const head = JSON.parse(line).checkpoint.chains.find((h: { chain: number }) => h.chain === 16);
      assert.deepEqual([String(head.seq), head.hash], [m[1], m[2]]);
      const found = await checkAuditAnchors(stack.pool, {
        store: fileAnchorStore(anchorConfigFrom().dir),
        key: readAnchorKey(anchorConfigFrom().keyFile),
      });
      assert.deepEqual([found.checkpoints, found.badSignatures, found.problems], [1, [], []]);
    } finally {
      await stack.stop();
    }
  });
});
