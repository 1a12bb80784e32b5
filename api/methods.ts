import type { FastifyInstance } from 'fastify';

/**
 * The methods each registered path answers, collected as routes are registered (an onRoute hook,
 * so add it before any route): the not-found handler (api/server.ts) tells a known path asked with
 * another method (405, `Allow`) from an unknown path (404), for every route in one place.
 */
export class RouteMethods {
  private readonly routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];

  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const pattern = patternOf(route.url ?? route.path);
      let entry = this.routes.find((r) => r.pattern.source === pattern.source);
      if (!entry) this.routes.push((entry = { pattern, methods: new Set() }));
      for (const m of methods) entry.methods.add(m.toUpperCase());
      // Fastify answers HEAD for every GET route (exposeHeadRoutes)
      if (entry.methods.has('GET')) entry.methods.add('HEAD');
    });
  }

  /** The methods some route answers on this path (no query string), sorted; empty: no route has it. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const r of this.routes) if (r.pattern.test(path)) for (const m of r.methods) methods.add(m);
    return [...methods].sort();
  }
}

/** `/v1/programs/:programId/accruals` as a regular expression: a parameter is one non-empty segment. */
export function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}
