import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { ROLES } from '../db/keys';
import { declarationOf, type RouteDeclaration } from './route';

/**
 * /openapi.json is generated from the routes' own declarations (api/route.ts): @fastify/swagger
 * collects every route as it is registered, fastify-type-provider-zod turns its zod schemas into
 * JSON Schema (the input side for requests, the output side for answers), and `finish` below adds
 * what the zod transform leaves out (response headers). /docs is Swagger UI, served from the
 * package (@fastify/swagger-ui: no CDN). Both need no key.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Loyalty Ledger API',
        version: '1',
        description:
          'Points ledger and liability engine. Auth: `Authorization: Bearer <key>`; every state-changing POST needs an `Idempotency-Key`. Errors: `{error: {code, message, details}}`. A known path asked with another method: 405 with `Allow`.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: '/', description: 'this API' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an API key (`loyalty keys create`)' },
          codecCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: 'loyalty_codec_key',
            description: 'a support key held by the browser for the Temporal UI (POST /codec/session)',
          },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'the metrics token (LOYALTY_METRICS_TOKEN_FILE); without one configured, loopback peers only',
          },
        },
      },
    },
    transform: createJsonSchemaTransform({
      skipList: ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/uiConfig', '/docs/initOAuth', '/docs/static/*'],
    }),
    transformObject: (doc) => finish(createJsonSchemaTransformObject({})(doc) as OpenApiDocument),
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { deepLinking: true } });
}

type Operation = {
  responses?: Record<string, { headers?: Record<string, unknown>; description?: string }>;
  parameters?: Array<{ in: string; name: string; description?: string }>;
  operationId?: string;
};
export type OpenApiDocument = { paths?: Record<string, Record<string, Operation>> } & Record<string, unknown>;

const retryAfter = (description: string) => ({
  'Retry-After': { description, schema: { type: 'integer', minimum: 0 } },
});

/** What the zod transform leaves out: response headers, and an operation id per operation. */
function finish(doc: OpenApiDocument): OpenApiDocument {
  for (const [path, ops] of Object.entries(doc.paths ?? {}))
    for (const [method, op] of Object.entries(ops)) {
      op.operationId ??= operationId(method, path);
      const r = op.responses ?? {};
      if (r['429']) r['429'].headers = retryAfter('seconds until the counting window ends');
      if (r['503'] && method !== 'get') r['503'].headers = retryAfter('seconds to wait before sending it again');
      // the server takes an absent body as `{}` (api/schema-compilers.ts): where `{}` is a valid body
      // (no property required), the body is optional
      const body = (op as { requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> } })
        .requestBody;
      const bodySchema = body?.content?.['application/json']?.schema as { required?: string[] } | undefined;
      if (body && bodySchema && !bodySchema.required?.length) body.required = false;
      for (const p of op.parameters ?? [])
        if (p.in === 'header' && p.name === 'idempotency-key')
          p.description ??=
            'the same key and body again answer the first answer (Idempotent-Replayed: true); another body: 409 idempotency_key_reused';
    }
  // the zod registry gives the error envelope an input twin too: no request takes it
  const schemas = (doc.components as { schemas?: Record<string, unknown> } | undefined)?.schemas;
  if (schemas && !JSON.stringify(doc.paths).includes('#/components/schemas/ErrorInput')) delete schemas.ErrorInput;
  return doc;
}

/** `post /v1/programs/{programId}/accruals` as `postProgramsAccruals`: stable, unique per method and path. */
function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/v1/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => (s.startsWith('{') ? `by-${s.slice(1, -1)}` : s))
    .flatMap((s) => s.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  return [method, ...words].map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1))).join('');
}

/** Collects the routes' declarations as they are registered (add before any route). */
export class RouteCatalog {
  readonly routes: RouteDeclaration[] = [];
  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (r) => {
      const d = declarationOf(r);
      // (Fastify adds a HEAD route for each GET, with the same config: the GET is the declaration)
      if (d && !d.hide && r.method !== 'HEAD') this.routes.push(d);
    });
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    routeCatalog: RouteCatalog;
  }
}

/** docs/access.md's table: every endpoint against every role (a unit test keeps the file and the code in step). */
export function accessTable(routes: readonly RouteDeclaration[]): string {
  const head = `| endpoint | ${ROLES.join(' | ')} |\n| --- | ${ROLES.map(() => '---').join(' | ')} |\n`;
  return (
    head +
    routes
      .filter((r) => r.roles !== 'none')
      .map((r) => {
        const cells = ROLES.map((role) =>
          r.roles === 'any' || (role === 'admin' && !r.decision) || (r.roles as readonly string[]).includes(role)
            ? 'yes'
            : '',
        );
        return `| \`${r.method.toUpperCase()} ${r.path}\` | ${cells.join(' | ')} |`;
      })
      .join('\n') +
    '\n'
  );
}
