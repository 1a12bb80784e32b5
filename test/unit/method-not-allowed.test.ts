import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RouteDeclaration } from '../../api/route';
import { patternOf } from '../../api/methods';
import { offlineApi } from '../../api/description';

// A known path asked with a method it lacks answers 405 with `Allow` (issue 15, item 1), for every
// route, from the one not-found handler (api/methods.ts); an unknown path stays 404. The real API
// on a pool whose database is not there: routing needs none, and nothing may reach it.
let app: FastifyInstance;
let ROUTE_DOCS: RouteDeclaration[];
beforeAll(async () => {
  app = await offlineApi();
  // the routes as declared (api/route.ts), collected as they were registered
  ROUTE_DOCS = app.routeCatalog.routes;
});
afterAll(async () => {
  await app?.close();
});

const concrete = (path: string) => path.replace(/\{(\w+)\}/g, (_, name: string) => `x-${name}`);
const documented = (path: string) => {
  const methods = new Set(ROUTE_DOCS.filter((r) => r.path === path).map((r) => r.method.toUpperCase()));
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
};

test('every documented path, with every method it lacks: 405 method_not_allowed and Allow naming the ones it has', async () => {
  let checked = 0;
  for (const path of new Set(ROUTE_DOCS.map((r) => r.path))) {
    const allow = documented(path);
    // QUERY has a body: answered before its Content-Type is asked for (api/server.ts)
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'QUERY'].filter((m) => !allow.includes(m))) {
      const res = await app.inject({ method: method as 'GET', url: `${concrete(path)}?x=1` });
      assert.equal(res.statusCode, 405, `${method} ${path}: ${res.body}`);
      // (a route may answer OPTIONS itself: the codec's, for the Temporal UI's browser)
      const given = String(res.headers.allow).split(', ');
      assert.deepEqual(
        given.filter((m) => m !== 'OPTIONS'),
        allow,
        `${method} ${path}`,
      );
      if (method !== 'HEAD') {
        const body = res.json();
        assert.equal(body.error.code, 'method_not_allowed', `${method} ${path}`);
        assert.deepEqual(body.error.details.allow, given);
      }
      checked++;
    }
  }
  assert.ok(checked >= ROUTE_DOCS.length * 3, `${checked} cases`);
});

test('DELETE /v1/programs/x/accruals: 405 with Allow: POST', async () => {
  const res = await app.inject({ method: 'DELETE', url: '/v1/programs/x/accruals' });
  assert.equal(res.statusCode, 405);
  assert.equal(res.headers.allow, 'POST');
  assert.equal(res.json().error.code, 'method_not_allowed');
});

test('OPTIONS on a known path: 204 with Allow; on an unknown one: 404', async () => {
  const known = await app.inject({ method: 'OPTIONS', url: '/v1/programs/x/quotes/redemption' });
  assert.equal(known.statusCode, 204);
  assert.equal(known.headers.allow, 'POST');
  assert.equal(known.body, '');
  const unknown = await app.inject({ method: 'OPTIONS', url: '/v1/programs/x/nothing' });
  assert.equal(unknown.statusCode, 404);
});

test('an unknown path, or a known one with a segment more or less, stays 404 not_found', async () => {
  for (const url of ['/v1/programs/x/accruals/', '/v1/programs/x/accruals/y', '/v1/programs//accruals', '/v2/whoami']) {
    const res = await app.inject({ method: 'DELETE', url });
    assert.equal(res.statusCode, 404, url);
    assert.equal(res.json().error.code, 'not_found', url);
    assert.equal(res.headers.allow, undefined, url);
  }
});

test('a route pattern matches one whole segment per parameter, literally elsewhere', () => {
  const p = patternOf('/v1/programs/:programId/closes/:period/report');
  assert.ok(p.test('/v1/programs/a%2Fb/closes/2026-Q1/report'));
  assert.ok(!p.test('/v1/programs/a/b/closes/2026-Q1/report'));
  assert.ok(!p.test('/v1/programs/a/closes/2026-Q1/report.json'));
  assert.ok(patternOf('/openapi.json').test('/openapi.json'));
  assert.ok(!patternOf('/openapi.json').test('/openapiXjson'));
});
