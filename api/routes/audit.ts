import type { FastifyInstance } from 'fastify';
import { readAudit } from '../../db/audit';
import { auditQuery, programParams } from '../../domain/schemas';
import { z } from 'zod';
import type { ApiContext } from '../context';
import { route } from '../route';

const auditAnswer = z.object({ entries: z.array(z.object({}).loose()) }).loose();

/** The audit trail of a program (finance and admin): every change to points, rules, keys and periods. */
export function auditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/audit',
      summary: 'The audit trail: changes to points, rules, keys and periods (?memberId=&since=&limit=)',
      roles: ['finance'],
      params: programParams,
      query: auditQuery,
      responses: { 200: auditAnswer.describe('the entries, oldest first') },
    },
    async (req) => {
      const { programId } = req.params;
      const q = req.query;
      await ctx.programs.get(programId);
      return {
        entries: await readAudit(ctx.pool, { programId, memberId: q.memberId, since: q.since, limit: q.limit ?? 100 }),
      };
    },
  );
}
