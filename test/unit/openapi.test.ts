import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'vitest';
import { openApiDocument, ROUTE_DOCS } from '../../api/openapi';

// The OpenAPI document answers what the routes can answer: a route whose handler may answer 202
// in_progress (stillRunning, past the API's wait on a workflow) documents it, read from the route
// files themselves so that a new such route without its doc fails here; and every route that
// authenticates documents 429 too_many_failed_attempts with Retry-After.
const ROUTES_DIR = join(__dirname, '..', '..', 'api', 'routes');

/** `METHOD /path/{param}` of each handler in api/routes whose body calls stillRunning. */
function routesAnsweringInProgress(): string[] {
  const found: string[] = [];
  for (const f of readdirSync(ROUTES_DIR).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(join(ROUTES_DIR, f), 'utf8');
    const starts = [...text.matchAll(/app\.(get|post)\('([^']+)'/g)];
    starts.forEach((m, i) => {
      const body = text.slice(m.index, starts[i + 1]?.index ?? text.length);
      if (body.includes('stillRunning(')) found.push(`${m[1]} ${m[2]!.replace(/:(\w+)/g, '{$1}')}`);
    });
  }
  return found.sort();
}

type Op = { responses: Record<string, { headers?: Record<string, unknown> }> };
const doc = openApiDocument() as { paths: Record<string, Record<string, Op>> };

test('the routes that may answer 202 in_progress document it, and only they', () => {
  const inProgress = routesAnsweringInProgress();
  assert.ok(inProgress.length >= 4, inProgress.join(', '));
  const documented = ROUTE_DOCS.filter((r) => doc.paths[r.path]![r.method]!.responses['202'])
    .map((r) => `${r.method} ${r.path}`)
    .sort();
  assert.deepEqual(documented, inProgress);
});

test('every authenticated route documents 429 with Retry-After; the unauthenticated ones do not', () => {
  for (const r of ROUTE_DOCS) {
    const throttled = doc.paths[r.path]![r.method]!.responses['429'];
    if (r.roles === 'none') assert.equal(throttled, undefined, r.path);
    else assert.ok(throttled?.headers?.['Retry-After'], `${r.method} ${r.path}`);
  }
});
