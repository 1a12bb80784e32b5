/**
 * The real stack of the fault suite, each piece startable, stoppable and killable on its own:
 * PostgreSQL (embedded, crashed with SIGQUIT; or DATABASE_URL's server, which it cannot restart),
 * the Temporal dev server on a SQLite file and a fixed port, billing and the GL in this process
 * behind restartable proxies, tax as a child process, the API in this process, and `loyalty worker`
 * as a child process under a small supervisor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { Client, type Pool } from 'pg';
import pino from 'pino';
import { buildApi, DEFAULT_BATCHER } from '../../api/server';
import { startPostgres, type PostgresHandle } from '../../cli/stack/postgres';
import { dropDatabase } from '../../db/databases';
import { freePort, stopChild } from '../../cli/stack/process';
import { startTemporalDevServer, temporalAnswers, type DevServer } from '../../cli/stack/temporal-dev-server';
import { newSecret, putKey, type Role } from '../../db/keys';
import { createPool } from '../../db/pool';
import { provisionDatabase } from '../../db/provision';
import { billingSimulator } from '../../simulators/billing';
import { glSimulator } from '../../simulators/gl';
import { WORKFLOWS_PATH } from '../../workers/worker';
import { RestartableProxy } from './proxy';
import { sleep } from './rng';

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'cli', 'index.ts');
export const TASK_QUEUE = 'loyalty-faults';
export type SimName = 'billing' | 'gl' | 'tax';

/** A child started with `node --import tsx`, its output appended to a log; resolves on READY. */
function spawnReady(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  timeoutMs: number,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let ready = false;
  const log = (d: Buffer) => appendFileSync(logFile, d);
  child.stderr!.on('data', log);
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} not ready within ${timeoutMs} ms (log: ${logFile})`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      log(d);
      if (!ready && d.toString().includes('READY')) {
        ready = true;
        clearTimeout(timer);
        resolveReady(child);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${script} exited before it was ready (${code ?? signal}; log: ${logFile})`));
    });
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await exited;
}

/**
 * `loyalty worker` under a supervisor, as a deployment would run it: killed by a fault it stays
 * down for the fault's time; exiting by itself (e.g. Temporal gone too long) it is started again.
 */
class WorkerSupervisor {
  private child: ChildProcess | null = null;
  private heldDown = false;
  private closing = false;
  private chain: Promise<unknown> = Promise.resolve();
  starts = 0;
  exitsOnItsOwn = 0;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logFile: string,
    private readonly note: (s: string) => void,
  ) {}

  get running(): boolean {
    return this.child !== null;
  }

  /** One start or kill at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  start(): Promise<void> {
    return this.serial(() => this.startNow());
  }

  private async startNow(): Promise<void> {
    if (this.child || this.closing) return;
    // bounded: 40 tries a second or more apart (Temporal may be restarting meanwhile)
    for (let attempt = 1; ; attempt++) {
      try {
        const child = await spawnReady(CLI, ['worker'], this.env, this.logFile, 90_000);
        this.child = child;
        this.starts++;
        child.once('exit', (code, signal) => {
          if (this.child !== child) return;
          this.child = null;
          if (this.heldDown || this.closing) return;
          this.exitsOnItsOwn++;
          this.note(`worker exited on its own (${code ?? signal}); restarting it`);
          void sleep(1000)
            .then(() => this.start())
            .catch((e: Error) => this.note(`worker restart failed: ${e.message}`));
        });
        return;
      } catch (e) {
        if (attempt >= 40 || this.closing) throw e;
        await sleep(1000);
      }
    }
  }

  /** SIGKILL, and no restart until resume(). */
  kill(): Promise<void> {
    return this.serial(async () => {
      this.heldDown = true;
      const c = this.child;
      this.child = null;
      if (c) await killHard(c);
    });
  }

  resume(): Promise<void> {
    this.heldDown = false;
    return this.start();
  }

  async stop(): Promise<void> {
    this.closing = true;
    await this.chain.catch(() => undefined);
    const c = this.child;
    this.child = null;
    if (c) await stopChild(c, 10_000);
  }
}

export interface FaultStackOptions {
  work: string;
  seed: number;
  databaseUrl?: string;
  note: (line: string) => void;
}

export class FaultStack {
  pg!: PostgresHandle;
  pgPort = 0;
  pgDataDir: string;
  /** false with DATABASE_URL: the suite cannot restart someone else's server */
  pgRestartable = false;
  private dropDatabase: (() => Promise<void>) | null = null;
  dbUrl = '';
  /** the suite's own connections, for set-up and the checks */
  pool!: Pool;
  private apiPool!: Pool;

  temporal!: DevServer;
  temporalPort = 0;
  temporalAddress = '';
  private temporalDbFile: string;
  private connection!: Connection;
  client!: TemporalClient;

  private billing: ReturnType<typeof billingSimulator>;
  private gl: ReturnType<typeof glSimulator>;
  simDirect: Record<SimName, string> = { billing: '', gl: '', tax: '' };
  /** what the worker talks to */
  simForWorker: Record<SimName, string> = { billing: '', gl: '', tax: '' };
  proxies!: { billing: RestartableProxy; gl: RestartableProxy };
  private tax: ChildProcess | null = null;
  private taxPort = 0;

  api!: FastifyInstance;
  apiUrl = '';
  keys = {} as Record<'billing' | 'support' | 'admin', string>;

  worker!: WorkerSupervisor;
  bundlePath: string;

  constructor(private readonly o: FaultStackOptions) {
    this.pgDataDir = join(o.work, 'pg');
    this.temporalDbFile = join(o.work, 'temporal.sqlite');
    this.bundlePath = join(o.work, 'workflow-bundle.js');
    this.billing = billingSimulator(o.seed);
    this.gl = glSimulator(o.seed + 1);
  }

  log(name: string): string {
    return join(this.o.work, `${name}.log`);
  }

  async start(): Promise<void> {
    const { work, note } = this.o;
    // PostgreSQL and the ledger database
    this.pgPort = await freePort();
    this.pg = await startPostgres({ dataDir: this.pgDataDir, port: this.pgPort, databaseUrl: this.o.databaseUrl });
    this.pgRestartable = this.pg.embedded;
    // the API and the worker connect as the app role, as in production (db/roles.ts); the suite's
    // own checks as the server's superuser
    const roles = { owner: `loyalty_owner_f${process.pid}`, app: `loyalty_app_f${process.pid}` };
    const server = new URL(this.pg.serverUrl);
    server.pathname = '/postgres';
    const name = this.pg.embedded ? 'loyalty' : `loyalty_faults_${process.pid}`;
    if (!this.pg.embedded) {
      await dropDatabase(server.toString(), name);
      // on DATABASE_URL's server the run's roles go with its database (roles are the server's)
      this.dropDatabase = async () => {
        await dropDatabase(server.toString(), name);
        const c = new Client({ connectionString: server.toString() });
        await c.connect();
        try {
          for (const r of [roles.app, roles.owner]) await c.query(`drop role if exists ${r}`);
        } finally {
          await c.end();
        }
      };
    }
    const made = await provisionDatabase({
      serverUrl: server.toString(),
      name,
      roles,
      appPassword: randomBytes(18).toString('hex'),
    });
    this.dbUrl = made.appUrl;
    this.pool = createPool({ connectionString: made.adminUrl, maxConnections: 5, applicationName: 'faults-suite' });
    for (const role of ['billing', 'support', 'admin'] as const) {
      const keyId = `faults-${role}`;
      this.keys[role] = newSecret(keyId);
      await putKey(this.pool, { keyId, secret: this.keys[role], principal: `faults-${role}`, roles: [role as Role] });
    }

    // Temporal on a file and a fixed port, so that a restart finds its workflows where they were
    this.temporalPort = await freePort();
    await this.startTemporal();
    this.temporalAddress = this.temporal.address;
    this.connection = await Connection.connect({ address: this.temporalAddress });
    this.client = new TemporalClient({ connection: this.connection, namespace: 'default' });

    // simulators
    this.simDirect.billing = await this.billing.app.listen({ port: 0, host: '127.0.0.1' });
    this.simDirect.gl = await this.gl.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (url: string) => Number(new URL(url).port);
    this.proxies = {
      billing: new RestartableProxy(port(this.simDirect.billing)),
      gl: new RestartableProxy(port(this.simDirect.gl)),
    };
    this.simForWorker.billing = `http://127.0.0.1:${await this.proxies.billing.listen(0)}`;
    this.simForWorker.gl = `http://127.0.0.1:${await this.proxies.gl.listen(0)}`;
    this.taxPort = await freePort();
    await this.startTax();
    this.simDirect.tax = this.simForWorker.tax = `http://127.0.0.1:${this.taxPort}`;

    // the workflow bundle once, so that every worker restart is quick
    const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
    writeFileSync(this.bundlePath, bundle.code);

    this.worker = new WorkerSupervisor(
      {
        ...process.env,
        TEMPORAL_ADDRESS: this.temporalAddress,
        DATABASE_URL: this.dbUrl,
        LOYALTY_TASK_QUEUE: TASK_QUEUE,
        LOYALTY_WORKFLOW_BUNDLE: this.bundlePath,
        LOYALTY_BILLING_URL: this.simForWorker.billing,
        LOYALTY_GL_URL: this.simForWorker.gl,
        LOYALTY_TAX_URL: this.simForWorker.tax,
        LOYALTY_SERVICE_TIMEOUT_MS: '2000',
        LOG_LEVEL: 'warn',
      },
      this.log('worker'),
      note,
    );
    await this.worker.start();

    this.apiPool = createPool({ connectionString: this.dbUrl, maxConnections: 20, applicationName: 'faults-api' });
    const logger = pino({ level: 'warn' }, pino.destination({ dest: this.log('api'), sync: false }));
    this.api = await buildApi({
      pool: this.apiPool,
      logger,
      batcher: DEFAULT_BATCHER,
      bodyLimitBytes: 64 * 1024,
      temporalReachable: () => temporalAnswers(this.temporalAddress),
      temporal: { client: this.client, taskQueue: TASK_QUEUE },
    });
    await this.api.listen({ port: 0, host: '127.0.0.1' });
    this.apiUrl = `http://127.0.0.1:${(this.api.server.address() as { port: number }).port}`;
    note(
      `stack up in ${work}: PostgreSQL ${this.pg.embedded ? `embedded :${this.pgPort}` : '(DATABASE_URL)'}, Temporal ${this.temporalAddress} (${this.temporalDbFile}), API ${this.apiUrl}`,
    );
  }

  private async startTemporal(): Promise<void> {
    this.temporal = await startTemporalDevServer({
      dbFile: this.temporalDbFile,
      port: this.temporalPort,
      uiPort: null,
      logFile: this.log('temporal'),
      namespace: 'default',
    });
  }

  private async startTax(): Promise<void> {
    this.tax = await spawnReady(
      join(__dirname, 'tax-process.ts'),
      [],
      {
        ...process.env,
        LOYALTY_FAULTS_TAX_PORT: String(this.taxPort),
        LOYALTY_FAULTS_TAX_SEED: String(this.o.seed + 2),
      },
      this.log('tax'),
      30_000,
    );
  }

  // ---- faults ----

  /** Immediate shutdown (SIGQUIT: no checkpoint, crash recovery at the next start), down, started again. */
  async crashPostgres(downMs: number): Promise<void> {
    if (!this.pgRestartable) throw new Error('PostgreSQL of DATABASE_URL cannot be restarted by the suite');
    const pid = Number(readFileSync(join(this.pgDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGQUIT');
    const deadline = Date.now() + 30_000;
    while (alive(pid)) {
      if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
      await sleep(50);
    }
    await sleep(downMs);
    // the crashed handle is dropped: its stop() would wait for an exit that has happened
    for (let attempt = 1; ; attempt++) {
      try {
        this.pg = await startPostgres({ dataDir: this.pgDataDir, port: this.pgPort });
        return;
      } catch (e) {
        if (attempt >= 20) throw e;
        await sleep(500);
      }
    }
  }

  async restartTemporal(downMs: number): Promise<void> {
    await this.temporal.stop();
    await sleep(downMs);
    await this.startTemporal();
  }

  async killWorker(downMs: number): Promise<void> {
    await this.worker.kill();
    await sleep(downMs);
    await this.worker.resume();
  }

  /** The tax simulator's process SIGKILLed and started again on its port. */
  async restartTax(downMs: number): Promise<void> {
    if (this.tax) await killHard(this.tax);
    this.tax = null;
    await sleep(downMs);
    await this.startTax();
  }

  async outage(sim: 'billing' | 'gl', downMs: number): Promise<void> {
    await this.proxies[sim].outage(downMs);
  }

  /** POST /admin/faults on a simulator (directly, not through its proxy). */
  async setSimFault(sim: SimName, rule: Record<string, unknown>): Promise<void> {
    await adminCall(`${this.simDirect[sim]}/admin/faults`, 'POST', rule);
  }

  async simFaultsInjected(sim: SimName): Promise<number> {
    const r = (await adminCall(`${this.simDirect[sim]}/admin/faults`, 'GET')) as { injected: number };
    return r.injected;
  }

  async clearSimFaults(): Promise<void> {
    for (const sim of ['billing', 'gl', 'tax'] as const)
      await adminCall(`${this.simDirect[sim]}/admin/faults`, 'DELETE');
  }

  /** After the faults: every piece up again (a fault still being undone has been awaited by the caller). */
  async ensureAllUp(): Promise<void> {
    if (!this.worker.running) await this.worker.resume();
    if (!this.tax) await this.startTax();
  }

  async stop(): Promise<void> {
    const quiet = async (fn: () => Promise<unknown>) => fn().catch(() => undefined);
    await quiet(() => this.worker.stop());
    await quiet(() => this.api.close());
    await quiet(() => this.apiPool.end());
    await quiet(() => this.connection.close());
    await quiet(async () => this.tax && stopChild(this.tax, 5000));
    await quiet(() => this.proxies.billing.close());
    await quiet(() => this.proxies.gl.close());
    await quiet(() => this.billing.app.close());
    await quiet(() => this.gl.app.close());
    await quiet(() => this.temporal.stop());
    await quiet(() => this.pool.end());
    await quiet(async () => this.dropDatabase?.());
    await quiet(() => this.pg.stop());
  }

  /** Is the database there (for the wait after the faults)? */
  async databaseAnswers(): Promise<boolean> {
    return this.pool.query('select 1').then(
      () => true,
      () => false,
    );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function adminCall(url: string, method: 'GET' | 'POST' | 'DELETE', body?: unknown): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(5000),
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
      return await res.json();
    } catch (e) {
      // the tax process may be restarting
      if (attempt >= 20) throw e;
      await sleep(500);
    }
  }
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };
