import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApi, DEFAULT_BATCHER } from '../../api/server';
import { apiServerEnv } from '../../cli/api-server';
import { createPool } from '../../db/pool';
import { ApiError } from '../../domain/errors';

// What the API must not give away (issue 14, item 10): /metrics (each program's outstanding points
// and face value) to whoever reaches the port, internal messages in 5xx bodies, secrets in its logs.
// A real API on a pool whose database is not there (a closed port): nothing is started, and every
// query fails the way an unreachable PostgreSQL does.
const INTERNAL = 'connect ECONNREFUSED 10.9.8.7:5432 as user loyalty password hunter2';
const SECRET = 'kk-super-secret-api-key-0123456789';
const lines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    lines.push(String(chunk));
    done();
  },
});

async function api(metricsToken?: string): Promise<FastifyInstance> {
  const pool = createPool({
    connectionString: 'postgres://u:p@127.0.0.1:1/none',
    maxConnections: 2,
    applicationName: 't',
  });
  const app = await buildApi({
    pool,
    logger: pino({ level: 'info' }, sink),
    batcher: DEFAULT_BATCHER,
    bodyLimitBytes: 64 * 1024,
    temporalReachable: async () => false,
    metricsToken,
  });
  // routes that fail the ways a handler can; they exercise the API's own error handler and logger
  app.get('/test/api-error-5xx', async () => {
    throw new ApiError(503, 'loyalty_unavailable', 'the reconciliation did not finish', {
      cause: INTERNAL,
      retryAfterMs: 100,
    });
  });
  app.get('/test/bug', async () => {
    throw new Error(INTERNAL);
  });
  app.get('/test/log-headers', async (req) => {
    req.log.warn({ headers: req.headers, secret: SECRET, password: 'hunter2' }, 'a handler logging what it got');
    return {};
  });
  app.addHook('onClose', () => pool.end());
  await app.ready();
  return app;
}

describe('/metrics', () => {
  let open: FastifyInstance;
  let guarded: FastifyInstance;
  const token = 'metrics-token-0123456789abcdef';
  beforeAll(async () => {
    open = await api();
    guarded = await api(token);
  });
  afterAll(async () => {
    await open.close();
    await guarded.close();
  });

  test('without a metrics token: loopback peers only', async () => {
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const r = await open.inject({ method: 'GET', url: '/metrics', remoteAddress });
      assert.equal(r.statusCode, 200, remoteAddress);
      assert.match(r.body, /loyalty_api_request_seconds/);
    }
    for (const remoteAddress of ['10.0.0.5', '172.18.0.1', '::ffff:10.0.0.5', '2001:db8::1']) {
      const r = await open.inject({ method: 'GET', url: '/metrics', remoteAddress });
      assert.equal(r.statusCode, 401, remoteAddress);
      assert.doesNotMatch(r.body, /loyalty_/);
    }
  });

  test('with a token: the token, from anywhere (loopback too: a proxy on the host would be loopback)', async () => {
    for (const remoteAddress of ['127.0.0.1', '10.0.0.5']) {
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${token}x`, token]) {
        const r = await guarded.inject({
          method: 'GET',
          url: '/metrics',
          remoteAddress,
          headers: authorization ? { authorization } : {},
        });
        assert.equal(r.statusCode, 401, `${remoteAddress} ${authorization}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer realm="metrics"');
        assert.doesNotMatch(r.body, /loyalty_/);
      }
      const ok = await guarded.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /loyalty_api_request_seconds/);
    }
  });
});

describe('5xx bodies and logs', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await api();
  });
  afterAll(async () => {
    await app.close();
  });

  test('a database that does not answer is 503 with no driver message, host or port in the body', async () => {
    const r = await app.inject({
      method: 'GET',
      url: '/v1/programs/acme',
      headers: { authorization: `Bearer ${SECRET}` },
    });
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().error.code, 'loyalty_unavailable');
    assert.deepEqual(r.json().error.details, {});
    assert.doesNotMatch(r.body, /ECONNREFUSED|127\.0\.0\.1|:1\b|connect/);
  });

  test("a 5xx ApiError keeps its code and message but no text details; a bug's message stays in the log", async () => {
    const e = await app.inject({ method: 'GET', url: '/test/api-error-5xx' });
    assert.equal(e.statusCode, 503);
    assert.deepEqual(e.json().error, {
      code: 'loyalty_unavailable',
      message: 'the reconciliation did not finish',
      details: { retryAfterMs: 100 },
    });
    const bug = await app.inject({ method: 'GET', url: '/test/bug' });
    assert.equal(bug.statusCode, 500);
    assert.doesNotMatch(bug.body, /ECONNREFUSED|hunter2|10\.9\.8\.7/);
    assert.ok(
      lines.some((l) => l.includes('10.9.8.7')),
      'the whole error is logged, for the operator',
    );
  });

  test('logs redact API keys, cookies and fields named for a secret', async () => {
    lines.length = 0;
    const r = await app.inject({
      method: 'GET',
      url: '/test/log-headers',
      headers: { authorization: `Bearer ${SECRET}`, cookie: `loyalty_codec_key=${SECRET}` },
    });
    assert.equal(r.statusCode, 200);
    const logged = lines.join('');
    assert.match(logged, /a handler logging what it got/);
    assert.match(logged, /\[redacted\]/);
    assert.doesNotMatch(logged, new RegExp(SECRET));
    assert.doesNotMatch(logged, /hunter2/);
  });
});

test('`loyalty api` reads the metrics token from LOYALTY_METRICS_TOKEN_FILE (a compose secret), and refuses a short one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-token-'));
  try {
    writeFileSync(join(dir, 'ok'), 'metrics-token-0123456789abcdef\n');
    writeFileSync(join(dir, 'short'), 'abc\n');
    assert.equal(
      apiServerEnv({ LOYALTY_METRICS_TOKEN_FILE: join(dir, 'ok') }).metricsToken,
      'metrics-token-0123456789abcdef',
    );
    assert.throws(() => apiServerEnv({ LOYALTY_METRICS_TOKEN_FILE: join(dir, 'short') }), /fewer than 16/);
    assert.equal(apiServerEnv({}).metricsToken, undefined, 'unset: loopback only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
