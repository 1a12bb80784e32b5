import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { FailedAuthThrottle, keyPrefix } from '../../api/auth';
import { buildApi, DEFAULT_BATCHER, DEFAULT_HTTP_TIMEOUTS } from '../../api/server';
import { createPool } from '../../db/pool';

// Failed authentication is throttled in memory (issue 14, item 8). A real API on a pool whose
// database is not there: a lookup that reached the database would answer 503 loyalty_unavailable,
// so a 429 proves the throttle answered before any database call.
describe('the throttle', () => {
  test('counts per bucket within a window, then refuses until the window ends', () => {
    let now = 1_000_000;
    const t = new FailedAuthThrottle({ maxFailures: 3, windowMs: 60_000, maxTracked: 100 }, () => now);
    const k = ['addr:10.0.0.1'];
    for (let i = 0; i < 3; i++) {
      assert.equal(t.retryAfterSeconds(k), 0);
      t.fail(k);
    }
    assert.equal(t.retryAfterSeconds(k), 60);
    assert.equal(t.retryAfterSeconds(['addr:10.0.0.2']), 0, 'another address is not refused');
    now += 30_000;
    assert.equal(t.retryAfterSeconds(k), 30);
    now += 30_000;
    assert.equal(t.retryAfterSeconds(k), 0, 'the window ended');
  });

  test('holds at most maxTracked buckets', () => {
    const t = new FailedAuthThrottle({ maxFailures: 3, windowMs: 60_000, maxTracked: 50 });
    for (let i = 0; i < 10_000; i++) t.fail([`addr:${i}`, `key:${i}`]);
    assert.ok(t.tracked <= 50, `tracked ${t.tracked}`);
  });

  test('a key prefix names the key id of a secret', () => {
    assert.equal(keyPrefix('ll_k-1a2b3c_abcdefghijkl'), 'll_k-1a2b3c');
    assert.equal(keyPrefix('whatever-else-is-sent'), 'whatever-els');
  });
});

describe('the API', () => {
  let app: FastifyInstance;
  const pool = createPool({
    connectionString: 'postgres://u:p@127.0.0.1:1/none',
    maxConnections: 2,
    applicationName: 't',
  });
  beforeAll(async () => {
    app = await buildApi({
      pool,
      logger: pino({ level: 'silent' }),
      batcher: DEFAULT_BATCHER,
      bodyLimitBytes: 64 * 1024,
      temporalReachable: async () => false,
      authThrottle: { maxFailures: 3, windowMs: 60_000, maxTracked: 1_000 },
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await pool.end();
  });
  const get = (key: string, remoteAddress: string) =>
    app.inject({
      method: 'GET',
      url: '/v1/programs/p-1',
      remoteAddress,
      headers: { authorization: `Bearer ${key}` },
    });

  test('past the limit of failures from an address: 429 too_many_failed_attempts with Retry-After, no lookup', async () => {
    // keys over 200 characters fail without a lookup: they count as failures
    for (let i = 0; i < 3; i++) {
      const r = await get(`ll_x${i}_${'k'.repeat(300)}`, '10.1.1.1');
      assert.equal(r.statusCode, 401, r.body);
    }
    for (const key of ['ll_new_guess', 'll_other_guess', `ll_y_${'k'.repeat(300)}`]) {
      const r = await get(key, '10.1.1.1');
      assert.equal(r.statusCode, 429, r.body);
      assert.equal(r.json().error.code, 'too_many_failed_attempts');
      assert.ok(Number(r.headers['retry-after']) > 0 && Number(r.headers['retry-after']) <= 60);
    }
    // another address with a new prefix still reaches the lookup (here: a database that is not there)
    const other = await get('ll_fresh_guess', '10.2.2.2');
    assert.equal(other.statusCode, 503, other.body);
  });

  test('past the limit of failures on one key prefix, from any address', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get(`ll_target_${'k'.repeat(300 + i)}`, `10.3.3.${i}`);
      assert.equal(r.statusCode, 401, r.body);
    }
    const r = await get('ll_target_guess', '10.4.4.4');
    assert.equal(r.statusCode, 429, r.body);
  });

  test('no key at all is 401 and not counted', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await app.inject({ method: 'GET', url: '/v1/programs/p-1', remoteAddress: '10.5.5.5' });
      assert.equal(r.statusCode, 401);
    }
  });
});

describe("the API's HTTP limits", () => {
  test('socket, request and keep-alive timeouts and the body limit are set on the server', async () => {
    const pool = createPool({
      connectionString: 'postgres://u:p@127.0.0.1:1/none',
      maxConnections: 1,
      applicationName: 't',
    });
    const app = await buildApi({
      pool,
      logger: pino({ level: 'silent' }),
      batcher: DEFAULT_BATCHER,
      bodyLimitBytes: 1024,
      temporalReachable: async () => false,
    });
    try {
      await app.ready();
      assert.equal(app.server.timeout, DEFAULT_HTTP_TIMEOUTS.connectionTimeoutMs);
      assert.equal(app.server.requestTimeout, DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs);
      assert.equal(app.server.keepAliveTimeout, DEFAULT_HTTP_TIMEOUTS.keepAliveTimeoutMs);
      assert.ok(DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs > 0 && DEFAULT_HTTP_TIMEOUTS.connectionTimeoutMs > 0);
      assert.equal(app.initialConfig.bodyLimit, 1024);
    } finally {
      await app.close();
      await pool.end();
    }
  });
});
