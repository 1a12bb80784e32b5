import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { dryRunAccrual, dryRunRedemptionHold } from '../../db/quotes';
import { readRuleChangeImpact } from '../../db/rule-change-impact';
import { ApiError, notFound } from '../../domain/errors';
import { millionthsToDecimal } from '../../domain/money';
import type { ProgramRules } from '../../domain/program';
import { approvalTerms, ruleChangeQuoteSchema } from '../../domain/rule-change';
import { redemptionLimitedBy } from '../../domain/redemption-quote';
import { accrualSchema, LIMITS, programParams, redemptionQuoteSchema } from '../../domain/schemas';
import { z } from 'zod';
import type { ApiContext } from '../context';
import { route } from '../route';
import { accrualItem, notInFuture, pricedAccrual } from './accruals';
import { notInClosedPeriod } from './redemptions';
import { proposedRules, RULE_CHANGE_READERS } from './rule-changes';

const accrualQuote = z
  .object({ quote: z.literal('accrual'), invoiceId: z.string(), memberId: z.string(), points: z.number() })
  .loose();
const redemptionQuote = z
  .object({
    quote: z.literal('redemption'),
    invoiceTotalMinor: z.number(),
    points: z.number(),
    creditMinor: z.number(),
    limitedBy: z.string(),
    memberId: z.string(),
    available: z.number(),
  })
  .loose();

/**
 * Quotes for billing (docs/api.md, "Quotes"): what an accrual or a redemption would do, answered by
 * the real computation run in a transaction that is rolled back (db/quotes.ts). They write nothing,
 * so they take no Idempotency-Key.
 */
export function quoteRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/quotes/accrual',
      summary:
        "Quote an accrual, writing nothing: the points, the allocation and the member's deadline the accrual would set",
      roles: ['billing'],
      params: programParams,
      body: accrualSchema,
      responses: { 200: accrualQuote },
      errors: {
        409: ['invoice_already_accrued', 'period_locked', 'member_not_active', 'estimate_changed'],
        422: [
          'accrual_before_go_live',
          'amount_out_of_range',
          'material_right_judgment_required',
          'occurred_at_in_future',
        ],
      },
    },
    async (req, _reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      notInFuture(body.occurredAt);
      const result = await pricedAccrual(ctx, programId, body, (priced) => {
        const key = `quote:${randomUUID()}`; // no stored key answers it: the accrual itself runs
        return dryRunAccrual(
          ctx.pool,
          accrualItem(programId, body, priced, { idemKey: key, requestHash: key, actor: principal.name }),
        );
      });
      const { accrualId: _unused, ...answer } = result.body;
      return { quote: 'accrual', invoiceId: body.invoiceId, ...answer };
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/quotes/redemption',
      summary:
        'Quote a redemption, writing nothing: the points and credit the invoice could take now, and what limits them',
      roles: ['billing'],
      params: programParams,
      body: redemptionQuoteSchema,
      responses: { 200: redemptionQuote },
      errors: {
        409: ['member_not_active', 'period_locked'],
        422: [
          'occurred_at_in_future',
          'insufficient_points',
          'unknown_member',
          'below_minimum',
          'points_expired',
          'redemption_before_first_earn',
          'amount_out_of_range',
        ],
      },
    },
    async (req) => {
      const { programId } = req.params;
      const body = req.body;
      const occurredAt = new Date(body.occurredAt ?? Date.now()).toISOString();
      notInFuture(occurredAt);
      await ctx.programs.get(programId); // 404 for an unknown program
      await notInClosedPeriod(ctx, programId, occurredAt);
      const run = await dryRunRedemptionHold(ctx.pool, {
        programId,
        invoiceId: `quote:${randomUUID()}`, // an invoice no redemption has: the hold runs
        redemptionId: randomUUID(),
        memberId: body.memberId,
        // no points asked for: as many as one redemption may ask for (the hold then caps them)
        points: body.points ?? LIMITS.maxPointsPerAccrual,
        invoiceTotalMinor: body.invoiceTotalMinor,
        occurredAt,
      });
      const { hold, rules } = run;
      if (!rules || run.invoiceShareCap === null) throw notFound('program', { programId });
      const requested = body.points ?? null;
      const terms = {
        memberId: run.memberId ?? body.memberId,
        ...(run.memberId !== null && run.memberId !== body.memberId ? { requestedMemberId: body.memberId } : {}),
        requestedPoints: requested,
        available: Number(run.available),
        pointValueMinor: Number(rules.pointValueMinor),
        minPoints: Number(rules.minPoints),
        maxInvoiceShare: Number(millionthsToDecimal(BigInt(rules.maxInvoiceShareMillionths))),
        maxPointsForInvoice: Number(run.invoiceShareCap),
        ruleVersion: rules.ruleVersion,
        occurredAt,
      };
      const limitedBy = redemptionLimitedBy({
        requested,
        available: terms.available,
        invoiceShareCap: terms.maxPointsForInvoice,
        maxPerRedemption: LIMITS.maxPointsPerAccrual,
      });
      if (hold.status === 'held')
        return {
          quote: 'redemption',
          invoiceTotalMinor: body.invoiceTotalMinor,
          points: hold.pointsApplied,
          creditMinor: hold.creditMinor,
          limitedBy,
          ...terms,
        };
      throw refusal(hold.reason ?? 'declined', { ...terms, limitedBy });
    },
  );
}

const ruleChangeQuote = z.object({
  quote: z.literal('rule_change'),
  programId: z.string(),
  baseVersion: z.number().int().describe('the version in force, which the change would replace'),
  impact: z
    .object({ adverse: z.array(z.string()), outstandingPoints: z.number().int() })
    .loose()
    .describe('the assessment the proposal would record (GET .../rule-changes/{changeId} `impact`), read now'),
  requiredRoles: z.array(z.string()).describe('the roles that must each approve it'),
  noticePeriod: z
    .string()
    .nullable()
    .describe('the notice an adverse change waits after its approval (ISO 8601 duration); null when not adverse'),
});

/**
 * A rule change's impact before it is proposed (the console shows it before the proposer submits):
 * the same assessment the proposal's workflow records, computed now from the members, writing nothing.
 */
export function ruleChangeQuoteRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/quotes/rule-change',
      summary:
        'Quote a rule change, writing nothing: its impact on the members now, the approvals and the notice it would need',
      roles: RULE_CHANGE_READERS,
      params: programParams,
      body: ruleChangeQuoteSchema,
      responses: { 200: ruleChangeQuote },
      errors: { 409: ['rule_change_base_not_active'], 422: ['material_right_judgment_required'] },
    },
    async (req, _reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const program = await ctx.programs.get(programId);
      const before = program.rules as ProgramRules;
      const after = proposedRules(program, body, principal.name);
      const terms = approvalTerms(before);
      // a read of every member: on the report pool, as the lists and exports (the workflow's own assessment stays on the primary)
      const impact = await readRuleChangeImpact(ctx.reportPool, programId, before, after);
      return {
        quote: 'rule_change' as const,
        programId,
        baseVersion: program.activeVersion,
        impact,
        requiredRoles: terms.requiredRoles,
        noticePeriod: impact.adverse.length ? terms.noticePeriod : null,
      };
    },
  );
}

/** Where the real redemption would be declined: the same reason, as a 4xx (nothing is held). */
function refusal(reason: string, details: Record<string, unknown>): ApiError {
  switch (reason) {
    // the program is there (the path's): the member the body names is not, as the redemption's own
    // decline says it (unknown_member), not a 404 of the path
    case 'unknown_member':
      return new ApiError(422, 'unknown_member', 'no such member in this program: it has no points', details);
    case 'unknown_program':
      return notFound('program', {});
    case 'member_not_active':
      return new ApiError(409, 'member_not_active', 'the member is not active', details);
    case 'occurred_at_in_future':
      return new ApiError(422, 'occurred_at_in_future', 'occurredAt is in the future', details);
    case 'insufficient_points':
      return new ApiError(422, 'insufficient_points', 'the member has too few points for a redemption', details);
    case 'below_minimum':
      return new ApiError(
        422,
        'below_minimum',
        "the points this invoice could take are below the program's minimum redemption",
        details,
      );
    case 'points_expired':
      return new ApiError(
        422,
        'points_expired',
        "occurredAt is past the member's deadline: the points expired",
        details,
      );
    case 'redemption_before_first_earn':
      return new ApiError(422, 'redemption_before_first_earn', "occurredAt is before the member's first earn", details);
    default:
      return new ApiError(422, reason, `a redemption would be declined: ${reason}`, details);
  }
}
