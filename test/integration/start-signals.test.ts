/**
 * `npm start` stops, with every process it started, when the npm process alone gets SIGTERM or
 * SIGHUP (as a process manager or a container runtime sends them: to one pid, not to the group):
 * npm passes neither on to the stack (cli/stack/launcher.ts), so the stack must notice that npm is
 * gone. Each case starts `npm start` in its own process group, with its own data folder and free
 * ports, waits for /readyz, records every descendant of npm (the shell, tsx, the stack, the
 * Temporal dev server, PostgreSQL and its backends), signals npm alone, and expects all of them gone
 * within 10 s. SIGINT too, when the start script execs tsx (otherwise the shell npm runs it with
 * holds a SIGINT until its child exits: nothing can stop then).
 *
 * The cases share one data folder (the second start finds the cluster made by the first) and the
 * workflow bundle of the test run (LOYALTY_WORKFLOW_BUNDLE), so that each start is a few seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { freePort } from '../../cli/stack/process';

const ROOT = join(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'loyalty-start-signals-'));
// as root, PostgreSQL (run as postgres) must reach work/data/postgres, or the data goes to the shared folder
chmodSync(work, 0o711);
const leftovers: Proc[] = [];
afterAll(() => {
  for (const p of leftovers) if (alive(p)) process.kill(p.pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

interface Proc {
  pid: number;
  ppid: number;
  startTime: string;
  state: string;
  cmd: string;
}

function readProc(pid: number): Proc | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { pid, state: rest[0]!, ppid: Number(rest[1]), startTime: rest[19]!, cmd };
  } catch {
    return null;
  }
}

function descendants(root: number): Proc[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is Proc => p !== null);
  const found: Proc[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.pop()!;
    for (const p of all) {
      if (p.ppid === parent) {
        found.push(p);
        frontier.push(p.pid);
      }
    }
  }
  return found;
}

/** Still the same process (not exited, not a zombie, its pid not given to another)? */
function alive(p: Proc): boolean {
  const now = readProc(p.pid);
  return now !== null && now.startTime === p.startTime && now.state !== 'Z' && now.state !== 'X';
}

const startScriptExecs = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
).scripts.start.startsWith('exec ');

async function startStack(): Promise<{ npm: ChildProcess; apiPort: number; output: () => string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(LOYALTY_|TEMPORAL_|DATABASE_|npm_)/.test(k) || ['PORT', 'HOST'].includes(k)) continue;
    env[k] = v;
  }
  const apiPort = await freePort();
  Object.assign(env, {
    LOYALTY_DATA_DIR: join(work, 'data'),
    PORT: String(apiPort),
    LOYALTY_PG_PORT: String(await freePort()),
    LOYALTY_TEMPORAL_PORT: String(await freePort()),
    LOYALTY_TEMPORAL_UI_PORT: String(await freePort()),
    LOYALTY_BILLING_PORT: String(await freePort()),
    LOYALTY_GL_PORT: String(await freePort()),
    LOYALTY_TAX_PORT: String(await freePort()),
    LOYALTY_WORKER_METRICS_PORT: 'off',
    LOYALTY_SDK_METRICS_PORT: 'off',
    LOYALTY_RECONCILIATION_AT: 'off',
    LOYALTY_CLOSE_DAYS_AFTER_QUARTER: 'off',
    LOG_LEVEL: 'warn',
    ...(process.env.LOYALTY_TEST_WORKFLOW_BUNDLE
      ? { LOYALTY_WORKFLOW_BUNDLE: process.env.LOYALTY_TEST_WORKFLOW_BUNDLE }
      : {}),
  });
  // its own process group, as under a process manager: a signal to npm reaches npm alone
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  npm.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (npm.exitCode !== null || npm.signalCode !== null)
      throw new Error(`npm start exited before /readyz answered:\n${out.slice(-3000)}`);
    const ok = await fetch(`http://127.0.0.1:${apiPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`/readyz did not answer within 120 s:\n${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { npm, apiPort, output: () => out };
}

async function signalNpmAlone(signal: NodeJS.Signals): Promise<void> {
  const { npm, output } = await startStack();
  const tree = [readProc(npm.pid!)!, ...descendants(npm.pid!)];
  leftovers.push(...tree);
  const cmds = tree.map((p) => p.cmd);
  // what there is to stop: the stack under tsx, the dev server, PostgreSQL
  expect(
    cmds.some((c) => c.includes('cli/index.ts start')),
    cmds.join('\n'),
  ).toBe(true);
  expect(
    cmds.some((c) => /temporal.* server start-dev/.test(c)),
    cmds.join('\n'),
  ).toBe(true);
  expect(
    cmds.some((c) => /postgres -D/.test(c)),
    cmds.join('\n'),
  ).toBe(true);

  const t0 = Date.now();
  process.kill(npm.pid!, signal);
  let left = tree;
  while (Date.now() - t0 < 10_000) {
    left = tree.filter(alive);
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ms = Date.now() - t0;
  process.stdout.write(
    `# ${signal} to npm (pid ${npm.pid}) alone: npm and ${tree.length - 1} descendants, ${left.length ? `${left.length} still running after` : 'all gone in'} ${ms} ms\n`,
  );
  expect(
    left.map((p) => `${p.pid} ${p.cmd}`),
    output().slice(-3000),
  ).toEqual([]);
}

test(
  'SIGTERM to the npm start process alone stops every process it started within 10 s',
  () => signalNpmAlone('SIGTERM'),
  180_000,
);

test(
  'SIGHUP to the npm start process alone stops every process it started within 10 s',
  () => signalNpmAlone('SIGHUP'),
  180_000,
);

test.skipIf(!startScriptExecs)(
  'SIGINT to the npm start process alone stops every process it started within 10 s',
  () => signalNpmAlone('SIGINT'),
  180_000,
);
if (!startScriptExecs) {
  process.stdout.write(
    "# start-signals: the SIGINT case skipped: package.json's start script does not `exec` tsx, so the shell npm runs it in holds SIGINT (cli/stack/launcher.ts)\n",
  );
}
