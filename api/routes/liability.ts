import type { FastifyInstance } from 'fastify';
import { liabilityAsOf } from '../../db/liability';
import { liabilityQuery, programParams } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { parse } from '../validate';

export function liabilityRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/programs/:programId/liability', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), ['finance', 'controller']);
    const { programId } = parse(programParams, req.params, 'path');
    const { asOf } = parse(liabilityQuery, req.query, 'query');
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
  });
}
