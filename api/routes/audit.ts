import type { FastifyInstance } from 'fastify';
import { readAudit } from '../../db/audit';
import { auditQuery, programParams } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { parse } from '../validate';

/** The audit trail of a program (finance and admin): every change to points, rules, keys and periods. */
export function auditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/programs/:programId/audit', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['finance']);
    const { programId } = parse(programParams, req.params, 'path');
    const q = parse(auditQuery, req.query, 'query');
    await ctx.programs.get(programId);
    return {
      entries: await readAudit(ctx.pool, { programId, memberId: q.memberId, since: q.since, limit: q.limit ?? 100 }),
    };
  });
}
