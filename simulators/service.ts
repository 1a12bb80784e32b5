import pino from 'pino';
import { CORRELATION_HTTP_HEADER } from '../domain/correlation';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { FaultInjector } from './faults';
import { IdempotencyStore } from './idempotency';

export class SimError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface SimService {
  app: FastifyInstance;
  faults: FaultInjector;
  /** A route with fault injection and, for writes, Idempotency-Key semantics. */
  route<S extends z.ZodType>(
    method: 'GET' | 'POST',
    url: string,
    operation: string,
    schema: S | null,
    handler: (input: z.infer<S>, req: FastifyRequest) => unknown,
  ): void;
}

const RECENT_LIMIT = 1000;

/** A simulator: a Fastify app with the admin fault endpoints, JSON errors, and operation routes. */
export function simService(name: string, seed: number): SimService {
  // forceCloseConnections: a held ("timed out") request must not keep close() waiting
  // maxParamLength: ids of up to 128 characters (the ledger's) in paths; Fastify's default is 100
  const app = Fastify({
    logger: false,
    bodyLimit: 256 * 1024,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 512 },
  });
  const faults = new FaultInjector(seed);
  const idem = new IdempotencyStore();
  faults.register(app);
  // Every call's correlation id (the x-correlation-id the loyalty worker sends): in the log, and
  // the last RECENT_LIMIT calls at GET /admin/requests?correlationId= for tests and demos.
  const log = pino({ level: process.env.LOYALTY_SIMULATOR_LOG_LEVEL ?? 'silent', base: { service: name } });
  const recent: Array<{
    at: string;
    method: string;
    url: string;
    correlationId: string | null;
    idempotencyKey: string | null;
  }> = [];
  app.addHook('onRequest', async (req) => {
    if (req.url.startsWith('/admin/') || req.url === '/healthz') return;
    const correlationId =
      typeof req.headers[CORRELATION_HTTP_HEADER] === 'string' ? req.headers[CORRELATION_HTTP_HEADER] : null;
    const idempotencyKey = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : null;
    log.info({ correlationId, method: req.method, url: req.url, idempotencyKey }, 'request');
    recent.push({ at: new Date().toISOString(), method: req.method, url: req.url, correlationId, idempotencyKey });
    if (recent.length > RECENT_LIMIT) recent.shift();
  });
  app.get('/admin/requests', async (req) => {
    const { correlationId } = req.query as { correlationId?: string };
    return { requests: recent.filter((r) => !correlationId || r.correlationId === correlationId) };
  });
  app.get('/healthz', async () => ({ status: 'ok', service: name }));
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof SimError)
      return reply.status(err.statusCode).send({ error: { code: err.code, message: err.message } });
    const e = err as { statusCode?: number; message: string };
    if (e.statusCode && e.statusCode < 500)
      return reply.status(400).send({ error: { code: 'validation_failed', message: e.message } });
    return reply.status(500).send({ error: { code: 'internal_error', message: e.message } });
  });
  const route: SimService['route'] = (method, url, operation, schema, handler) => {
    app.route({
      method,
      url,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        if (await faults.apply(operation, reply)) return reply;
        if (method === 'POST' && (await idem.replay(operation, req, reply))) return reply;
        const input =
          method === 'GET'
            ? { ...(req.params as object), ...(req.query as object) }
            : { ...(req.params as object), ...(req.body as object) };
        let data: unknown = input;
        if (schema) {
          const parsed = schema.safeParse(input);
          if (!parsed.success) {
            return reply.status(400).send({
              error: {
                code: 'validation_failed',
                message: `invalid ${operation} request`,
                details: { issues: parsed.error.issues },
              },
            });
          }
          data = parsed.data;
        }
        const body = await handler(data as never, req);
        const status = method === 'POST' ? 201 : 200;
        if (method === 'POST') idem.remember(operation, req, status, body);
        return reply.status(status).send(body);
      },
    });
  };
  return { app, faults, route };
}
