import pino from 'pino';
import { createPool } from '../db/pool';
import type { OpenApiDocument } from './openapi';
import type { RouteDeclaration } from './route';
import { buildApi, DEFAULT_BATCHER } from './server';

/**
 * The API's routes and its OpenAPI document, from the real API built on a pool that never connects
 * (routing and the document need no database): for the access table, the typed client and the
 * tests (scripts/access-table.ts, scripts/openapi-client.ts, test/unit/openapi.test.ts).
 */
export async function apiDescription(): Promise<{ routes: RouteDeclaration[]; document: OpenApiDocument }> {
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
  try {
    await app.ready();
    return { routes: [...app.routeCatalog.routes], document: app.swagger() as unknown as OpenApiDocument };
  } finally {
    await app.close();
    await pool.end();
  }
}
