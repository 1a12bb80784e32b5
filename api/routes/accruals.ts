import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { callWriteFunction, type AccrualItem, type WriteResult } from '../../db/ledger';
import {
  allocateRelativeSsp,
  allocateRelativeSspMicro,
  pointsEarned,
  provisionIncrementalCost,
} from '../../domain/allocation';
import { ApiError } from '../../domain/errors';
import type { ProgramRow } from '../../db/programs';
import { MATERIAL_RIGHT_JUDGMENT_MESSAGE } from '../../domain/program';
import { decimalToMillionths, MICRO_PER_MINOR, millionthsToDecimal, rateToMillionths } from '../../domain/money';
import { quarterOf } from '../../domain/period';
import { z } from 'zod';
import { accrualSchema, LIMITS, programParams, refundSchema, type AccrualRequest } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { recordedBy } from '../../db/idempotency';
import { route } from '../route';
import { idempotencyKey, requestHash, scopedIdempotencyKey, withClientKey } from '../validate';

/** An accrual's answer (db/functions/ll_accrue.sql): the points earned and the member after them. */
export const accrualAnswer = z
  .object({ accrualId: z.string(), memberId: z.string(), points: z.number() })
  .loose()
  .describe('the accrual: points earned, allocation, the member after it');
const refundAnswer = z.object({}).loose().describe('the refund: points revoked and the member after it');
const WRITE_CONFLICTS = ['idempotency_key_reused', 'idempotency_request_in_progress', 'member_not_active'] as const;

export function sendWriteResult(reply: import('fastify').FastifyReply, r: WriteResult) {
  if (r.replayed) reply.header('Idempotent-Replayed', 'true');
  return reply.status(r.status).send(r.body);
}

/** Accruals, refunds and redemptions may not claim to happen beyond the clock skew (400 validation_failed). */
export function notInFuture(occurredAt: string): void {
  // 422, not 400: the request is valid by its schema (a time is a time); the ledger's clock refuses it
  if (Date.parse(occurredAt) > Date.now() + LIMITS.maxClockSkewMs) {
    throw new ApiError(422, 'occurred_at_in_future', 'occurredAt is in the future', {
      occurredAt,
      maxClockSkewMs: LIMITS.maxClockSkewMs,
    });
  }
}

/** An accrual is never dated before the program's go-live (rules.goLiveAt; absent, no bound). */
export function notBeforeGoLive(program: ProgramRow, occurredAt: string): void {
  const goLiveAt = program.rules.goLiveAt;
  if (goLiveAt !== undefined && Date.parse(occurredAt) < Date.parse(goLiveAt)) {
    throw new ApiError(422, 'accrual_before_go_live', "occurredAt is before the program's go-live", {
      occurredAt,
      goLiveAt,
      ruleVersion: program.activeVersion,
    });
  }
}

/**
 * An accrual's points and allocation. The expected redemption rate is the approved estimate of the
 * latest booked close (program.pointsEstimate), or the rule's own before any close set one (the
 * prior); the item records which (rateClose: that close's period, or null).
 */
export function priceAccrual(program: ProgramRow, amountMinor: bigint) {
  const rules = program.rules;
  // A program put on the cost method before the judgment was required has none on record: its new
  // accruals would book a provision for points nobody has judged to be no material right (ASC
  // 606-10-25-16B). Refused, nothing written, until a rule change records the judgment; what it
  // already booked stays (docs/accounting.md, the cost method).
  if (rules.accounting.method === 'incremental_cost' && !rules.accounting.notMaterialRight?.justification) {
    throw new ApiError(
      422,
      'material_right_judgment_required',
      `${MATERIAL_RIGHT_JUDGMENT_MESSAGE}: the program's rules in force (version ${program.activeVersion}) have none; ` +
        'a rule change must record it before accruals are accepted again',
      { field: 'accounting.notMaterialRight', ruleVersion: program.activeVersion },
    );
  }
  const points = pointsEarned(amountMinor, rules.earn);
  const estimate = program.pointsEstimate;
  const expected = estimate ? decimalToMillionths(estimate.rate) : rateToMillionths(rules.expectedRedemptionRate);
  const relativeSsp = rules.accounting.method === 'relative_ssp';
  const ssp = {
    priceMinor: amountMinor,
    points,
    pointValueMinor: BigInt(rules.pointValueMinor),
    expectedRedemption: expected,
  };
  const allocated = relativeSsp
    ? allocateRelativeSsp(ssp)
    : provisionIncrementalCost({
        points,
        costPerPointMinor: BigInt(rules.accounting.costPerPointMinor ?? 0),
        expectedRedemption: expected,
      });
  const allocatedMicro = relativeSsp ? allocateRelativeSspMicro(ssp) : allocated * MICRO_PER_MINOR;
  const limit = BigInt(LIMITS.maxPointsPerAccrual);
  if (points > limit || allocated > limit) {
    throw new ApiError(422, 'amount_out_of_range', 'this purchase would earn more points than one accrual may carry', {
      points: points.toString(),
      maxPoints: LIMITS.maxPointsPerAccrual,
    });
  }
  return {
    points,
    item: {
      points: points.toString(),
      allocatedMinor: allocated.toString(),
      allocatedMicro: allocatedMicro.toString(),
      expiry: rules.expiry,
      expectedRedemptionRate: Number(millionthsToDecimal(expected)),
      rateClose: estimate?.close ?? null,
      ruleVersion: program.activeVersion,
      debitAccount: relativeSsp ? 'revenue' : 'loyalty_expense',
      creditAccount: relativeSsp ? 'loyalty_contract_liability' : 'loyalty_provision',
    },
  };
}

/**
 * Prices the accrual with the estimate in force and runs `run` with it; if a close's approval was
 * booked since the cached read, the database refuses the item (estimate_changed, nothing written)
 * and it is priced again. The accrual and its quote (api/routes/quotes.ts) both run through here.
 */
export async function pricedAccrual<T>(
  ctx: ApiContext,
  programId: string,
  body: AccrualRequest,
  run: (priced: ReturnType<typeof priceAccrual>) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const program = await ctx.programs.get(programId);
    notBeforeGoLive(program, body.occurredAt);
    try {
      return await run(priceAccrual(program, BigInt(body.amountMinor)));
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'estimate_changed') || attempt >= 3) throw e;
      ctx.programs.forget(programId);
    }
  }
}

/** The item ll_accrue takes (db/functions/ll_accrue.sql) for this request, priced. */
export function accrualItem(
  programId: string,
  body: AccrualRequest,
  priced: ReturnType<typeof priceAccrual>,
  o: { idemKey: string; requestHash: string; actor: string },
): AccrualItem {
  return {
    programId,
    idemKey: o.idemKey,
    requestHash: o.requestHash,
    accrualId: randomUUID(),
    memberId: body.memberId,
    invoiceId: body.invoiceId,
    amountMinor: BigInt(body.amountMinor).toString(),
    occurredAt: new Date(body.occurredAt).toISOString(),
    cohort: quarterOf(new Date(body.occurredAt)),
    storeId: body.storeId,
    jurisdiction: body.jurisdiction,
    ...priced.item,
    actor: o.actor,
  };
}

/**
 * One accrual with its client's Idempotency-Key, as POST .../accruals and each item of
 * POST .../accruals/batch take it: the same key scope and request hash, so a key sent to either
 * replays there and on the other. Answers the write's result; a refusal before the write throws.
 */
export async function accrueOne(
  ctx: ApiContext,
  programId: string,
  body: AccrualRequest,
  key: string,
  principal: string,
): Promise<WriteResult> {
  notInFuture(body.occurredAt);
  let points = 0n;
  const result = await pricedAccrual(ctx, programId, body, (priced) => {
    points = priced.points;
    return withClientKey(key, () =>
      ctx.accruals.submit(
        accrualItem(programId, body, priced, {
          // scoped by principal and route (docs/access.md, "Idempotency")
          idemKey: scopedIdempotencyKey(principal, 'accruals', key),
          requestHash: requestHash('accruals', body),
          actor: principal,
        }),
      ),
    );
  });
  // The invoice's natural key answered (200, another Idempotency-Key): the first answer is replayed
  // to the principal that sent it only; to another it is a business duplicate.
  if (
    result.replayed &&
    result.status === 200 &&
    (await recordedBy(ctx.pool, programId, { accrualOf: body.invoiceId })) !== principal
  )
    throw new ApiError(409, 'invoice_already_accrued', 'this invoice already earned points', {
      invoiceId: body.invoiceId,
    });
  ctx.metrics.accruals.inc({
    outcome: result.status >= 400 ? 'refused' : result.replayed ? 'replayed' : 'accepted',
  });
  if (result.status < 400 && !result.replayed) ctx.metrics.accruedPoints.inc(Number(points));
  return result;
}

export function accrualRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/accruals',
      summary: 'Report a purchase: earn points, allocate, move the expiry deadline',
      roles: ['billing'],
      params: programParams,
      body: accrualSchema,
      idempotency: 'required',
      responses: { 201: accrualAnswer, 200: accrualAnswer },
      errors: {
        409: [...WRITE_CONFLICTS, 'invoice_already_accrued', 'period_locked', 'estimate_changed'],
        422: [
          'accrual_before_go_live',
          'amount_out_of_range',
          'material_right_judgment_required',
          'occurred_at_in_future',
        ],
      },
    },
    async (req, reply, principal) => {
      const result = await accrueOne(ctx, req.params.programId, req.body, idempotencyKey(req), principal.name);
      return sendWriteResult(reply, result);
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/refunds',
      summary: 'Report a refund: revoke earned points pro rata, never below zero',
      roles: ['billing'],
      params: programParams,
      body: refundSchema,
      idempotency: 'required',
      responses: { 201: refundAnswer, 200: refundAnswer },
      errors: {
        409: [...WRITE_CONFLICTS, 'refund_already_recorded', 'period_locked'],
        422: ['refund_exceeds_invoice', 'refund_before_sale', 'amount_out_of_range', 'occurred_at_in_future'],
      },
    },
    async (req, reply, principal) => {
      const { programId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      notInFuture(body.occurredAt);
      await ctx.programs.get(programId);
      const result = await withClientKey(key, () =>
        callWriteFunction(ctx.pool, 'll_refund', {
          ...body,
          occurredAt: new Date(body.occurredAt).toISOString(),
          programId,
          idemKey: scopedIdempotencyKey(principal.name, 'refunds', key),
          requestHash: requestHash('refunds', body),
          actor: principal.name,
        }),
      );
      // The refundId's natural key answered (200): replayed to the principal that recorded it only.
      if (
        result.replayed &&
        result.status === 200 &&
        (await recordedBy(ctx.pool, programId, { refund: body.refundId })) !== principal.name
      )
        throw new ApiError(409, 'refund_already_recorded', 'this refundId was already recorded', {
          refundId: body.refundId,
        });
      return sendWriteResult(reply, result);
    },
  );
}
