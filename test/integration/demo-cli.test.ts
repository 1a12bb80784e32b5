import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { freePort } from '../../cli/stack/process';
import { verifyInvariants } from '../../db/verify';
import { startSimulators, type RunningSimulators } from '../../simulators';
import { freshDatabase, startApi, startWorker, type TestApi, type TestWorker } from '../helpers/stack';

// `loyalty demo redemption` as a child process against a stack like npm start's: the API, a real
// worker on the dev server, the billing, GL and tax simulators; the keys from a dev-keys.json.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let dataDir: string;

beforeAll(async () => {
  db = await freshDatabase();
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 5);
  worker = await startWorker(db.pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  api = await startApi(db.pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  // what npm start leaves in .data: one key per role, so the demo must use the right one per call
  dataDir = mkdtempSync(join(tmpdir(), 'loyalty-demo-'));
  writeFileSync(
    join(dataDir, 'dev-keys.json'),
    JSON.stringify({ 'dev-admin': api.keys.admin, 'dev-billing': api.keys.billing }),
  );
});
afterAll(async () => {
  const result = await verifyInvariants(db.pool);
  await api.close();
  await worker.stop();
  await sims.close();
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
  assert.deepEqual(result.violations, []);
});

/** Asynchronous on purpose: the API the child calls runs in this process's event loop. */
function demo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), 'demo', 'redemption', ...args],
    {
      env: { ...process.env, LOYALTY_DATA_DIR: dataDir, TEMPORAL_NAMESPACE: 'default' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

test('loyalty demo redemption: applied, compensated, reversed by a lost chargeback; exit 0', async () => {
  const run = await demo([
    '--api-url',
    api.baseUrl,
    '--billing-url',
    sims.billingUrl,
    '--gl-url',
    sims.glUrl,
    '--ui-url',
    'http://localhost:8233',
  ]);
  const out = run.stdout;
  assert.equal(run.code, 0, out + run.stderr);
  assert.doesNotMatch(out, /FAIL/);
  const programId = /program (demo-\d+):/.exec(out)?.[1];
  assert.ok(programId, out);

  const [step1 = '', step2 = '', step3 = ''] = out.split(/^== Step \d: /m).slice(1);
  const link = (workflowId: string) =>
    `http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;

  assert.match(step1, /^a redemption applied ==/);
  assert.match(step1, /-> applied: pointsApplied 2500, creditMinor 2500 \(25\.00 USD\)/);
  assert.match(
    step1,
    new RegExp(`billing invoice ${programId}-inv-2: total 80\\.00 USD, credits 25\\.00 USD, amount due 55\\.00 USD`),
  );
  assert.ok(step1.includes(`workflow  redemption:${programId}:${programId}-inv-2`), step1);
  assert.ok(step1.includes(link(`redemption:${programId}:${programId}-inv-2`)), step1);
  assert.ok(step1.includes(`member    member:${programId}:m-1`), step1);
  assert.ok(step1.includes(link(`member:${programId}:m-1`)), step1);

  assert.match(step2, /^the GL refuses the journal entry, the saga compensates ==/);
  assert.match(step2, /-> declined: reason injected_failure/);
  assert.match(step2, new RegExp(`ledger on ${programId}-inv-3: redeem -1000, redeem_reversal \\+1000`));
  assert.match(step2, /ok {3}the credit applied in billing was reversed/);
  assert.match(step2, /ok {3}the member's balance and held points are unchanged/);
  assert.match(step2, /GL simulator: faults cleared/);
  assert.ok(step2.includes(link(`redemption:${programId}:${programId}-inv-3`)), step2);
  const faults = (await (await fetch(`${sims.glUrl}/admin/faults`)).json()) as { rules: object };
  assert.deepEqual(faults.rules, {}, 'the demo leaves no fault behind');

  assert.match(step3, /^a lost chargeback on the first redemption ==/);
  assert.match(
    step3,
    new RegExp(`GET redemptions/${programId}-inv-2 -> reversed \\(chargeback_lost:${programId}-cb-1\\)`),
  );
  assert.match(step3, /ledger: earn_reversal -550/);
  assert.match(step3, /member before: balance 3,050 pts, held 0 pts/);
  assert.match(step3, /member after \(2,500 pts back, 550 pts clawed back\): balance 5,000 pts, held 0 pts/);
  assert.match(step3, /billing invoice .*-inv-2: total 80\.00 USD, credits 0\.00 USD, amount due 80\.00 USD/);
  assert.ok(step3.includes(link(`redemption:${programId}:${programId}-inv-2`)), step3);
  assert.match(out, /demo redemption: all three steps behaved as expected/);
});

test('loyalty demo redemption: a key without the admin role fails step 1 with exit 1', async () => {
  const run = await demo([
    '--api-url',
    api.baseUrl,
    '--billing-url',
    sims.billingUrl,
    '--gl-url',
    sims.glUrl,
    '--key',
    api.keys.billing,
  ]);
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(
    run.stdout,
    /FAILED, 1 expectation\(s\) not met:\n {2}- step 1 \(applied\): POST \/v1\/programs: expected HTTP 201, got 403/,
  );
});

test('loyalty demo redemption: no stack, exit 2 with "run npm start first"', async () => {
  const run = await demo(['--api-url', `http://127.0.0.1:${await freePort()}`]);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(
    run.stderr,
    /the stack is not reachable \(GET http:\/\/127\.0\.0\.1:\d+\/readyz: ECONNREFUSED\): run npm start first/,
  );
});
