/**
 * Notices when whatever launched the stack is gone, so that the stack stops with it.
 *
 * `npm start` is npm -> `sh -c "tsx cli/index.ts start"` -> tsx -> node (the stack). A signal sent
 * to the npm process alone, as a process manager or a container runtime may send it, does not
 * reach the stack (measured, npm 11, dash, tsx 4): npm forwards SIGINT and SIGTERM to its child, the
 * shell, only; on SIGTERM the shell dies and npm exits; on SIGHUP npm dies and forwards nothing;
 * either way tsx and the stack live on, orphaned, with the Temporal dev server and PostgreSQL.
 * (SIGINT the shell holds until its child exits, which needs the start script to `exec` tsx: then
 * npm's SIGINT and SIGTERM reach tsx, which relays them to the stack.)
 *
 * So the stack records its launchers when it starts, the chain of ancestors that only launch it:
 * from its parent up, each node process (tsx, npm, npx, a test runner) or shell running a `-c`
 * command, up to the first ancestor that is neither (an interactive shell, a terminal, an init, a
 * container's pid 1), which is not watched: `nohup npm start &` outlives its shell, as it should.
 * It then polls them (/proc, every 250 ms); when one has exited (or is a zombie, or its pid was
 * reused), onGone runs. Without /proc (not Linux) it watches its parent's pid only.
 */
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';

export interface Launcher {
  pid: number;
  /** the process's start time, in clock ticks since boot: a pid reused later has another */
  startTime: string;
  command: string;
}

const SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'zsh', 'ksh', 'busybox']);

function stat(pid: number): { ppid: number; state: string; startTime: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ... field 22 is starttime; comm may hold spaces and parentheses
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]), startTime: rest[19] ?? '' };
  } catch {
    return null;
  }
}

function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

let nodeExe: string | undefined;
function isNode(pid: number): boolean {
  nodeExe ??= (() => {
    try {
      return realpathSync(process.execPath);
    } catch {
      return process.execPath;
    }
  })();
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    return exe === nodeExe || /^node(js)?(\d+)?$/.test(basename(exe));
  } catch {
    return false;
  }
}

function isLauncher(pid: number): boolean {
  if (isNode(pid)) return true;
  const args = argv(pid);
  return SHELLS.has(basename(args[0] ?? '').replace(/^-/, '')) && args.includes('-c');
}

/** This process's launchers, nearest first (see the top of this file). */
export function recordLaunchers(): Launcher[] {
  const chain: Launcher[] = [];
  let pid = process.ppid;
  while (pid > 1 && chain.length < 32) {
    const s = stat(pid);
    if (!s || !isLauncher(pid)) break;
    chain.push({ pid, startTime: s.startTime, command: argv(pid).join(' ').slice(0, 120) });
    pid = s.ppid;
  }
  return chain;
}

function alive(l: Launcher): boolean {
  const s = stat(l.pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X' && s.startTime === l.startTime;
}

/**
 * Calls onGone once, with the first launcher found gone, and stops watching; returns the function
 * that stops watching. The timer does not keep the process alive.
 */
export function watchLaunchers(
  onGone: (gone: Launcher) => void,
  intervalMs = 250,
): { launchers: Launcher[]; stop: () => void } {
  const linux = stat(process.pid) !== null;
  const startPpid = process.ppid;
  const launchers = linux ? recordLaunchers() : [{ pid: startPpid, startTime: '', command: 'parent' }];
  if (launchers.length === 0) return { launchers, stop: () => undefined };
  const timer = setInterval(() => {
    const gone = linux ? launchers.find((l) => !alive(l)) : process.ppid !== startPpid ? launchers[0] : undefined;
    if (gone) {
      clearInterval(timer);
      onGone(gone);
    }
  }, intervalMs);
  timer.unref();
  return { launchers, stop: () => clearInterval(timer) };
}
