import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { accessTable } from '../../api/openapi';
import type { RouteDeclaration } from '../../api/route';
import { ROLES } from '../../db/keys';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// Who may do what: every endpoint against every role, as docs/access.md says; the key lifecycle
// through the CLI (create, list without secrets, rotate, revoke) and the access review.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
/** the routes as declared (api/route.ts), collected as the API registered them */
let ROUTE_DOCS: RouteDeclaration[];

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
  ROUTE_DOCS = api.app.routeCatalog.routes;
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

const cli = (...args: string[]) =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), ...args, '--database-url', db.url],
    { encoding: 'utf8' },
  );

test('docs/access.md holds the endpoint x role table the code enforces', () => {
  assert.ok(
    readFileSync(join(__dirname, '..', '..', 'docs', 'access.md'), 'utf8').includes(accessTable(ROUTE_DOCS)),
    'regenerate the table: npx tsx scripts/access-table.ts',
  );
});

test('every endpoint against every role: 403 forbidden exactly where the table says no; 401 without a key', async () => {
  const call = httpClient(api);
  const programId = uniqueId('acc');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
  const params: Record<string, string> = {
    programId,
    memberId: 'm-1',
    invoiceId: 'inv-1',
    period: '2026-Q1',
    date: '2026-01-01',
    adjustmentId: '00000000-0000-4000-8000-000000000000',
    changeId: 'c-1',
  };
  let checked = 0;
  for (const route of ROUTE_DOCS.filter((r) => r.roles !== 'none')) {
    const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => params[name]!);
    const method = route.method.toUpperCase() as 'GET' | 'POST';
    const anonymous = await call(method, path, { key: null, body: method === 'POST' ? {} : undefined });
    assert.deepEqual(
      [anonymous.status, anonymous.body.error?.code],
      [401, 'unauthorized'],
      `${method} ${route.path} without a key`,
    );
    for (const role of ROLES) {
      const allowed =
        route.roles === 'any' || (role === 'admin' && !route.decision) || (route.roles as string[]).includes(role);
      const res = await call(method, path, { role, body: method === 'POST' ? {} : undefined });
      if (allowed) assert.notEqual(res.status, 403, `${role} may ${method} ${route.path}: ${JSON.stringify(res.body)}`);
      else
        assert.deepEqual(
          [res.status, res.body.error?.code],
          [403, 'forbidden'],
          `${role} may not ${method} ${route.path}`,
        );
      checked++;
    }
  }
  assert.ok(checked >= ROUTE_DOCS.length * 5);
});

test('keys: created with the secret shown once, listed without it, rotated, revoked; the access review', async () => {
  const call = httpClient(api);
  // a key belongs to a principal that exists: a person or a service, with the roles it may hold
  const unknown = cli('keys', 'create', '--principal', 'alice', '--roles', 'finance', '--json');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /principal_unknown: no principal alice/);
  assert.equal(cli('principals', 'add', 'alice', '--kind', 'person', '--roles', 'finance,controller').status, 0);
  assert.equal(cli('principals', 'add', 'bob', '--kind', 'person', '--roles', 'support').status, 0);
  assert.equal(
    cli('principals', 'add', 'alice', '--kind', 'person', '--roles', 'support').status,
    2,
    'ids are never reused',
  );
  const notHeld = cli('keys', 'create', '--principal', 'bob', '--roles', 'finance');
  assert.equal(notHeld.status, 2);
  assert.match(notHeld.stderr, /role_not_held/);
  const created = cli('keys', 'create', '--principal', 'alice', '--roles', 'finance,controller', '--json');
  assert.equal(created.status, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { keyId: string; secret: string; roles: string[] };
  assert.deepEqual(key.roles, ['finance', 'controller']);
  assert.equal(
    (await call('GET', '/v1/programs/nope/liability', { key: key.secret })).status,
    404,
    'the new key works (404: no such program)',
  );

  const listed = cli('keys', 'list');
  assert.equal(listed.status, 0);
  assert.match(listed.stdout, new RegExp(`${key.keyId}\\s+alice\\s+finance,controller`));
  assert.ok(!listed.stdout.includes(key.secret), 'a listing never shows a secret');

  const rotated = cli('keys', 'rotate', key.keyId, '--json');
  assert.equal(rotated.status, 0, rotated.stderr);
  const next = JSON.parse(rotated.stdout) as { keyId: string; secret: string; revoked: string };
  assert.equal(next.revoked, key.keyId);
  assert.equal((await call('GET', '/v1/programs/nope/liability', { key: next.secret })).status, 404);

  const spare = JSON.parse(cli('keys', 'create', '--principal', 'bob', '--roles', 'support', '--json').stdout) as {
    keyId: string;
    secret: string;
  };
  assert.equal(cli('keys', 'revoke', spare.keyId).status, 0);
  const refused = await call('GET', '/v1/programs/nope/liability', { key: spare.secret });
  assert.deepEqual([refused.status, refused.body.error?.code], [401, 'unauthorized'], 'a revoked key is refused');
  assert.equal(cli('keys', 'revoke', 'k-nope').status, 1);
  assert.equal(cli('keys', 'create', '--principal', 'eve', '--roles', 'root').status, 2, 'an unknown role is refused');

  const review = cli('access-review', '--json');
  assert.equal(review.status, 0, review.stderr);
  const rows = JSON.parse(review.stdout) as Array<{
    principal: string;
    roles: string[];
    activeKeys: number;
    lastUsedAt: string | null;
  }>;
  const alice = rows.find((r) => r.principal === 'alice')!;
  assert.deepEqual([alice.roles, alice.activeKeys], [['controller', 'finance'], 1], 'only the rotated key is active');
  assert.ok(alice.lastUsedAt, 'last use recorded');
  assert.equal(rows.find((r) => r.principal === 'bob')?.activeKeys, 0, 'a principal with only revoked keys has none');
  const text = cli('access-review');
  assert.match(text.stdout, /alice\s+person\s+controller, finance\s+1 key\(s\), last used 20/);

  // disabling a principal stops every key of it (a new key: the API caches a known one for 10 s)
  const third = JSON.parse(cli('keys', 'create', '--principal', 'alice', '--roles', 'finance', '--json').stdout) as {
    secret: string;
  };
  assert.equal(cli('principals', 'disable', 'alice').status, 0);
  assert.equal((await call('GET', '/v1/whoami', { key: third.secret })).status, 401);
  assert.match(cli('principals', 'list').stdout, /alice\s+person\s+controller,finance\s+DISABLED/);
});
