import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { createPool } from '../db/pool';
import type { OpenApiDocument } from './openapi';
import type { RouteDeclaration } from './route';
import { buildApi, DEFAULT_BATCHER } from './server';

/**
 * The real API built on a pool that never connects (routing, the document and any refusal before a
 * query need no database), ready; closing it ends the pool. For the access table, the typed client
 * and the tests that inject requests (test/unit/openapi.test.ts, method-not-allowed.test.ts).
 */
export async function offlineApi(): Promise<FastifyInstance> {
  const pool = createPool({
    connectionString: 'postgres://u:p@127.0.0.1:1/none',
    maxConnections: 1,
    applicationName: 'spec',
  });
  const app = await buildApi({
    pool,
    logger: pino({ level: 'silent' }),
    batcher: DEFAULT_BATCHER,
    bodyLimitBytes: 64 * 1024,
    temporalReachable: async () => false,
  });
  app.addHook('onClose', () => pool.end());
  await app.ready();
  return app;
}

/** The API's routes and its OpenAPI document (scripts/access-table.ts, scripts/openapi-client.ts). */
export async function apiDescription(): Promise<{ routes: RouteDeclaration[]; document: OpenApiDocument }> {
  const app = await offlineApi();
  try {
    return { routes: [...app.routeCatalog.routes], document: app.swagger() as unknown as OpenApiDocument };
  } finally {
    await app.close();
  }
}
