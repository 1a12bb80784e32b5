/**
 * One route, declared once (issue 15, item 1). A route file calls
 *
 *   route(app, {
 *     method: 'POST', url: '/v1/programs/:programId/accruals',
 *     summary: 'Report a purchase',
 *     roles: ['billing'],                 // or 'any' (any key), 'none' (public); decision: true for SoD decisions
 *     params: programParams, body: accrualSchema, idempotency: 'required',   // query:, headers: too
 *     responses: { 201: accrualAnswer },  // every success status with its zod schema
 *     errors: { 409: ['invoice_already_accrued'], 422: ['amount_out_of_range'] },
 *   }, async (req, reply, principal) => { ... });
 *
 * and from that one declaration: the request is validated with the same zod schemas (params, body,
 * query, headers; a failure is 400 validation_failed, api/schema-compilers.ts), the key is checked
 * and the roles enforced in one hook (api/server.ts, before validation, as before: 401/403 first),
 * the handler gets the principal, `/openapi.json` documents it (path patterns, every status and its
 * body, security), docs/access.md's table is generated from it (api/openapi.ts accessTable) and
 * the typed client (api/client/openapi.d.ts) follows. The errors every route of its kind can
 * answer (400 for any input, 401/403/429 with a key, 404 under a program, 413/415 with a body, 503)
 * are added here; a route lists only its own codes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { z } from 'zod';
import type { Principal, Role } from '../db/keys';
import { idempotencyKeyHeader } from '../domain/schemas';

/** Who may call a route: roles (admin too, except decisions), any key, or no key at all. */
export type Access = readonly Role[] | 'any' | 'none';

/** What the auth hook reads from a route's config (api/server.ts). */
export interface RouteAccess {
  roles: Access;
  /** a decision on someone else's request: a person holding one of `roles` themselves (api/auth.ts requireRole) */
  decision?: true;
  /** where the key comes from: the Authorization header (default) or the codec's own (header or cookie) */
  credentials?: (req: FastifyRequest) => string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** set by the auth hook on every route whose access is not 'none' */
    principal?: Principal;
  }
}

/** The error envelope every 4xx and 5xx answers with (api/server.ts errorBody). */
export const errorEnvelope = z
  .object({
    error: z
      .object({
        code: z.string(),
        message: z.string(),
        details: z.record(z.string(), z.unknown()).optional(),
      })
      .loose(),
  })
  .loose()
  .meta({ id: 'Error' });

/** A workflow that has not answered within the API's wait (api/context.ts stillRunning). */
export const inProgressAnswer = z
  .object({
    status: z.literal('in_progress'),
    workflowId: z.string(),
    poll: z.string().describe('the GET path that shows the outcome'),
  })
  .loose()
  .describe(
    'The workflow has not answered within the API wait (30 s by default): the request was taken and is not stored under its Idempotency-Key; GET `poll` shows the outcome',
  );

/** Idempotency-Key as a header schema: loose (every other header passes as it is). */
const idempotencyHeaders = {
  required: z.object({ 'idempotency-key': idempotencyKeyHeader }).loose(),
  optional: z.object({ 'idempotency-key': idempotencyKeyHeader.optional() }).loose(),
};

type Method = 'GET' | 'POST' | 'DELETE' | 'OPTIONS';
type Status = 200 | 201 | 202 | 204 | 503;

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method;
  url: string;
  summary: string;
  description?: string;
  roles: Access;
  decision?: true;
  credentials?: RouteAccess['credentials'];
  /** security for the docs when it is not the API key's (the codec's cookie, the metrics token) */
  security?: Array<Record<string, string[]>>;
  params?: P;
  query?: Q;
  body?: B;
  /** the Idempotency-Key header: required (state-changing POSTs) or optional */
  idempotency?: 'required' | 'optional';
  /** every success status it answers, with its body (a zod schema: JSON; other media types as Content) */
  responses: Partial<Record<Status, z.ZodType | Content>>;
  /** the route's own error codes by status (the common ones are added: see the top of this file) */
  errors?: Partial<Record<400 | 401 | 403 | 404 | 406 | 409 | 422 | 429 | 503, readonly string[]>>;
  bodyLimit?: number;
  onRequest?: RouteShorthandOptions['onRequest'];
  preValidation?: RouteShorthandOptions['preValidation'];
  /** not in /openapi.json (a CORS preflight) */
  hide?: true;
}

/** A body in other media types than JSON alone (HTML, CSV, Prometheus text): each type's schema. */
export interface Content {
  content: Record<string, z.ZodType>;
  description: string;
}

type Handler<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> = (
  req: FastifyRequest<{ Params: z.output<P>; Querystring: z.output<Q>; Body: z.output<B> }>,
  reply: FastifyReply,
  /** the caller (undefined on a route whose roles are 'none') */
  principal: Principal,
) => Promise<unknown>;

/** The route's declarations, kept for the access table and the tests (collected by an onRoute hook: api/openapi.ts). */
export interface RouteDeclaration {
  method: 'get' | 'post' | 'delete' | 'options';
  path: string;
  summary: string;
  roles: Access;
  decision?: true;
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  idempotent: boolean;
  mayAnswerInProgress: boolean;
  hide: boolean;
}

/** Declares one route (see the top of this file). */
export function route<
  P extends z.ZodType = z.ZodType<Record<string, never>>,
  Q extends z.ZodType = z.ZodType<Record<string, never>>,
  B extends z.ZodType = z.ZodType<undefined>,
>(app: FastifyInstance, spec: RouteSpec<P, Q, B>, handler: Handler<P, Q, B>): void {
  const declaration: RouteDeclaration = {
    method: spec.method.toLowerCase() as RouteDeclaration['method'],
    path: spec.url.replace(/:(\w+)/g, '{$1}'),
    summary: spec.summary,
    roles: spec.roles,
    ...(spec.decision ? { decision: spec.decision } : {}),
    body: spec.body,
    query: spec.query,
    params: spec.params,
    idempotent: spec.idempotency === 'required',
    mayAnswerInProgress: spec.responses[202] === inProgressAnswer,
    hide: spec.hide === true,
  };
  app.route({
    method: spec.method,
    url: spec.url,
    bodyLimit: spec.bodyLimit,
    onRequest: spec.onRequest,
    preValidation: spec.preValidation,
    config: {
      access: { roles: spec.roles, decision: spec.decision, credentials: spec.credentials },
      declaration,
    } as never,
    schema: {
      summary: spec.summary,
      description: describe(spec),
      ...(spec.hide ? { hide: true } : {}),
      security: spec.security ?? (spec.roles === 'none' ? [] : [{ bearer: [] }]),
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.query ? { querystring: spec.query } : {}),
      ...(spec.body ? { body: spec.body } : {}),
      ...(spec.idempotency ? { headers: idempotencyHeaders[spec.idempotency] } : {}),
      response: responses(spec),
    } as never,
    handler: (req, reply) => handler(req as never, reply, req.principal as Principal),
  });
}

/** The route's declaration as collected from Fastify's route options (onRoute). */
export function declarationOf(routeOptions: { config?: unknown }): RouteDeclaration | undefined {
  return (routeOptions.config as { declaration?: RouteDeclaration } | undefined)?.declaration;
}

export const rolesText = (roles: Access, decision = false) =>
  roles === 'any'
    ? 'any key'
    : roles === 'none'
      ? 'no key needed'
      : decision
        ? `${roles.join(', ')}: a person holding the role (not admin, not a service)`
        : [...new Set([...roles, 'admin'])].join(', ');

function describe<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(spec: RouteSpec<P, Q, B>): string {
  const parts = [`Roles: ${rolesText(spec.roles, spec.decision)}.`];
  if (spec.description) parts.push(spec.description);
  return parts.join(' ');
}

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorEnvelope } },
});

/** Every status the route can answer: its own, and those of its kind (the top of this file). */
function responses<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  spec: RouteSpec<P, Q, B>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(spec.responses)) {
    if (!schema) continue;
    if ('content' in schema && !(schema instanceof z.ZodType))
      out[status] = {
        description: schema.description,
        content: Object.fromEntries(Object.entries(schema.content).map(([type, s]) => [type, { schema: s }])),
      };
    else if (status === '204') out[status] = z.undefined().describe('No content');
    else
      out[status] = {
        description: (schema as z.ZodType).description ?? 'OK',
        content: { 'application/json': { schema } },
      };
  }
  const codes = (status: keyof NonNullable<RouteSpec<P, Q, B>['errors']>, common: string[]) => [
    ...new Set([...common, ...(spec.errors?.[status] ?? [])]),
  ];
  const listed = (list: string[]) => list.map((c) => `\`${c}\``).join(', ');
  const hasInput = spec.params || spec.query || spec.body || spec.idempotency;
  const bad = codes(400, hasInput ? ['validation_failed'] : []);
  if (bad.length || spec.method !== 'GET')
    out['400'] = error(`${listed(['validation_failed'])}: the request is malformed`);
  if (spec.errors?.[401]?.length) out['401'] = error(`${listed([...spec.errors[401]])}: no key, or not the right one`);
  if (spec.roles !== 'none') {
    out['401'] = error('`unauthorized`: no key, or an unknown or revoked one');
    const forbidden = codes(403, [
      'forbidden',
      'program_not_allowed',
      ...(spec.decision ? ['decision_needs_person'] : []),
    ]);
    out['403'] = error(`${listed(forbidden)}: the key may not do this`);
    out['429'] = error(
      `${listed(codes(429, ['too_many_failed_attempts']))}: too many failed authentications from this address or on this key, or too much at once; wait Retry-After seconds`,
    );
  }
  const notFound = spec.errors?.[404] ?? (spec.url.includes(':programId') ? ['not_found'] : []);
  if (notFound.length) out['404'] = error(`${listed([...notFound])}: no such program or resource`);
  if (spec.errors?.[406]?.length)
    out['406'] = error(`${listed([...spec.errors[406]])}: none of the media types offered is acceptable`);
  if (spec.errors?.[409]?.length)
    out['409'] = error(`${listed([...spec.errors[409]])}: conflicts with what is recorded`);
  // any method but GET may carry a body (DELETE, OPTIONS too): its size and type are refused alike
  if (spec.method !== 'GET') {
    out['413'] = error('`payload_too_large`: the body is over the limit');
    out['415'] = error('`unsupported_media_type`: send Content-Type: application/json');
  }
  if (spec.errors?.[422]?.length) out['422'] = error(`${listed([...spec.errors[422]])}: refused by the rules`);
  if (!out['503'] && spec.roles !== 'none')
    out['503'] = error(`${listed(codes(503, ['loyalty_unavailable']))}: a service the API needs did not answer`);
  return out;
}
