/**
 * As root, the embedded PostgreSQL from a checkout in a private (0700) folder, as in containers and
 * CI: the server runs as the postgres user, which can enter neither the folder of the binaries nor
 * that of the data. startPostgres must run it all the same (cli/stack/postgres-access.ts: the
 * binaries copied to a shared root-owned folder, the data there behind a symbolic link), and say so;
 * what it cannot do is one line saying what to do. Without that, initdb fails with EACCES.
 *
 * The binaries are the npm package's, hard-linked into the private folder, and the shared folder is
 * the test's own (LOYALTY_SHARED_DIR), removed at the end.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, expect, test } from 'vitest';
import { StackError } from '../../cli/stack/errors';
import { nativeBinaries } from '../../cli/stack/postgres-access';
import { startPostgres, type PostgresHandle } from '../../cli/stack/postgres';
import { freePort } from '../../cli/stack/process';

const isRoot = process.getuid?.() === 0;
if (!isRoot)
  process.stdout.write(
    '# postgres-root: skipped: not running as root (the case is root with a checkout in a 0700 folder)\n',
  );

const work = mkdtempSync(join(tmpdir(), 'loyalty-pgroot-'));
const handles: PostgresHandle[] = [];
afterAll(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
  delete process.env.LOYALTY_SHARED_DIR;
  rmSync(work, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function selectOne(url: string): Promise<number> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ n: number }>('select 1 as n')).rows[0]!.n;
  } finally {
    await c.end();
  }
}

test.skipIf(!isRoot)(
  'as root, from a 0700 folder: binaries and data moved where the postgres user can reach them; restart finds the data; a taken port is one line',
  async () => {
    const priv = join(work, 'home');
    mkdirSync(priv, { mode: 0o700 });
    chmodSync(priv, 0o700);
    const checkout = join(priv, 'loyalty');
    // the package's native folder, in the private folder (hard links: no 60 MB copy)
    const native = join(checkout, 'native');
    mkdirSync(checkout);
    execFileSync('cp', ['-al', nativeBinaries().dir, native]);
    const dataDir = join(checkout, '.data', 'postgres');
    const shared = join(work, 'shared');
    process.env.LOYALTY_SHARED_DIR = shared;
    chmodSync(work, 0o755); // mkdtemp's 0700: the shared folder must be reachable (the private one stays closed)

    const port = await freePort();
    const pg = await startPostgres({ dataDir, port, binaries: native, logFile: join(work, 'postgres.log') });
    handles.push(pg);
    expect(pg.embedded).toBe(true);
    expect(await selectOne(pg.serverUrl)).toBe(1);

    // the binaries: a copy in the shared folder, root-owned, keyed by version
    const notes = pg.notes ?? [];
    expect(notes.some((n) => n.startsWith(`PostgreSQL's binaries run from ${shared}/pg-custom-`))).toBe(true);
    // the data: in the shared folder, `.data/postgres` a link to it
    expect(lstatSync(dataDir).isSymbolicLink()).toBe(true);
    const target = readlinkSync(dataDir);
    expect(target.startsWith(join(shared, 'data') + '/')).toBe(true);
    expect(pg.dataDir).toBe(target);
    expect(notes.some((n) => n.includes(`${dataDir} links to ${target}`) && n.includes(`cannot enter ${priv}`))).toBe(
      true,
    );
    expect(statSync(target).uid).not.toBe(0); // the postgres user's
    expect(statSync(priv).mode & 0o777).toBe(0o700); // nothing above the checkout was opened
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(alive(pid)).toBe(true);

    await pg.stop();
    handles.pop();
    expect(alive(pid)).toBe(false);

    // a second start: the same copy of the binaries and the same data (no initdb)
    const logBefore = readFileSync(join(work, 'postgres.log'), 'utf8');
    expect(logBefore).toContain('Success. You can now start the database server');
    const again = await startPostgres({ dataDir, port, binaries: native, logFile: join(work, 'postgres.log') });
    handles.push(again);
    expect(again.dataDir).toBe(target);
    expect(await selectOne(again.serverUrl)).toBe(1);
    const logAfter = readFileSync(join(work, 'postgres.log'), 'utf8').slice(logBefore.length);
    expect(logAfter).not.toContain('Success. You can now start the database server');

    // a taken port: a StackError, one line saying what to do
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const takenPort = (taken.address() as { port: number }).port;
    await again.stop();
    handles.pop();
    try {
      const err = await startPostgres({ dataDir, port: takenPort, binaries: native }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StackError);
      expect((err as Error).message).toMatch(new RegExp(`^port ${takenPort} is taken`));
      expect((err as Error).message).not.toContain('\n');
    } finally {
      taken.close();
    }
    expect(existsSync(realpathSync(dataDir))).toBe(true);

    // `.data` removed: the next start is a fresh cluster, and the old data is kept aside, never deleted
    rmSync(join(checkout, '.data'), { recursive: true, force: true });
    const fresh = await startPostgres({ dataDir, port, binaries: native, logFile: join(work, 'postgres.log') });
    handles.push(fresh);
    expect(fresh.dataDir).toBe(target);
    const keptAside = (fresh.notes ?? []).find((n) => n.includes('the data it linked to before is kept in'));
    expect(keptAside).toBeDefined();
    const aside = /kept in (\S+) \(/.exec(keptAside!)![1]!;
    expect(existsSync(join(aside, 'postgres', 'PG_VERSION'))).toBe(true);
    await fresh.stop();
    handles.pop();
  },
  120_000,
);
