import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context';

/**
 * Who the caller's key acts as: its principal (person or service), the roles it may use and the
 * programs it may touch. The CLI checks `--as` against it; a console shows it after sign-in.
 */
export function whoamiRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/whoami', async (req) => {
    const p = await ctx.auth.principalOf(req);
    return { keyId: p.keyId, principal: p.name, kind: p.kind, roles: p.roles, programs: p.programs };
  });
}
