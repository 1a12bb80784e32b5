import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer } from 'node:net';

/** A free TCP port on loopback, for tests that run their own servers. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The servers this process started (Temporal dev server, PostgreSQL) and has not seen exit, each
 * with the signal that stops it. They must not outlive us:
 * - on any exit of this process (process.exit from an error path included), the 'exit' hook below
 *   sends each its signal;
 * - on a death that runs no code (SIGKILL, a crash of the runtime), the kernel sends it: on Linux,
 *   `setpriv --pdeathsig` (util-linux) sets the child's parent-death signal before it execs the
 *   server, so the server gets its stop signal the moment we die. Without setpriv (not Linux, or a
 *   minimal image) only the 'exit' hook remains.
 * killTrackedChildren() is the stack's last resort when a graceful stop takes too long.
 */
const tracked = new Map<ChildProcess, NodeJS.Signals>();
let exitHookInstalled = false;

export function trackChild(child: ChildProcess, stopSignal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  tracked.set(child, stopSignal);
  child.once('exit', () => tracked.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => killTrackedChildren());
  }
}

/** Sends every tracked child its stop signal (or `signal`); synchronous, so usable in an 'exit' hook. */
export function killTrackedChildren(signal?: NodeJS.Signals): number {
  let n = 0;
  for (const [child, stopSignal] of tracked) {
    try {
      if (child.kill(signal ?? stopSignal)) n++;
    } catch {
      // already gone
    }
  }
  return n;
}

let setprivWorks: boolean | undefined;
/** Is util-linux's setpriv there, with --pdeathsig (2.33 and later)? */
function haveSetpriv(): boolean {
  if (setprivWorks === undefined) {
    setprivWorks =
      process.platform === 'linux' &&
      spawnSync('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  }
  return setprivWorks;
}

/**
 * spawn(), with the child tracked (see above) and, where setpriv is available, given `stopSignal`
 * as its parent-death signal. `uid`/`gid` in opts work as with spawn (the parent-death signal is set
 * after the switch, so it is kept). The caller checks that cmd exists: through setpriv, a missing
 * binary is an exit code 127, not an 'error' event.
 */
export function spawnGuarded(
  cmd: string,
  args: string[],
  stopSignal: NodeJS.Signals,
  opts: SpawnOptions = {},
): ChildProcess {
  const child = haveSetpriv()
    ? spawn('setpriv', ['--pdeathsig', stopSignal, '--', cmd, ...args], opts)
    : spawn(cmd, args, opts);
  trackChild(child, stopSignal);
  return child;
}

/** Starts a child with its output appended to a log file; the child dies with us (spawnGuarded). */
export function spawnLogged(
  cmd: string,
  args: string[],
  logFile: string,
  stopSignal: NodeJS.Signals = 'SIGTERM',
): ChildProcess {
  if (!existsSync(cmd)) throw new Error(`${cmd} does not exist`);
  mkdirSync(dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawnGuarded(cmd, args, stopSignal, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

/** Polls until check() resolves true, or throws after timeoutMs. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** SIGTERM (or `signal`), then SIGKILL after graceMs. */
export async function stopChild(
  child: ChildProcess,
  graceMs: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
