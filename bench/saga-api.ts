import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import pino from 'pino';
import { buildApi, DEFAULT_BATCHER } from '../api/server';
import { newSecret, putKey } from '../db/keys';
import { onCleanup } from './lib';

/** The API in this process, on a free port, with an admin key; `post` sends one JSON request with a fresh Idempotency-Key. */
export async function startBenchApi(pool: Pool, client: Client, taskQueue: string) {
  const api = await buildApi({
    pool,
    logger: pino({ level: 'warn' }),
    batcher: DEFAULT_BATCHER,
    bodyLimitBytes: 65536,
    temporalReachable: async () => true,
    temporal: { client, taskQueue },
  });
  await api.listen({ port: 0, host: '127.0.0.1' });
  onCleanup('api', () => api.close());
  const base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  const key = newSecret('bench-admin');
  await putKey(pool, { keyId: 'bench-admin', secret: key, principal: 'bench', roles: ['admin'] });
  const post = async (path: string, body: unknown) => {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { post };
}
