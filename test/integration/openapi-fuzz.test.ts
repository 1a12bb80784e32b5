import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { AesGcmCodec, newKeyFile } from '../../temporal/codec';
import { programBody, startApi, startSagaStack, type SagaStack, type TestApi } from '../helpers/stack';

// Schemathesis (issue 15, item 2), an independent OpenAPI fuzzer from PyPI, against the live API
// (real database, Temporal, worker and simulators) with every one of its checks: a request valid by
// /openapi.json refused, an answer the spec does not document (status, body, content type, headers),
// a wrong method not answered 405 with `Allow`, a request without its key let through, a 5xx. What
// it finds is fixed in the server or made true in the spec, never by turning a check off.
// scripts/install-tools.js installs it (`npm install`); without it the test is skipped, but in CI.
const TOOLS = join(__dirname, '..', '..', '.tools', 'schemathesis');
const ST = join(TOOLS, 'bin', 'st');
const SEED = Number(process.env.LOYALTY_SCHEMATHESIS_SEED ?? 20261202);
const MAX_EXAMPLES = Number(process.env.LOYALTY_SCHEMATHESIS_EXAMPLES ?? 20);
const RUN_LIMIT_MS = 8 * 60_000;
const installed = existsSync(ST);
if (!installed && process.env.CI === 'true') throw new Error(`schemathesis is not installed at ${ST}: run npm install`);

let stack: SagaStack;
/** the stack's API with a payload codec, as `npm start` serves it (the codec routes answer) */
let api: TestApi;
const PROGRAM = 'fuzzed';

beforeAll(async () => {
  if (!installed) return;
  stack = await startSagaStack(41);
  // one program and member, so that what the fuzzer sends with their ids reaches the ledger's rules
  const created = await stack.call('POST', '/v1/programs', { body: programBody(PROGRAM) });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const accrued = await stack.call('POST', `/v1/programs/${PROGRAM}/accruals`, {
    role: 'billing',
    body: { invoiceId: 'inv-1', memberId: 'm-1', amountMinor: 10_000, occurredAt: new Date().toISOString() },
  });
  assert.equal(accrued.status, 201, JSON.stringify(accrued.body));
  const keys = newKeyFile('k-fuzz');
  const codec = new AesGcmCodec(keys.active, { [keys.active]: Buffer.from(keys.keys[keys.active]!, 'base64') });
  api = await startApi(
    stack.pool,
    async () => true,
    { client: stack.worker.client, taskQueue: stack.worker.taskQueue },
    { codec: { codec, corsOrigins: [] } },
  );
}, 120_000);
afterAll(async () => {
  if (api) await api.close();
  if (stack) await stack.stop();
});

/** Runs `st run` and resolves with its exit code and output. */
function schemathesis(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(ST, args, {
      env: {
        ...process.env,
        // test/schemathesis_hooks.py: a key of its own for each stateful request (why: that file)
        PYTHONPATH: [TOOLS, join(__dirname, '..')].join(':'),
        SCHEMATHESIS_HOOKS: 'schemathesis_hooks',
        NO_COLOR: '1',
        SCHEMATHESIS_TELEMETRY: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // its cache (.schemathesis/) goes to the run's own folder, not the checkout
      cwd,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test.skipIf(!installed)(
  'schemathesis, every check, finds nothing against the live API',
  async () => {
    const reports = mkdtempSync(join(tmpdir(), 'loyalty-schemathesis-'));
    try {
      const { code, output } = await schemathesis(
        [
          '--config-file',
          join(__dirname, '..', 'schemathesis.toml'),
          'run',
          `${api.baseUrl}/openapi.json`,
          '--checks',
          'all',
          '--max-examples',
          String(MAX_EXAMPLES),
          '--seed',
          String(SEED),
          // one worker: the stateful phase's sequences then run in one order, the same every run
          '--workers',
          '1',
          // hypothesis's own checks of its generation, not of the API: the codec's bodies are large by
          // design (a page of history, 4 MiB), and drawing them trips hypothesis's data-size check
          '--suppress-health-check',
          'data_too_large,too_slow',
          '--request-timeout',
          '30',
          '--header',
          `Authorization: Bearer ${api.keys.admin}`,
          '--report',
          'junit',
          '--report-junit-path',
          join(reports, 'junit.xml'),
        ],
        reports,
      );
      // the whole output, kept for reading (a traceback of the tool's own can be long)
      const logFile = join(tmpdir(), 'loyalty-schemathesis-last.log');
      writeFileSync(logFile, output);
      const summary = output.split('\n').slice(-40).join('\n');
      const first = [output.indexOf('ERRORS'), output.indexOf('FAILURES')].filter((i) => i >= 0);
      const failures = output.slice(first.length ? Math.min(...first) : 0, output.indexOf('SUMMARY'));
      assert.equal(
        code,
        0,
        `schemathesis found failures (seed ${SEED}; reproduce: LOYALTY_SCHEMATHESIS_SEED=${SEED} npx vitest run test/integration/openapi-fuzz.test.ts; all of it in ${logFile}):\n${failures.slice(0, 30_000)}\n...\n${summary}`,
      );
      // it ran the operations (an empty run exits 0 too)
      const junit = readFileSync(join(reports, 'junit.xml'), 'utf8');
      const cases = (junit.match(/<testcase /g) ?? []).length;
      assert.ok(cases >= 40, `schemathesis tested only ${cases} operations:\n${summary}`);
    } finally {
      rmSync(reports, { recursive: true, force: true });
    }
  },
  RUN_LIMIT_MS + 30_000,
);
