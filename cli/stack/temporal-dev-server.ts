import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../domain/workflow-ids';
import { temporalCliPath } from './binaries';
import { StackError } from './errors';
import { spawnLogged, stopChild, waitFor } from './process';

export interface DevServerOptions {
  /** SQLite file: the server's state survives restarts (null: in memory, gone when it stops) */
  dbFile: string | null;
  port: number;
  /** null: no web UI */
  uiPort: number | null;
  logFile: string;
  namespace: string;
  /** `--sqlite-pragma` values, e.g. `synchronous=NORMAL` (none: the dev server's defaults) */
  sqlitePragmas?: string[];
  /** the codec server the web UI calls to show decoded payloads */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Is a Temporal frontend answering at address? */
export async function temporalAnswers(address: string): Promise<boolean> {
  const conn = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    await conn.workflowService.getSystemInfo({});
    return true;
  } finally {
    await conn.close();
  }
}

/** The Temporal CLI dev server, with the project's search attributes registered. */
export async function startTemporalDevServer(o: DevServerOptions): Promise<DevServer> {
  if (o.dbFile) mkdirSync(dirname(o.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(o.port),
    '--namespace',
    o.namespace,
    '--log-level',
    'warn',
  ];
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  if (o.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort), '--ui-disable-news-fetch');
  for (const pragma of o.sqlitePragmas ?? []) args.push('--sqlite-pragma', pragma);
  if (o.uiCodecEndpoint && o.uiPort !== null) args.push('--ui-codec-endpoint', o.uiCodecEndpoint);
  for (const name of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);
  const logStart = sizeOf(o.logFile);
  const child = spawnLogged(temporalCliPath(), args, o.logFile);
  const address = `127.0.0.1:${o.port}`;
  const exited = new Promise<'exited'>((r) => child.once('exit', () => r('exited')));
  let gaveUp = false;
  const ready = waitFor(
    'Temporal dev server',
    () => (gaveUp ? Promise.resolve(true) : temporalAnswers(address)),
    60_000,
  ).then(() => 'ready' as const);
  try {
    if ((await Promise.race([ready, exited])) === 'exited') throw exitError(o, await logTail(o.logFile, logStart));
  } catch (e) {
    gaveUp = true;
    await stopChild(child, 2000);
    throw e;
  }
  return {
    address,
    uiUrl: o.uiPort === null ? null : `http://localhost:${o.uiPort}`,
    child,
    // SIGTERM: it stops in about a second; SIGKILL after 5 s, inside the stack's 10 s to stop
    stop: () => stopChild(child, 5000),
  };
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The last lines this run of the server wrote to its log (appended to across runs), once flushed. */
async function logTail(file: string, from: number): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 100));
  try {
    return readFileSync(file).subarray(from).toString('utf8').split('\n').filter(Boolean).slice(-20);
  } catch {
    return [];
  }
}

/** Why the dev server exited before it answered, in one line with what to do. */
function exitError(o: DevServerOptions, lines: string[]): StackError {
  const text = lines.join('\n');
  const inUse = /(\d+\.\d+\.\d+\.\d+|\[[^\]]*\]|localhost):(\d+): bind: address already in use/.exec(text);
  if (inUse) {
    const port = Number(inUse[2]);
    const which = port === o.uiPort ? 'LOYALTY_TEMPORAL_UI_PORT' : 'LOYALTY_TEMPORAL_PORT';
    return new StackError(
      `port ${port} is taken, so the Temporal dev server cannot listen on it: stop what uses it (ss -ltnp | grep :${port}) or choose another port (${which} for npm start)`,
    );
  }
  const last = [...lines].reverse().find((l) => /error|fatal|unable|failed/i.test(l)) ?? lines.at(-1) ?? 'no output';
  return new StackError(
    `the Temporal dev server exited before it answered: ${last.trim().slice(0, 300)} (its log: ${o.logFile})`,
  );
}
