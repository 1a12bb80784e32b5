import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { ensureDevKeys, DEV_PRINCIPALS } from '../../cli/dev-keys';
import { findPrincipal, revokeKey, rotateKey, updatePrincipal } from '../../db/keys';
import { freshDatabase } from '../helpers/stack';

// `npm start` makes one key per role and keeps them across restarts (cli/dev-keys.ts). A dev key
// someone revoked must stay revoked when the stack starts again: each start re-registers the keys,
// and an upsert that clears revoked_at would quietly bring back a key that was taken away.
let db: { pool: Pool; drop: () => Promise<void> };
let dir: string;

beforeAll(async () => {
  db = await freshDatabase();
  dir = mkdtempSync(join(tmpdir(), 'dev-keys-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

test('a revoked or rotated dev key stays revoked across restarts; the others keep their secrets', async () => {
  const file = join(dir, 'dev-keys.json');
  const first = await ensureDevKeys(db.pool, file);
  assert.deepEqual(Object.keys(first).sort(), Object.keys(DEV_PRINCIPALS).sort());
  assert.equal((await findPrincipal(db.pool, first['dev-admin']!))?.name, 'dev-admin');

  await revokeKey(db.pool, 'dev-admin');
  await rotateKey(db.pool, 'dev-support');
  const second = await ensureDevKeys(db.pool, file); // the next `npm start`
  assert.equal(await findPrincipal(db.pool, first['dev-admin']!), null, 'the revoked key does not work again');
  assert.equal(await findPrincipal(db.pool, first['dev-support']!), null, 'nor the rotated one');
  assert.equal(second['dev-admin'], undefined, 'not printed as a key to use');
  assert.equal(second['dev-support'], undefined);
  assert.equal(second['dev-billing'], first['dev-billing'], 'the others unchanged');
  assert.equal((await findPrincipal(db.pool, second['dev-billing']!))?.name, 'dev-billing');

  // nor does deleting the file (or editing it) bring the key back: the database says what is revoked
  rmSync(file);
  const third = await ensureDevKeys(db.pool, file);
  assert.equal(third['dev-admin'], undefined);
  assert.equal(JSON.parse(readFileSync(file, 'utf8'))['dev-admin'], undefined);
  assert.equal(await findPrincipal(db.pool, first['dev-admin']!), null);
});

test('a role taken from a dev principal, or the principal disabled, stays so across restarts', async () => {
  const file = join(dir, 'dev-keys-roles.json');
  const first = await ensureDevKeys(db.pool, file);
  await updatePrincipal(db.pool, 'dev-finance', { roles: ['support'] });
  await updatePrincipal(db.pool, 'dev-legal', { disabled: true });
  await ensureDevKeys(db.pool, file); // the next `npm start`
  assert.deepEqual((await findPrincipal(db.pool, first['dev-finance']!))?.roles, [], 'finance not given back');
  assert.equal(await findPrincipal(db.pool, first['dev-legal']!), null, 'still disabled');
});
