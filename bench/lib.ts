/**
 * Shared pieces of the benchmark scripts: bringing PostgreSQL up in a temp dir (or using
 * DATABASE_URL), child processes that print READY, /proc readings (RSS, CPU), a seeded PRNG,
 * percentiles and the Markdown/JSON output.
 */
import type http from 'node:http';
import { request as httpRequest } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startPostgres } from '../cli/stack/postgres';
import { ensureDatabase } from '../db/databases';
import { freePort, stopChild } from '../cli/stack/process';

export const ROOT = join(__dirname, '..');

// ---------------------------------------------------------------------------------------------
// clean-up: run on normal exit, on error and on Ctrl-C / SIGTERM

const cleanups: Array<[string, () => Promise<unknown>]> = [];
let cleaning: Promise<void> | null = null;

/** Registers a clean-up step; steps run in reverse order of registration. */
export function onCleanup(name: string, fn: () => Promise<unknown>): void {
  cleanups.push([name, fn]);
}

export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const [name, fn] = cleanups.pop()!;
      await fn().catch((e) => log(`clean-up ${name} failed: ${(e as Error).message}`));
    }
  })();
  return cleaning;
}

/** Runs main, cleans up whatever it registered (also on Ctrl-C / SIGTERM), exits with its code. */
export function runMain(main: () => Promise<number>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  main()
    .catch((e) => {
      console.error(e);
      return 1;
    })
    .then(async (code) => {
      await cleanupAll();
      process.exit(code);
    });
}

/** Progress and diagnostics go to stderr; stdout carries only the results. */
export function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// stack

/** A temp dir of this run, removed at the end. parent: where to make it (default the OS temp dir). */
export function workDir(prefix: string, parent?: string): string {
  const dir = mkdtempSync(join(parent ?? tmpdir(), prefix));
  onCleanup('work dir', async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface BenchDatabase {
  /** URL of the benchmark's database */
  url: string;
  embedded: boolean;
  /** data dir of the embedded server (null with DATABASE_URL) */
  dataDir: string | null;
}

/**
 * A fresh database: on an embedded PostgreSQL in work/pg, or, when DATABASE_URL is set, a new
 * database beside it on that server (dropped at the end).
 */
export async function benchDatabase(work: string, name: string): Promise<BenchDatabase> {
  const databaseUrl = process.env.DATABASE_URL;
  const dataDir = join(work, 'pg');
  const pg = await startPostgres({ dataDir, port: await freePort(), databaseUrl });
  onCleanup('postgres', pg.stop);
  if (pg.embedded) return { url: await ensureDatabase(pg.serverUrl, name), embedded: true, dataDir };
  const server = new URL(pg.serverUrl);
  server.pathname = '/postgres';
  const db = `${name}_${process.pid}`;
  await adminQuery(server.toString(), `drop database if exists ${db} with (force)`);
  const url = await ensureDatabase(server.toString(), db);
  onCleanup('bench database', () => adminQuery(server.toString(), `drop database if exists ${db} with (force)`));
  return { url, embedded: false, dataDir: null };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The postmaster's pid (from postmaster.pid in its data dir). */
export function postmasterPid(dataDir: string | null): number | null {
  if (!dataDir || !existsSync(join(dataDir, 'postmaster.pid'))) return null;
  const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Spawns `node --import tsx <script> ...args` from the project root and waits for the line
 * `READY ...` on its stdout. The child's stdin is a pipe it watches: it exits when we do.
 */
export async function spawnTsChild(
  script: string,
  args: string[],
  what: string,
  timeoutMs = 120_000,
): Promise<{ child: ChildProcess; ready: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  onCleanup(what, () => stopChild(child, 15_000));
  const ready = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready after ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const line = buf.split('\n').find((l) => l.startsWith('READY'));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before it was ready`));
    });
  });
  child.stdout!.resume();
  return { child, ready };
}

/** For the children: exit cleanly on SIGTERM/SIGINT or when the parent's stdin pipe closes. */
export function stopOnParentExit(stop: () => Promise<void>): void {
  let stopping = false;
  const go = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', go);
  process.once('SIGINT', go);
  process.stdin.on('end', go);
  process.stdin.on('error', go);
  process.stdin.resume();
}

// ---------------------------------------------------------------------------------------------
// /proc readings (Linux)

const CLK_TCK = 100;

function statusField(pid: number, field: string): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resident memory now, bytes (null: process gone). */
export const rssBytes = (pid: number) => statusField(pid, 'VmRSS');
/** Peak resident memory over the process's life, bytes (the kernel's high-water mark). */
export const peakRssBytes = (pid: number) => statusField(pid, 'VmHWM');

function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command, which is in parentheses and may contain spaces
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** pid and all its descendants (alive now). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (!f) continue;
    const ppid = Number(f[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(Number(d));
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * CPU seconds (user + system) used so far by the process tree of pid: each live process's own
 * time plus the time of the children it has reaped (so exited PostgreSQL backends still count).
 */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const f = statFields(p);
    // after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / CLK_TCK;
}

/** Resident memory of a process tree now, bytes (summed; shared pages count once per process). */
export function treeRssBytes(pid: number): number {
  return processTree(pid).reduce((s, p) => s + (rssBytes(p) ?? 0), 0);
}

export function machineNote(dir: string): { loadavg1m: number; cpus: number; fsType: string } {
  let fsType = 'unknown';
  try {
    const t = statfsSync(dir).type;
    fsType =
      (
        {
          0xef53: 'ext4',
          0x01021994: 'tmpfs',
          0x58465342: 'xfs',
          0x9123683e: 'btrfs',
          0x794c7630: 'overlayfs',
        } as Record<number, string>
      )[t] ?? `0x${t.toString(16)}`;
  } catch {
    /* not Linux */
  }
  return {
    loadavg1m: Number(loadavg()[0]!.toFixed(2)),
    cpus: readdirSync('/sys/devices/system/cpu').filter((d) => /^cpu\d+$/.test(d)).length,
    fsType,
  };
}

// ---------------------------------------------------------------------------------------------
// numbers

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The q-quantile (0..1) of values, nearest-rank. */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** The median (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const round = (x: number, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
export const mib = (bytes: number | null) => (bytes === null ? NaN : round(bytes / 1024 / 1024, 1));

/** A Markdown table. */
export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: Array<string | number>) => `| ${r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cells[0]!), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.slice(1).map(line)].join(
    '\n',
  );
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return Number.isInteger(x) ? x.toLocaleString('en-US') : x.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Parses a positive integer flag. */
export function intFlag(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got ${v})`);
  return n;
}

/** A JSON POST over `agent` (keep-alive), its status and body; 60 s at most. */
export function postJson(
  agent: http.Agent,
  port: number,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}
