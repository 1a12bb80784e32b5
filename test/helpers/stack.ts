/**
 * What integration tests use: a fresh database of their own (from the runner's template), the API
 * on a free port with one key per role, and a real worker + outbox relay on their own task queue.
 */
import type { AesGcmCodec } from '../../temporal/codec';
import { correlationClientInterceptor } from '../../temporal/correlation';
import type { WorkerMetrics } from '../../workers/metrics';
import { dataConverter } from '../../temporal/settings';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { Client, type Pool } from 'pg';
import pino, { type Logger } from 'pino';
import { buildApi, DEFAULT_BATCHER, type ApiOptions } from '../../api/server';
import { newSecret, putKey, ROLES, type Role } from '../../db/keys';
import { createPool } from '../../db/pool';
import { withDatabase } from '../../db/provision';
import { createLoyaltyWorker, type ServiceUrls } from '../../workers/worker';
import { WakeupRelay } from '../../workers/wakeup-relay';
import type { ReconciliationReport } from '../../domain/reconciliation';
import { reconciliationWorkflowId } from '../../domain/workflow-ids';
import { reconcileProgramDay } from '../../workflows/reconciliation';
import { verifyInvariants } from '../../db/verify';
import assert from 'node:assert/strict';
import { startSimulators, type RunningSimulators } from '../../simulators';

export const silentLog = pino({ level: process.env.LOYALTY_TEST_LOG ?? 'silent' });

function need(name: string): string {
  const v = process.env[name];
  if (!v)
    throw new Error(
      `${name} is not set: run the tests with npm test or npx vitest (test/global-setup.ts brings up the stack)`,
    );
  return v;
}

export const uniqueId = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** What freshDatabase gives a test file. */
export interface TestDatabase {
  /** connections as the app role (db/roles.ts): what the API, workers and commands run as */
  pool: Pool;
  url: string;
  /** connections as the server's superuser, for the tests that tamper with the database on purpose */
  adminPool: Pool;
  adminUrl: string;
  drop: () => Promise<void>;
}

/**
 * A database of this test's own, cloned from the migrated template and owned by the run's owner
 * role; `pool` and `url` connect as the run's app role, so every integration test runs with the
 * least privilege production has (docs/deploy.md, "Database roles and grants").
 */
export async function freshDatabase(): Promise<TestDatabase> {
  const server = need('LOYALTY_TEST_PG_SERVER_URL');
  const name = `loyalty_t_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: server });
  await admin.connect();
  await admin.query(
    `create database ${name} owner ${need('LOYALTY_TEST_OWNER_ROLE')} template ${need('LOYALTY_TEST_TEMPLATE_DB')}`,
  );
  await admin.end();
  const adminUrl = withDatabase(server, name);
  const url = withDatabase(server, name, {
    user: need('LOYALTY_TEST_APP_ROLE'),
    password: need('LOYALTY_TEST_APP_PASSWORD'),
  });
  const pool = createPool({ connectionString: url, maxConnections: 20, applicationName: 'test' });
  const adminPool = createPool({ connectionString: adminUrl, maxConnections: 4, applicationName: 'test-admin' });
  return {
    pool,
    url,
    adminPool,
    adminUrl,
    drop: async () => {
      await pool.end();
      await adminPool.end();
      const c = new Client({ connectionString: server });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/**
 * One statement as the superuser with the database's triggers off: what a database written by an
 * older release holds, made by hand (a rule version without a later field). Never the app's path.
 */
export async function rewriteAsLegacy(adminPool: Pool, sql: string, params: unknown[]): Promise<void> {
  const c = await adminPool.connect();
  try {
    await c.query('set session_replication_role = replica');
    await c.query(sql, params);
  } finally {
    await c.query('set session_replication_role = origin').catch(() => undefined);
    c.release();
  }
}

export type Keys = Record<Role, string>;

export async function roleKeys(pool: Pool): Promise<Keys> {
  const keys = {} as Keys;
  for (const role of ROLES) {
    const keyId = uniqueId(`test-${role}`);
    keys[role] = newSecret(keyId);
    await putKey(pool, { keyId, secret: keys[role], principal: `test-${role}`, roles: [role] });
  }
  return keys;
}

/**
 * A key of its own for one principal (made if missing) holding `roles`: e.g. one person with two
 * roles, to show that segregation of duties compares principals whatever the roles.
 */
export async function principalKey(
  pool: Pool,
  roles: Role[],
  o: { principal?: string; kind?: 'person' | 'service'; programs?: string[] } = {},
): Promise<{ principal: string; key: string }> {
  const principal = o.principal ?? uniqueId('person');
  const keyId = uniqueId('key');
  const key = newSecret(keyId);
  await putKey(pool, { keyId, secret: key, principal, roles, kind: o.kind, programs: o.programs ?? null });
  return { principal, key };
}

export interface TestApi {
  app: FastifyInstance;
  baseUrl: string;
  keys: Keys;
  close: () => Promise<void>;
}

export async function startApi(
  pool: Pool,
  temporalReachable: () => Promise<boolean> = async () => true,
  temporal?: {
    client: TemporalClient;
    taskQueue: string;
    closeApproval?: { escalateAfter: string; cancelAfter: string };
  },
  extra: Pick<ApiOptions, 'codec' | 'console'> = {},
): Promise<TestApi> {
  const app = await buildApi({
    pool,
    logger: silentLog,
    batcher: DEFAULT_BATCHER,
    bodyLimitBytes: 64 * 1024,
    temporalReachable,
    temporal,
    // every answer checked against the route's documented statuses and schemas (api/server.ts)
    checkResponses: true,
    ...extra,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  return { app, baseUrl: `http://127.0.0.1:${port}`, keys: await roleKeys(pool), close: () => app.close() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface HttpResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export function httpClient(api: TestApi) {
  return async function call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    o: {
      role?: Role;
      key?: string | null;
      idem?: string | null;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<HttpResult> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const key = o.key === undefined ? api.keys[o.role ?? 'admin'] : o.key;
    if (key) headers.authorization = `Bearer ${key}`;
    if (o.idem !== null && method === 'POST') headers['idempotency-key'] = o.idem ?? uniqueId('idem');
    let payload: string | undefined;
    if (o.rawBody !== undefined) payload = o.rawBody;
    else if (o.body !== undefined) payload = JSON.stringify(o.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(api.baseUrl + path, { method, headers, body: payload });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body, headers: res.headers };
  };
}

export interface TestWorker {
  worker: Worker;
  relay: WakeupRelay;
  client: TemporalClient;
  taskQueue: string;
  stop: () => Promise<void>;
}

/** A real worker and relay against the runner's Temporal dev server (or another address). */
export async function startWorker(
  pool: Pool,
  o: {
    address?: string;
    taskQueue?: string;
    searchAttributes?: boolean;
    services?: ServiceUrls;
    codec?: AesGcmCodec;
    log?: Logger;
    metrics?: WorkerMetrics;
  } = {},
): Promise<TestWorker> {
  const address = o.address ?? need('LOYALTY_TEST_TEMPORAL_ADDRESS');
  const taskQueue = o.taskQueue ?? uniqueId('tq');
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createLoyaltyWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    pool,
    workflowBundle: { code: readFileSync(need('LOYALTY_TEST_WORKFLOW_BUNDLE'), 'utf8') },
    maxConcurrentActivities: 20,
    maxCachedWorkflows: 500,
    services: o.services,
    dataConverter: dataConverter({ codec: o.codec }),
    log: o.log ?? silentLog,
    metrics: o.metrics,
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new TemporalClient({
    connection,
    namespace: 'default',
    dataConverter: dataConverter({ codec: o.codec }),
    interceptors: { workflow: [correlationClientInterceptor] },
  });
  const relay = new WakeupRelay({
    pool,
    client,
    taskQueue,
    log: silentLog,
    batchSize: 100,
    concurrency: 8,
    idleMs: 50,
    maxBackoffMs: 1000,
    searchAttributes: o.searchAttributes ?? true,
  });
  relay.start();
  return {
    worker,
    relay,
    client,
    taskQueue,
    stop: async () => {
      await relay.stop();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
    },
  };
}

/**
 * Runs the reconciliation workflow for every program with redemptions, for every day (UTC) they
 * were touched, and returns the reports that show a difference (tests expect none).
 */
export async function reconcileEverything(
  pool: Pool,
  w: { client: TemporalClient; taskQueue: string },
  exceptPrograms: string[] = [],
): Promise<ReconciliationReport[]> {
  const { rows } = await pool.query<{ program_id: string; day: string }>(
    `select distinct program_id, d::text as day from redemptions, lateral (values (created_at::date), (updated_at::date)) v(d)
      where not (program_id = any($1::text[])) order by 1, 2`,
    [exceptPrograms],
  );
  const bad: ReconciliationReport[] = [];
  for (const r of rows) {
    const report = await w.client.workflow.execute(reconcileProgramDay, {
      workflowId: `${reconciliationWorkflowId(r.program_id, r.day)}:${uniqueId('t')}`,
      taskQueue: w.taskQueue,
      args: [{ programId: r.program_id, date: r.day }],
    });
    if (report.differenceCount > 0 || report.inProgress.length > 0) bad.push(report);
  }
  return bad;
}

/**
 * How a saga test file ends: `loyalty verify`'s invariants and the reconciliation of every program
 * and day it touched (but `exceptPrograms`, broken on purpose), then its pieces stopped in the
 * order given; fails when the ledger, billing and the GL disagree.
 */
export async function checkAgreementThenStop(
  pool: Pool,
  w: { client: TemporalClient; taskQueue: string },
  stops: Array<() => Promise<unknown>>,
  exceptPrograms: string[] = [],
): Promise<void> {
  const differences = await reconcileEverything(pool, w, exceptPrograms);
  const result = await verifyInvariants(pool);
  for (const stop of stops) await stop();
  assert.deepEqual(result.violations, []);
  assert.deepEqual(differences, [], 'ledger, billing and GL agree');
}

/**
 * LOYALTY_RECORD_HISTORIES=1: keeps a workflow's history in test/histories/<name>.json, which
 * test/integration/replay.test.ts replays against every later version of the workflow code.
 */
export async function recordHistory(client: TemporalClient, workflowId: string, name: string): Promise<void> {
  // '1' records every history a test names; a comma-separated list only those (a new patch's, without
  // rewriting the histories of older code the replay test exists to keep)
  const wanted = process.env.LOYALTY_RECORD_HISTORIES;
  if (!wanted || (wanted !== '1' && !wanted.split(',').includes(name))) return;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  writeFileSync(join(__dirname, '..', 'histories', `${name}.json`), historyToJSON(history));
}

/** Polls until fn returns a truthy value; fails after timeoutMs with the last value seen. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T>,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export { programBody, ruleChangeRules } from './fixtures';

/** Every message down an error's cause chain (a workflow's failure wraps its activity's). */
export function causeMessages(e: unknown): string {
  const out: string[] = [];
  for (let c = e as { message?: string; cause?: unknown } | undefined; c; c = c.cause as typeof c)
    out.push(String(c.message));
  return out.join(' / ');
}

/**
 * `loyalty worker` as a child process (so a test can SIGKILL it) against the runner's Temporal
 * server and the given database; resolves once it prints READY.
 */
export function startWorkerProcess(o: {
  databaseUrl: string;
  taskQueue: string;
  env?: Record<string, string>;
}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: need('LOYALTY_TEST_TEMPORAL_ADDRESS'),
      DATABASE_URL: o.databaseUrl,
      LOYALTY_TASK_QUEUE: o.taskQueue,
      LOYALTY_WORKFLOW_BUNDLE: need('LOYALTY_TEST_WORKFLOW_BUNDLE'),
      LOG_LEVEL: 'warn',
      // several workers run at once across test files: no fixed metrics ports
      LOYALTY_WORKER_METRICS_PORT: 'off',
      LOYALTY_SDK_METRICS_PORT: 'off',
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)));
  });
}

/** What a redemption test file runs on: the saga's whole stack (startSagaStack). */
export interface SagaStack {
  db: Awaited<ReturnType<typeof freshDatabase>>;
  pool: Pool;
  sims: RunningSimulators;
  worker: TestWorker;
  api: TestApi;
  call: ReturnType<typeof httpClient>;
  /** the ledger, billing and the GL reconciled (but for `exceptPrograms`, tampered on purpose) and verified, then everything stopped */
  stop: (exceptPrograms?: string[]) => Promise<void>;
}

/**
 * Its own database, the simulators (no faults, the given seed), a real worker with the billing, GL
 * and tax services, and the API starting workflows on the worker's task queue.
 */
export async function startSagaStack(seed: number): Promise<SagaStack> {
  const db = await freshDatabase();
  const sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, seed);
  const worker = await startWorker(db.pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  const api = await startApi(db.pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  return {
    db,
    pool: db.pool,
    sims,
    worker,
    api,
    call: httpClient(api),
    stop: (exceptPrograms = []) =>
      checkAgreementThenStop(
        db.pool,
        worker,
        [() => api.close(), () => worker.stop(), () => sims.close(), () => db.drop()],
        exceptPrograms,
      ),
  };
}

export interface CloseStack {
  db: Awaited<ReturnType<typeof freshDatabase>>;
  pool: Pool;
  sims: RunningSimulators;
  worker: TestWorker;
  api: TestApi;
  call: ReturnType<typeof httpClient>;
  /** `loyalty verify`'s invariants, then everything stopped; fails on a violation */
  stop: () => Promise<void>;
}

/**
 * What a close test file runs on: its own database, the simulators (no faults, the given seed), a
 * real worker and the API with a close approval window no test waits out.
 */
export async function startCloseStack(seed: number, extra: Pick<ApiOptions, 'console'> = {}): Promise<CloseStack> {
  const db = await freshDatabase();
  const sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, seed);
  const worker = await startWorker(db.pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  const api = await startApi(
    db.pool,
    async () => true,
    {
      client: worker.client,
      taskQueue: worker.taskQueue,
      closeApproval: { escalateAfter: 'PT1H', cancelAfter: 'PT2H' },
    },
    extra,
  );
  return {
    db,
    pool: db.pool,
    sims,
    worker,
    api,
    call: httpClient(api),
    stop: async () => {
      const result = await verifyInvariants(db.pool);
      await api.close();
      await worker.stop();
      await sims.close();
      await db.drop();
      assert.deepEqual(result.violations, []);
    },
  };
}
