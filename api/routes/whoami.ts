import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from '../context';
import { route } from '../route';

const whoamiAnswer = z.object({
  keyId: z.string(),
  principal: z.string(),
  kind: z.enum(['person', 'service']),
  roles: z.array(z.string()),
  programs: z.array(z.string()).nullable().describe('null: every program'),
});

/**
 * Who the caller's key acts as: its principal (person or service), the roles it may use and the
 * programs it may touch. The CLI checks `--as` against it; a console shows it after sign-in.
 */
export function whoamiRoutes(app: FastifyInstance, _ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/whoami',
      summary: "The caller's key: its principal (person or service), roles and programs",
      roles: 'any',
      responses: { 200: whoamiAnswer },
    },
    async (_req, _reply, p) => {
      return { keyId: p.keyId, principal: p.name, kind: p.kind, roles: p.roles, programs: p.programs };
    },
  );
}
