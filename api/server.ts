import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { databaseAnswers } from '../db/pool';
import { CORRELATION_HTTP_HEADER } from '../domain/correlation';
import { ApiError, detailsFor5xx } from '../domain/errors';
import { correlation, correlationIdFrom } from '../temporal/correlation';
import { AccrualBatcher, type BatcherOptions } from './accrual-batcher';
import { Authenticator, FailedAuthThrottle, LOG_REDACT, requireRole, type AuthThrottleOptions } from './auth';
import type { ApiContext } from './context';
import { registerConsole, type ConsoleSettings } from './console';
import { registerOpenApi, RouteCatalog } from './openapi';
import { route } from './route';
import { zodSerializerCompiler, zodValidatorCompiler } from './schema-compilers';
import { z } from 'zod';
import { apiMetrics } from './metrics';
import { RouteMethods } from './methods';
import { ProgramCache } from './program-cache';
import { accrualBatchRoutes } from './routes/accrual-batch';
import { accrualRoutes } from './routes/accruals';
import { liabilityRoutes } from './routes/liability';
import { memberRoutes } from './routes/members';
import { programRoutes } from './routes/programs';
import { adjustmentRoutes } from './routes/adjustments';
import { auditRoutes } from './routes/audit';
import { ruleChangeRoutes } from './routes/rule-changes';
import { closeRoutes } from './routes/closes';
import { whoamiRoutes } from './routes/whoami';
import { reconciliationRoutes } from './routes/reconciliations';
import { redemptionRoutes } from './routes/redemptions';
import { quoteRoutes, ruleChangeQuoteRoutes } from './routes/quotes';
import { codecRoutes, type CodecServerOptions } from './routes/codec';
import { listRoutes, programListRoutes } from './routes/lists';
import { exportRoutes } from './routes/exports';
import { webhookRoutes } from './routes/webhooks';
import { trendRoutes } from './routes/trends';
import { isUnavailable } from './unavailable';

export interface ApiOptions {
  pool: Pool;
  logger: Logger;
  batcher: BatcherOptions;
  temporalReachable: () => Promise<boolean>;
  temporal?: ApiContext['temporal'];
  /** request bodies larger than this are refused with 413 */
  bodyLimitBytes: number;
  /** the codec server of the Temporal UI (/codec/decode, /codec/encode); without it they answer 503 */
  codec?: CodecServerOptions;
  /** where the console links workflows: the Temporal UI's address (null: no links) and the namespace */
  console?: ConsoleSettings;
  /**
   * The bearer token /metrics requires (LOYALTY_METRICS_TOKEN_FILE): its gauges are each program's
   * outstanding points and their face value. Without one, /metrics answers loopback peers only
   * (`npm start`, a Prometheus on the same host) and 401 to anyone else.
   */
  metricsToken?: string;
  /**
   * The pool the report and liability reads run on (a few connections, a statement timeout of its
   * own: cli/api-server.ts), so that slow reports never take the connections writes need. Without
   * one they share `pool`.
   */
  reportPool?: Pool;
  /** Failed authentication throttled per address and key prefix (api/auth.ts); without it, not counted. */
  authThrottle?: AuthThrottleOptions;
  /** Fastify's socket and request timeouts (DEFAULT_HTTP_TIMEOUTS when absent). */
  httpTimeouts?: HttpTimeouts;
  /** How long a request waits on a workflow's answer before it answers 202 with where to poll (DEFAULT_WORKFLOW_WAIT_MS). */
  workflowWaitMs?: number;
  /**
   * Check every JSON answer against its route's documented schema (api/schema-compilers.ts): the
   * tests' APIs do, so that /openapi.json cannot drift from what the server answers.
   */
  checkResponses?: boolean;
}

export interface HttpTimeouts {
  /** a socket that sends nothing for this long is closed (Fastify's connectionTimeout) */
  connectionTimeoutMs: number;
  /** the whole request, headers and body, must arrive within this (Node's requestTimeout: 408) */
  requestTimeoutMs: number;
  /** an idle keep-alive socket is closed after this */
  keepAliveTimeoutMs: number;
}

/**
 * A whole request within 30 s (slow senders, slowloris: 408); a socket idle for 2 minutes is closed;
 * an idle keep-alive socket after 72 s, longer than a load balancer's usual 60 s idle timeout (a
 * shorter one makes it reuse sockets the API has just closed: 502s, ECONNRESET).
 */
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  connectionTimeoutMs: 120_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
};

/**
 * A request that waits on a workflow (a redemption's outcome, an approval) answers 202 after this:
 * longer than the saga's own budget to billing's answer (each service gets 5 attempts of up to 2 s
 * with backoff, then the saga compensates), so a saga that is working answers 201 as the base
 * contract says, and only one that is stuck (no worker, Temporal unreachable) answers 202.
 */
export const DEFAULT_WORKFLOW_WAIT_MS = 30_000;

export const DEFAULT_BATCHER: BatcherOptions = { maxBatch: 200, maxInFlight: 2, maxQueued: 20_000, maxAttempts: 5 };

function errorBody(code: string, message: string, details: Record<string, unknown> = {}) {
  return { error: { code, message, details } };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/** Whether a /metrics request may read the figures: the token when there is one, else loopback only. */
function metricsAllowed(req: FastifyRequest, token: string | undefined): boolean {
  if (token === undefined) return LOOPBACK.test(req.socket.remoteAddress ?? '');
  const header = req.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
  // compared as digests: the same length whatever was sent, and in constant time
  return timingSafeEqual(sha256(given), sha256(token));
}

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  // Fastify logs every request at info; keep its own logging to warnings and errors.
  const app: FastifyInstance = Fastify({
    // warn and above (no line per request), or quieter if the logger is (the tests' is silent)
    // with the secrets of requests and errors redacted, whatever the parent logger does (api/auth.ts)
    loggerInstance: o.logger.child(
      { component: 'api' },
      { level: o.logger.levelVal > 40 ? o.logger.level : 'warn', redact: LOG_REDACT },
    ) as FastifyBaseLogger,
    bodyLimit: o.bodyLimitBytes,
    connectionTimeout: (o.httpTimeouts ?? DEFAULT_HTTP_TIMEOUTS).connectionTimeoutMs,
    requestTimeout: (o.httpTimeouts ?? DEFAULT_HTTP_TIMEOUTS).requestTimeoutMs,
    keepAliveTimeout: (o.httpTimeouts ?? DEFAULT_HTTP_TIMEOUTS).keepAliveTimeoutMs,
    return503OnClosing: true,
    // A path param may be a 128-character id, percent-encoded to 3 bytes a character: it must reach
    // the schema, not Fastify's 100-character router limit. A malformed URL (bad percent-encoding, a
    // longer param) is the client's error in the API's shape, not Fastify's own body.
    routerOptions: { maxParamLength: 512 },
    frameworkErrors: (err, _req, reply) =>
      (reply as import('fastify').FastifyReply).status(400).send(errorBody('validation_failed', err.message)),
    // The request id (`reqId` in the API's log lines) is the correlation id: the caller's
    // x-correlation-id when well formed, else a fresh one.
    genReqId: (req) => correlationIdFrom(req.headers[CORRELATION_HTTP_HEADER]),
  });
  // before any route: the not-found handler's 405 knows every route's methods
  const routeMethods = new RouteMethods(app);
  // the routes' declarations (api/route.ts), for the access table and the tests
  app.decorate('routeCatalog', new RouteCatalog(app));
  // one schema per part of a request: it validates (400 validation_failed) and documents (/openapi.json)
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(zodSerializerCompiler(o.checkResponses ?? false));
  await registerOpenApi(app);
  await registerConsole(app, o.console ?? { temporalUiUrl: null, namespace: 'default' });
  // Everything the request does (workflows it starts, their activities, the services they call)
  // runs under its correlation id; the answer carries it back.
  // (preHandler, not onRequest: reading the body would leave the async context behind).
  app.addHook('onRequest', async (req, reply) => {
    reply.header(CORRELATION_HTTP_HEADER, req.id);
  });
  app.addHook('preHandler', (req, _reply, done) => correlation.run({ correlationId: req.id }, done));
  // JSON only: anything else is 415, not a string for the schema to puzzle over.
  app.removeContentTypeParser('text/plain');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'loyalty_api_' });
  const requests = new Histogram({
    name: 'loyalty_api_request_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'loyalty_api_errors_total',
    help: 'error answers by code',
    labelNames: ['code'],
    registers: [registry],
  });

  const ctx: ApiContext = {
    pool: o.pool,
    reportPool: o.reportPool ?? o.pool,
    workflowWaitMs: o.workflowWaitMs ?? DEFAULT_WORKFLOW_WAIT_MS,
    programs: new ProgramCache(o.pool),
    auth: new Authenticator(o.pool, o.authThrottle ? new FailedAuthThrottle(o.authThrottle) : undefined),
    requireRole,
    accruals: new AccrualBatcher(o.pool, o.batcher),
    log: o.logger,
    metrics: apiMetrics(registry, o.pool),
    temporalReachable: o.temporalReachable,
    temporal: o.temporal,
  };

  // The key and the roles a route declares (api/route.ts), checked in this one hook before its input
  // is validated (401 and 403 first, as when each handler checked them); the handler gets the principal.
  // A request without a body (no Content-Type) is validated as `{}` (api/schema-compilers.ts); a
  // body of JSON `null` is a body, and not an object (400)
  app.addHook('preValidation', async (req) => {
    if (req.body == null && req.headers['content-type'] === undefined) req.body = {};
  });
  app.addHook('preValidation', async (req) => {
    const access = req.routeOptions.config.access;
    if (!access || access.roles === 'none') return;
    const principal = access.credentials
      ? await ctx.auth.principalOfSecret(access.credentials(req))
      : await ctx.auth.principalOf(req);
    if (access.roles !== 'any') requireRole(principal, access.roles, { decision: access.decision });
    req.principal = principal;
  });

  // The tests' APIs: a status a route answers but does not document is an error too (500
  // response_not_documented), as is a JSON body unlike its status's schema (api/schema-compilers.ts).
  if (o.checkResponses)
    app.addHook('onSend', async (req, reply, payload) => {
      const documented = (req.routeOptions.schema as { response?: Record<string, unknown> } | undefined)?.response;
      const status = reply.statusCode;
      if (documented && status !== 500 && !(String(status) in documented))
        throw new ApiError(
          500,
          'response_not_documented',
          `${req.method} ${req.routeOptions.url} answered ${status}, which it does not document`,
        );
      return payload;
    });

  app.addHook('onResponse', async (req, reply) => {
    requests.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError) {
      errors.inc({ code: err.code });
      if (err.statusCode >= 500) {
        if (err.details && Object.keys(err.details).length) req.log.warn({ err }, `${err.code}: ${err.message}`);
        return reply.status(err.statusCode).send(errorBody(err.code, err.message, detailsFor5xx(err.details ?? {})));
      }
      if (err.statusCode === 429 && typeof err.details?.retryAfterSeconds === 'number')
        reply.header('retry-after', String(err.details.retryAfterSeconds));
      return reply.status(err.statusCode).send(errorBody(err.code, err.message, err.details));
    }
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.statusCode === 413)
      return reply
        .status(413)
        .send(
          errorBody('payload_too_large', `request body over ${req.routeOptions.bodyLimit ?? o.bodyLimitBytes} bytes`),
        );
    if (e.statusCode === 415)
      return reply.status(415).send(errorBody('unsupported_media_type', 'send Content-Type: application/json'));
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      errors.inc({ code: 'validation_failed' });
      return reply.status(400).send(errorBody('validation_failed', e.message));
    }
    if (isUnavailable(err)) {
      req.log.warn({ err }, 'a service the API needs did not answer');
      errors.inc({ code: 'loyalty_unavailable' });
      return reply
        .status(503)
        .header('retry-after', '1')
        .send(
          errorBody(
            'loyalty_unavailable',
            'the ledger database or Temporal did not answer; retry with the same Idempotency-Key',
          ),
        );
    }
    req.log.error({ err }, 'unhandled error');
    errors.inc({ code: 'internal_error' });
    return reply.status(500).send(errorBody('internal_error', 'internal error; it has been logged'));
  });
  // A known path asked with a method it lacks: 405 with the methods it has (`Allow`); OPTIONS on it
  // answers 204 with the same `Allow`. An unknown path: 404. One place for every route (docs/api.md).
  const noRoute = (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const path = req.url.split('?')[0]!;
    const allow = routeMethods.allowed(path);
    if (allow.length === 0) return reply.status(404).send(errorBody('not_found', `no route ${req.method} ${path}`));
    reply.header('allow', allow.join(', '));
    if (req.method === 'OPTIONS') return reply.status(204).send();
    return reply
      .status(405)
      .send(errorBody('method_not_allowed', `${req.method} is not allowed on ${path}`, { allow }));
  };
  app.setNotFoundHandler(noRoute);
  // a request no route takes is answered before its body is read: a method with a body (QUERY)
  // would otherwise be refused for its Content-Type (400) before the not-found handler says 405
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url === undefined) return noRoute(req, reply);
  });

  whoamiRoutes(app, ctx);
  programRoutes(app, ctx);
  programListRoutes(app, ctx);
  accrualRoutes(app, ctx);
  accrualBatchRoutes(app, ctx);
  memberRoutes(app, ctx);
  liabilityRoutes(app, ctx);
  trendRoutes(app, ctx);
  redemptionRoutes(app, ctx);
  quoteRoutes(app, ctx);
  ruleChangeQuoteRoutes(app, ctx);
  reconciliationRoutes(app, ctx);
  closeRoutes(app, ctx);
  auditRoutes(app, ctx);
  adjustmentRoutes(app, ctx);
  ruleChangeRoutes(app, ctx);
  listRoutes(app, ctx);
  exportRoutes(app, ctx);
  webhookRoutes(app, ctx);
  codecRoutes(app, ctx, o.codec);

  route(
    app,
    {
      method: 'GET',
      url: '/healthz',
      summary: 'The process is up',
      roles: 'none',
      responses: { 200: z.object({ status: z.literal('ok') }) },
    },
    async () => ({ status: 'ok' }),
  );
  const readiness = z.object({ postgres: z.boolean(), temporal: z.boolean(), accrualsQueued: z.number() });
  route(
    app,
    {
      method: 'GET',
      url: '/readyz',
      summary: 'PostgreSQL and Temporal answer',
      roles: 'none',
      responses: {
        200: readiness.describe('both answer'),
        503: readiness.describe('one of them does not'),
      },
    },
    async (_req, reply) => {
      const postgres = await databaseAnswers(o.pool);
      const temporal = await o.temporalReachable().catch(() => false);
      return reply
        .status(postgres && temporal ? 200 : 503)
        .send({ postgres, temporal, accrualsQueued: ctx.accruals.queued });
    },
  );
  route(
    app,
    {
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics',
      description:
        'Not an API key: the metrics token (LOYALTY_METRICS_TOKEN_FILE) when one is configured, else none from loopback peers (401 from anywhere else).',
      roles: 'none',
      // no key from loopback without a token, else the metrics token
      security: [{}, { metricsToken: [] }],
      errors: { 401: ['unauthorized'] },
      responses: { 200: { content: { 'text/plain': z.string() }, description: 'Prometheus text format' } },
    },
    async (req, reply) => {
      if (!metricsAllowed(req, o.metricsToken))
        return reply
          .status(401)
          .header('www-authenticate', 'Bearer realm="metrics"')
          .send(
            errorBody(
              'unauthorized',
              o.metricsToken === undefined
                ? 'this API serves /metrics to loopback only; give it LOYALTY_METRICS_TOKEN_FILE to serve it elsewhere'
                : 'send Authorization: Bearer <metrics token>',
            ),
          );
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );
  route(
    app,
    {
      method: 'GET',
      url: '/openapi.json',
      summary: 'This document: the OpenAPI 3.1 description of every route, generated from their declarations',
      roles: 'none',
      responses: { 200: z.object({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }).loose() },
    },
    async () => app.swagger(),
  );
  return app;
}
