import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where `npm run console:build` (run by `npm install`) puts the console's static build. */
export const CONSOLE_DIST = join(__dirname, '..', 'console', 'dist');

// The console's own pages and scripts only: it talks to this API and nothing else, and no other
// site may frame it (its buttons approve closes).
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** What the console is told of its surroundings (GET /console/config.json): not an API, no key needed. */
export interface ConsoleSettings {
  /** the Temporal UI's address for links to workflows (http://localhost:8233 under npm start); null: none */
  temporalUiUrl: string | null;
  namespace: string;
}

/**
 * The finance and support console at /console/ (console/: Preact, built by Vite): static files that
 * need no key; the console signs in by calling the documented API with the user's key, which it keeps
 * in memory. Not in /openapi.json (no API of its own).
 */
export async function registerConsole(app: FastifyInstance, settings: ConsoleSettings): Promise<void> {
  // the one thing the static build cannot know: where this deployment's Temporal UI is
  app.get('/console/config.json', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
    return { temporalUiUrl: settings.temporalUiUrl, namespace: settings.namespace };
  });
  if (!existsSync(join(CONSOLE_DIST, 'index.html'))) {
    app.get('/console/*', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .status(503)
        .type('text/plain')
        .send('The console is not built: run `npm run console:build` (npm install does), then restart the API.\n'),
    );
  } else {
    await app.register(fastifyStatic, {
      root: CONSOLE_DIST,
      prefix: '/console/',
      schemaHide: true,
      index: ['index.html'],
      // (@fastify/static 10 hands over the reply)
      setHeaders: (reply: { header: (name: string, value: string) => unknown }) => {
        reply.header('content-security-policy', CONSOLE_CSP);
        reply.header('x-content-type-options', 'nosniff');
        reply.header('referrer-policy', 'no-referrer');
      },
    });
  }
  app.get('/console', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/'));
}
