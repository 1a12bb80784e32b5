import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../domain/workflow-ids';
import { temporalCliPath } from './binaries';
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
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port), '--namespace', o.namespace, '--log-level', 'warn'];
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  if (o.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort), '--ui-disable-news-fetch');
  for (const pragma of o.sqlitePragmas ?? []) args.push('--sqlite-pragma', pragma);
  if (o.uiCodecEndpoint && o.uiPort !== null) args.push('--ui-codec-endpoint', o.uiCodecEndpoint);
  for (const name of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);
  const child = spawnLogged(temporalCliPath(), args, o.logFile);
  const address = `127.0.0.1:${o.port}`;
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitFor('Temporal dev server', async () => {
    if (exited) throw new Error(`Temporal dev server exited; see ${o.logFile}`);
    return temporalAnswers(address);
  }, 60_000);
  return {
    address,
    uiUrl: o.uiPort === null ? null : `http://localhost:${o.uiPort}`,
    child,
    stop: () => stopChild(child, 10_000),
  };
}
