import type { FastifyInstance } from 'fastify';
import { liabilityAsOf } from '../../db/liability';
import { liabilityQuery, programParams } from '../../domain/schemas';
import { z } from 'zod';
import type { ApiContext } from '../context';
import { route } from '../route';

const liabilityAnswer = z
  .object({
    programId: z.string(),
    currency: z.string(),
    asOf: z.string(),
    outstandingPoints: z.number(),
    expectedRedemptionPoints: z.number(),
    deferredRevenueMinor: z.number(),
    provisionMinor: z.number(),
    cohorts: z.array(z.object({}).loose()),
  })
  .loose();

export function liabilityRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/liability',
      summary: 'Point-in-time liability (?asOf=)',
      roles: ['finance', 'controller'],
      params: programParams,
      query: liabilityQuery,
      responses: { 200: liabilityAnswer },
    },
    async (req) => {
      const { programId } = req.params;
      const { asOf } = req.query;
      const program = await ctx.programs.get(programId);
      const at = asOf ? new Date(asOf) : new Date();
      // on the report pool (its own connections and statement timeout): a slow one never holds up writes
      const cohorts = await liabilityAsOf(ctx.reportPool, programId, at.toISOString());
      const sum = (f: (c: (typeof cohorts)[number]) => number) => cohorts.reduce((s, c) => s + f(c), 0);
      return {
        programId,
        currency: program.currency,
        asOf: at.toISOString(),
        outstandingPoints: sum((c) => c.outstandingPoints),
        expectedRedemptionPoints: sum((c) => c.expectedRedemptionPoints),
        deferredRevenueMinor: sum((c) => c.deferredRevenueMinor),
        // incremental-cost cohorts: a provision, apart from the contract liability (never revenue)
        provisionMinor: sum((c) => c.provisionMinor),
        cohorts,
      };
    },
  );
}
