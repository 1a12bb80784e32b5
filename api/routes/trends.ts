import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { readTrends } from '../../db/trends';
import { ApiError } from '../../domain/errors';
import { daysInRange, DEFAULT_TREND_DAYS, MAX_EXPORT_DAYS, programParams, trendsQuery } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { route } from '../route';
import { EXPORT_ROLES } from './exports';

const day = z.object({
  date: z.string(),
  deferredRevenueMinor: z.number().int(),
  provisionMinor: z.number().int(),
  outstandingPoints: z.number().int(),
});
const month = z.object({
  month: z.string().describe('YYYY-MM; the range’s first and last months count only the range’s days'),
  issuedPoints: z.number().int().describe('earned net of refunds’ revocations'),
  redeemedPoints: z.number().int().describe('redeemed net of reversals'),
  expiredPoints: z.number().int(),
  adjustedPoints: z.number().int().describe('manual adjustments, signed'),
  burnRate: z
    .string()
    .nullable()
    .describe('redeemed ÷ issued in the month, an exact decimal to 4 places; null when none issued'),
  redemptions: z.number().int().describe('redemptions that applied points (reversed ones included)'),
  declinedRedemptions: z
    .number()
    .int()
    .describe('declined after their hold (billing or tax refused); a request refused before any hold leaves no row'),
  creditMinor: z.number().int().describe('billing credits those redemptions granted'),
  costPerRedemptionMinor: z
    .number()
    .int()
    .nullable()
    .describe('creditMinor ÷ redemptions, rounded half away from zero'),
});
const reconciliation = z.object({
  date: z.string(),
  runId: z.number().int(),
  differenceCount: z.number().int(),
  inProgressCount: z.number().int(),
  recordedAt: z.string(),
});
const trendsAnswer = z.object({
  programId: z.string(),
  currency: z.string(),
  from: z.string(),
  to: z.string(),
  days: z.array(day).describe('each day’s closing balances, from the journal and the ledger'),
  months: z.array(month),
  reconciliations: z.array(reconciliation).describe('the range’s reconciled days, the latest run of each'),
});

const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The program's figures over time for finance's dashboard: the liability by day, points and redemptions by month, reconciliations. */
export function trendRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/trends',
      summary:
        'The program over time: closing liability per day, points and redemptions by month, reconciled days (?from=&to= UTC dates, both included, at most 366 days; by default the 90 days to today)',
      roles: EXPORT_ROLES,
      params: programParams,
      query: trendsQuery,
      responses: { 200: trendsAnswer },
      errors: { 422: ['trend_range_invalid'] },
    },
    async (req) => {
      const { programId } = req.params;
      const program = await ctx.programs.get(programId);
      const to = req.query.to ?? isoDate(Date.now());
      const from = req.query.from ?? isoDate(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_TREND_DAYS - 1) * 86_400_000);
      const days = daysInRange(from, to);
      if (days < 1 || days > MAX_EXPORT_DAYS)
        throw new ApiError(
          422,
          'trend_range_invalid',
          `from must not be after to, and the range at most ${MAX_EXPORT_DAYS} days (both included)`,
          { from, to, maxDays: MAX_EXPORT_DAYS },
        );
      // on the report pool: a year's scan never holds up writes
      const trends = await readTrends(ctx.reportPool, programId, from, to);
      return { programId, currency: program.currency, from, to, ...trends };
    },
  );
}
