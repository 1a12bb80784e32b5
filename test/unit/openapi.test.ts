import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, test } from 'vitest';
import { generatedClient, SPEC_FILE, TYPES_FILE } from '../../api/client/generate';
import { accessTable } from '../../api/openapi';
import type { RouteDeclaration } from '../../api/route';
import { offlineApi } from '../../api/description';

// /openapi.json is generated from the routes' declarations (api/route.ts) and answers what the
// routes can answer; docs/access.md's table, the committed spec and the typed client
// (api/client/) are generated from the same declarations, and fail here when they drift.
const ROOT = join(__dirname, '..', '..');
const ROUTES_DIR = join(ROOT, 'api', 'routes');

type Response = { headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> };
type Op = {
  responses: Record<string, Response>;
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: { pattern?: string } }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
};
type Doc = { paths: Record<string, Record<string, Op>> };

let app: FastifyInstance;
let routes: RouteDeclaration[];
let doc: Doc;
beforeAll(async () => {
  // the real API on a pool whose database is not there: routing and the document need none
  app = await offlineApi();
  routes = app.routeCatalog.routes;
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200);
  doc = res.json();
});
afterAll(async () => {
  await app?.close();
});
const op = (r: RouteDeclaration) => doc.paths[r.path]![r.method]!;

/** `METHOD /path/{param}` of each route in api/routes whose handler calls stillRunning. */
function routesAnsweringInProgress(): string[] {
  const found: string[] = [];
  for (const f of readdirSync(ROUTES_DIR).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(join(ROUTES_DIR, f), 'utf8');
    const starts = [...text.matchAll(/method: '(GET|POST)',\s+url: '([^']+)'/g)];
    starts.forEach((m, i) => {
      const body = text.slice(m.index, starts[i + 1]?.index ?? text.length);
      if (body.includes('stillRunning(')) found.push(`${m[1]!.toLowerCase()} ${m[2]!.replace(/:(\w+)/g, '{$1}')}`);
    });
  }
  return found.sort();
}

test('every route is in the document, and every path of the document is a route', () => {
  assert.ok(routes.length >= 40, `${routes.length} routes`);
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
  assert.deepEqual(documented.sort(), routes.map((r) => `${r.method} ${r.path}`).sort());
});

test('the routes that may answer 202 in_progress document it, and only they', () => {
  const inProgress = routesAnsweringInProgress();
  assert.ok(inProgress.length >= 4, inProgress.join(', '));
  const documented = routes
    .filter((r) => r.mayAnswerInProgress)
    .map((r) => `${r.method} ${r.path}`)
    .sort();
  assert.deepEqual(documented, inProgress);
  for (const r of routes.filter((x) => x.mayAnswerInProgress))
    assert.ok(JSON.stringify(op(r).responses['202']).includes('in_progress'), `${r.method} ${r.path}`);
});

test('every authenticated route documents 401, 403, 503 and 429 with Retry-After, and bearer security; public ones need no key', () => {
  for (const r of routes) {
    const o = op(r);
    const where = `${r.method} ${r.path}`;
    if (r.roles === 'none') {
      assert.equal(o.responses['429'], undefined, where);
      // /metrics: no key from loopback, else the metrics token (not an API key)
      assert.ok(o.security?.length === 0 || o.security?.some((s) => Object.keys(s).length === 0), where);
      continue;
    }
    assert.ok(o.responses['429']?.headers?.['Retry-After'], where);
    for (const status of ['401', '403', '503']) assert.ok(o.responses[status], `${where} ${status}`);
    assert.ok(
      o.security?.some((s) => 'bearer' in s),
      where,
    );
  }
  for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) assert.ok(doc.paths[path]?.get, path);
});

test('every error answer is the envelope; a body means 400, 413 and 415; a path under a program means 404', () => {
  for (const r of routes) {
    const o = op(r);
    const where = `${r.method} ${r.path}`;
    for (const [status, res] of Object.entries(o.responses))
      if (Number(status) >= 400 && !(r.path === '/readyz' && status === '503'))
        assert.deepEqual(
          res.content?.['application/json']?.schema,
          { $ref: '#/components/schemas/Error' },
          `${where} ${status}`,
        );
    if (r.method === 'post') for (const s of ['400', '413', '415']) assert.ok(o.responses[s], `${where} ${s}`);
    if (r.path.includes('{programId}')) assert.ok(o.responses['404'], `${where} 404`);
    for (const status of Object.keys(o.responses).filter((s) => s.startsWith('2')))
      if (status !== '204') assert.ok(Object.keys(o.responses[status]!.content ?? {}).length > 0, `${where} ${status}`);
  }
});

test('path parameters carry their patterns; bodies refuse unknown fields as the server does; Idempotency-Key where required', () => {
  for (const r of routes) {
    const o = op(r);
    const where = `${r.method} ${r.path}`;
    for (const name of [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!)) {
      const p = o.parameters?.find((x) => x.in === 'path' && x.name === name);
      assert.ok(p?.required, `${where} ${name}`);
      // a pattern (or several), or a uuid's format: never a bare string
      const schema = p.schema as { pattern?: string; format?: string; allOf?: Array<{ pattern?: string }> };
      assert.ok(schema.pattern || schema.format || schema.allOf?.every((x) => x.pattern), `${where} ${name}`);
    }
    if (r.body) {
      const schema = o.requestBody!.content['application/json']!.schema as { additionalProperties?: unknown };
      // a strict zod object (the server refuses unknown fields): additionalProperties false
      const def = (r.body as unknown as { _zod: { def: { catchall?: { _zod: { def: { type: string } } } } } })._zod.def;
      if (def.catchall?._zod.def.type === 'never') assert.equal(schema.additionalProperties, false, where);
    }
    const idem = o.parameters?.find((x) => x.in === 'header' && x.name === 'idempotency-key');
    assert.equal(Boolean(idem?.required), r.idempotent, where);
  }
});

test('docs/access.md holds the endpoint x role table of the routes as declared', () => {
  assert.ok(
    readFileSync(join(ROOT, 'docs', 'access.md'), 'utf8').includes(accessTable(routes)),
    'regenerate the table: npx tsx scripts/access-table.ts',
  );
});

test('the committed spec and typed client are the ones the routes generate', async () => {
  const { spec, types } = await generatedClient();
  assert.equal(readFileSync(join(ROOT, SPEC_FILE), 'utf8'), spec, 'regenerate them: npm run openapi:client');
  assert.equal(readFileSync(join(ROOT, TYPES_FILE), 'utf8'), types, 'regenerate them: npm run openapi:client');
  assert.deepEqual(JSON.parse(spec), doc, '/openapi.json is the committed spec');
});

test('the spec passes Redocly lint (redocly.yaml: recommended, strict)', () => {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js'), 'lint', SPEC_FILE, '--config', 'redocly.yaml'],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('/docs is Swagger UI served from this API: its page and its assets, no CDN, no key', async () => {
  const page = await app.inject({ method: 'GET', url: '/docs/' });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(assets.length >= 2, page.body);
  for (const a of assets) {
    assert.ok(!/^(https?:)?\/\//.test(a), `an asset from elsewhere: ${a}`);
    const url = new URL(a, 'http://api/docs/').pathname;
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200, url);
    assert.ok(res.body.length > 0, url);
  }
  const redirect = await app.inject({ method: 'GET', url: '/docs' });
  assert.ok([200, 302].includes(redirect.statusCode));
});
