import { z } from 'zod';
import { isKnownCurrency, KNOWN_CURRENCIES } from './currency';
import { cursorPattern, MAX_PAGE, type ListName } from './cursor';
import { isValidWindow } from './duration';
import { isExactRate } from './money';
import {
  CALENDAR_DATE_PATTERN,
  DURATION_PATTERN,
  INSTANT_PATTERN,
  NO_NUL_PATTERN,
  NOT_BLANK_PATTERN,
  PERIOD_PATTERN,
} from './patterns';
import { GOODWILL_TREATMENTS } from './program';
import { TAX_SCHEMES, TAX_TREATMENTS } from './tax';

/** Limits on every input (no unbounded strings or numbers reach the database). */
export const LIMITS = {
  idLength: 128,
  nameLength: 200,
  maxAmountMinor: 1_000_000_000_000_000, // 10^15 minor units
  /** points per `perAmountMinor` of spend: with perAmountMinor >= 1, at most 1,000 points per minor unit */
  maxEarnPoints: 1_000,
  maxPointValueMinor: 1_000_000_000,
  /** accruals may not claim to happen in the future beyond clock skew */
  maxClockSkewMs: 5 * 60_000,
  maxLedgerPage: 1000,
  /** accruals in one POST .../accruals/batch (API.md, "Integration surface") */
  maxBatchAccruals: 1000,
  /** a batch's body: 1,000 items of at most ~600 bytes each, with room */
  maxBatchBodyBytes: 1024 * 1024,
  /** points one accrual may earn, and an allocation's size: far inside PostgreSQL's bigint */
  maxPointsPerAccrual: 1_000_000_000_000,
  /** business times before this are a typo, not history */
  earliestYear: 1970,
  /** a period's (calendar quarter's) year: four digits in this range (closes, reports) */
  periodYears: { min: 2000, max: 2999 },
} as const;

/** An id of the API's (member, invoice, principal, ...): printable ASCII without spaces, 1 to 128 characters. */
export const ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
const id = z.string().regex(ID_PATTERN, 'printable ASCII without spaces, 1 to 128 characters');
/** A program's id (also what an API key's program list holds: db/keys.ts). */
export const PROGRAM_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const programId = z.string().regex(PROGRAM_ID_PATTERN, 'lower-case letters, digits, - and _, at most 63');
// Each rule a schema can state is in the JSON Schema too (/openapi.json): a pattern (domain/patterns.ts)
// or, for what zod checks in code, the same rule in `.meta()`; so the spec refuses what the server does.
const DURATION_MESSAGE = 'an ISO 8601 duration between 1 second and 100 years, e.g. P365D or PT10S';
const duration = z
  .string()
  .max(40)
  .regex(DURATION_PATTERN, DURATION_MESSAGE)
  // (no `format: duration`: RFC 3339's grammar of durations forbids weeks beside other units, ours does not)
  .refine(isValidWindow, DURATION_MESSAGE);
const positiveRate = z
  .number()
  .gt(0)
  .max(1)
  .refine(isExactRate, 'a decimal in (0, 1] with at most 6 decimal places')
  .meta({ multipleOf: 0.000001 });
const jurisdiction = z.string().regex(/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/, 'ISO 3166 code, e.g. US-CA or DE');
const instant = z
  .string()
  .regex(INSTANT_PATTERN, `an RFC 3339 time with an offset (Z or ±hh:mm), in ${LIMITS.earliestYear} or later`)
  .meta({ format: 'date-time' });
const amountMinor = z.number().int().positive().max(LIMITS.maxAmountMinor);
/** Free text: PostgreSQL's text cannot hold a NUL, so refuse it here rather than answer 500 from the insert. */
const freeText = (max: number) => z.string().max(max).regex(NO_NUL_PATTERN, 'no NUL characters');
/** A justification: something besides whitespace (kept trimmed), no NUL. */
const justification = z.string().max(2000).regex(NOT_BLANK_PATTERN, 'not blank, no NUL characters').trim();

/** The JSON Schema of the rule "a rolling policy needs a window" (the refinements below). */
const ROLLING_NEEDS_WINDOW = {
  if: { properties: { policy: { const: 'rolling' } } },
  then: { properties: { window: {} }, required: ['window'] },
};

const expiryRule = z
  .object({ policy: z.enum(['rolling', 'none']), window: duration.optional() })
  .strict()
  .refine((e) => e.policy === 'none' || e.window !== undefined, {
    message: 'a rolling policy needs a window',
    path: ['window'],
  })
  .meta(ROLLING_NEEDS_WINDOW);

export const createProgramSchema = z
  .object({
    programId,
    name: z.string().min(1).max(LIMITS.nameLength).regex(NO_NUL_PATTERN, 'no NUL characters'),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .refine(isKnownCurrency, 'an ISO 4217 currency code')
      .meta({ enum: KNOWN_CURRENCIES }),
    pointValueMinor: z.number().int().positive().max(LIMITS.maxPointValueMinor),
    earn: z
      .object({
        points: z.number().int().positive().max(LIMITS.maxEarnPoints),
        perAmountMinor: z.number().int().positive().max(LIMITS.maxAmountMinor),
      })
      // at most 1,000 points per minor unit of spend: bounded by `points` alone (perAmountMinor is at
      // least 1), not a rule between the two fields (one the spec could not state)
      .strict(),
    expectedRedemptionRate: positiveRate,
    expiry: z
      .object({
        policy: z.enum(['rolling', 'none']),
        window: duration.optional(),
        jurisdictions: z.record(jurisdiction, expiryRule).optional(),
      })
      .strict()
      .refine((e) => e.policy === 'none' || e.window !== undefined, {
        message: 'a rolling policy needs a window',
        path: ['window'],
      })
      .meta(ROLLING_NEEDS_WINDOW),
    /** who approves a rule change, and how long an adverse one waits after approval */
    ruleChanges: z
      .object({
        requiredRoles: z
          .array(z.enum(['finance', 'legal', 'controller', 'program_owner']))
          .min(1)
          .max(4)
          .optional(),
        noticePeriod: duration.optional(),
      })
      .strict()
      .optional(),
    /**
     * a manual adjustment or a merge waits for a finance approval when its points (either way) plus
     * those moved without one within approvalWindow (rolling, per member and per requester) exceed
     * approvalThresholdPoints; points added are booked by goodwillTreatment (docs/adjustments.md;
     * 1000, P30D and 'revenue_reduction' when absent)
     */
    adjustments: z
      .object({
        approvalThresholdPoints: z.number().int().min(0).max(LIMITS.maxPointsPerAccrual).optional(),
        approvalWindow: duration.optional(),
        goodwillTreatment: z.enum(GOODWILL_TREATMENTS).optional(),
      })
      .strict()
      .optional(),
    /**
     * how the part of an invoice paid with points is taxed (docs/accounting.md): the program's scheme
     * (own_store when absent) and, where finance sets one, the treatment per jurisdiction; elsewhere
     * the tax service answers by the jurisdiction's law
     */
    tax: z
      .object({
        scheme: z.enum(TAX_SCHEMES).optional(),
        treatments: z
          .record(jurisdiction, z.enum(TAX_TREATMENTS))
          .refine((t) => Object.keys(t).length <= 100, 'at most 100 jurisdictions')
          .meta({ maxProperties: 100 })
          .optional(),
      })
      .strict()
      .optional(),
    accounting: z
      .object({
        method: z.enum(['relative_ssp', 'incremental_cost']),
        costPerPointMinor: z.number().int().positive().max(LIMITS.maxPointValueMinor).optional(),
        /**
         * The judgment that the points give no material right (ASC 606-10-25-16B), which alone
         * allows the cost method: why, from the body; who and when are the principal and the request
         * time, recorded by the API (a program or rule change on incremental_cost without it: 422
         * material_right_judgment_required).
         */
        notMaterialRight: z.object({ justification }).strict().optional(),
      })
      .strict()
      .refine((a) => a.method === 'relative_ssp' || a.costPerPointMinor !== undefined, {
        message: 'incremental_cost needs costPerPointMinor',
        path: ['costPerPointMinor'],
      })
      .refine((a) => a.method === 'incremental_cost' || a.notMaterialRight === undefined, {
        message: 'notMaterialRight is the judgment of the incremental_cost method only',
        path: ['notMaterialRight'],
      })
      .meta({
        allOf: [
          {
            if: { properties: { method: { const: 'incremental_cost' } } },
            then: { properties: { costPerPointMinor: {} }, required: ['costPerPointMinor'] },
          },
          {
            if: { properties: { method: { const: 'relative_ssp' } } },
            then: { properties: { notMaterialRight: false } },
          },
        ],
      }),
    redemption: z
      .object({
        minPoints: z.number().int().positive().max(LIMITS.maxAmountMinor),
        maxInvoiceShare: positiveRate,
        cohortOrder: z.enum(['oldest_first', 'pro_rata']),
      })
      .strict(),
    chargebackWindow: duration,
    /**
     * the program's go-live (RFC 3339, optional; absent: no bound): an accrual dated before it is
     * refused (422 accrual_before_go_live); a migration loading history sets it to the first sale's
     * time. A rule like the others: a rule change moves it.
     */
    goLiveAt: instant.optional(),
    /** webhooks' points.expiring_soon: sent this many days before a member's deadline (absent: never; docs/api.md) */
    notifications: z
      .object({ expiringSoonDays: z.number().int().min(1).max(365) })
      .strict()
      .optional(),
  })
  .strict();
export type CreateProgram = z.infer<typeof createProgramSchema>;

export const idempotencyKeyHeader = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'Idempotency-Key: 1 to 255 printable characters');

export const accrualSchema = z
  .object({
    memberId: id,
    invoiceId: id,
    /** the purchase's price excluding tax: sales tax or VAT is not consideration allocated to points */
    amountMinor: amountMinor.describe("the purchase's price in minor units, excluding sales tax or VAT"),
    occurredAt: instant,
    storeId: id.optional(),
    jurisdiction: jurisdiction.optional(),
  })
  .strict();
export type AccrualRequest = z.infer<typeof accrualSchema>;

/**
 * A batch of accruals (POST .../accruals/batch): each item is validated on its own (an invalid one is
 * that item's 400, never the batch's), so the body's schema takes any items; their shape is
 * `accrualBatchItemSchema`.
 */
export const accrualBatchSchema = z
  .object({
    accruals: z
      .array(z.unknown())
      .min(1)
      .max(LIMITS.maxBatchAccruals)
      .describe(
        'the accruals, each `{ idempotencyKey, memberId, invoiceId, amountMinor, occurredAt, storeId?, jurisdiction? }` ' +
          '(an accrual’s body and its Idempotency-Key); each is validated, answered and replayed on its own',
      ),
  })
  .strict();
/** One item of a batch: an accrual's body with its own idempotency key (the header's pattern). */
export const accrualBatchItemSchema = accrualSchema.extend({ idempotencyKey: idempotencyKeyHeader }).strict();

/** Refund ids the ledger keeps for itself: a lost chargeback's claw-back is the refund `chargeback:<chargebackId>`. */
export const RESERVED_REFUND_ID_PREFIX = 'chargeback:';

export const refundSchema = z
  .object({
    memberId: id,
    invoiceId: id,
    // a client's refund must never take (or be taken for) a claw-back's row
    refundId: id
      .refine((v) => !v.startsWith(RESERVED_REFUND_ID_PREFIX), {
        message: `refundId may not start with "${RESERVED_REFUND_ID_PREFIX}" (reserved for chargeback claw-backs)`,
      })
      .meta({ not: { pattern: `^${RESERVED_REFUND_ID_PREFIX}` } }),
    amountMinor: amountMinor.describe('the refunded part of the price in minor units, excluding sales tax or VAT'),
    occurredAt: instant,
  })
  .strict();
export type RefundRequest = z.infer<typeof refundSchema>;

export const mergeSchema = z.object({ intoMemberId: id }).strict();

export const ADJUSTMENT_REASONS = ['goodwill', 'service_recovery', 'correction', 'migration', 'fraud'] as const;
export const adjustmentSchema = z
  .object({
    memberId: id,
    points: z
      .number()
      .int()
      .min(-LIMITS.maxPointsPerAccrual)
      .max(LIMITS.maxPointsPerAccrual)
      .refine((p) => p !== 0, 'an adjustment adds or takes points')
      .meta({ not: { const: 0 } }),
    reasonCode: z.enum(ADJUSTMENT_REASONS),
    comment: freeText(2000).optional(),
  })
  .strict();
export const ruleChangeParams = z.object({ programId, changeId: id }).strict();
export const ruleChangeDecisionSchema = z
  .object({ decision: z.enum(['approve', 'reject']), comment: freeText(2000).optional() })
  .strict();

export const adjustmentParams = z.object({ programId, adjustmentId: z.uuid() }).strict();
export const adjustmentDecisionSchema = z
  .object({ decision: z.enum(['approve', 'reject']), comment: freeText(2000).optional() })
  .strict();

export const redemptionSchema = z
  .object({
    invoiceId: id,
    memberId: id,
    points: z.number().int().positive().max(LIMITS.maxPointsPerAccrual),
    invoiceTotalMinor: amountMinor,
    occurredAt: instant,
    jurisdiction: jurisdiction.optional(),
  })
  .strict();

/**
 * A redemption quote (POST .../quotes/redemption): what the invoice could take now. No invoiceId (it
 * holds nothing); no points: as many as the rules allow; no occurredAt: now.
 */
export const redemptionQuoteSchema = redemptionSchema
  .pick({ memberId: true, invoiceTotalMinor: true })
  .extend({ points: redemptionSchema.shape.points.optional(), occurredAt: instant.optional() })
  .strict();

export const chargebackSchema = z
  .object({ invoiceId: id, chargebackId: id, status: z.enum(['opened', 'won', 'lost']) })
  .strict();

export const invoiceParams = z.object({ programId, invoiceId: id }).strict();

/** Billing lowered (or otherwise changed) an invoice that has a redemption. */
export const invoiceAdjustmentSchema = z
  .object({
    adjustmentId: id,
    invoiceTotalMinor: z.number().int().min(0).max(LIMITS.maxAmountMinor),
    occurredAt: instant,
  })
  .strict();

const calendarDate = z
  .string()
  .regex(CALENDAR_DATE_PATTERN, `a real calendar date, YYYY-MM-DD, in ${LIMITS.earliestYear} or later`)
  .meta({ format: 'date' });
const period = z
  .string()
  .regex(
    PERIOD_PATTERN,
    `a calendar quarter of a year from ${LIMITS.periodYears.min} to ${LIMITS.periodYears.max}, e.g. 2026-Q3`,
  );
export const startCloseSchema = z
  .object({
    period,
    redemptionRateOverride: z
      .object({
        rate: positiveRate,
        justification,
      })
      .strict()
      .optional(),
  })
  .strict();
export const closeParams = z.object({ programId, period }).strict();
export const reportQuery = z.object({ format: z.enum(['json', 'csv', 'html']).optional() }).strict();

export const reconciliationParams = z.object({ programId, date: calendarDate }).strict();
export const runReconciliationSchema = z.object({ date: calendarDate }).strict();

export const programParams = z.object({ programId }).strict();
export const memberParams = z.object({ programId, memberId: id }).strict();
export const ledgerQuery = z
  .object({
    after: z
      .string()
      .regex(/^\d{1,18}$/)
      .optional(),
    limit: z.coerce.number().int().min(1).max(LIMITS.maxLedgerPage).optional(),
  })
  .strict();
export const liabilityQuery = z.object({ asOf: instant.optional() }).strict();
/** The trends' business dates (UTC, both included): by default the 90 days to today; at most MAX_EXPORT_DAYS (the route's 422 trend_range_invalid). */
export const trendsQuery = z.object({ from: calendarDate.optional(), to: calendarDate.optional() }).strict();
/** Days the trends cover when the query names no `from`. */
export const DEFAULT_TREND_DAYS = 90;
export const auditQuery = z
  .object({
    memberId: id.optional(),
    since: instant.optional(),
    limit: z.coerce.number().int().min(1).max(LIMITS.maxLedgerPage).optional(),
  })
  .strict();

/** Every role a key may hold (db/keys.ts ROLES: the same list). */
export const ROLE_NAMES = ['billing', 'finance', 'controller', 'legal', 'program_owner', 'support', 'admin'] as const;

// ---- lists (docs/api.md, "Lists and pagination"): filters, a page's size and its cursor ----------
/** A page's size, and the list's nextCursor as given (domain/cursor.ts: its pattern is exactly the cursors it takes). */
const pageQuery = (list: ListName) => ({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
  cursor: z.string().regex(cursorPattern(list), `a nextCursor of this list (${list}), as it was given`).optional(),
});
/** The programs a key may reach (GET /v1/programs), by id. */
export const programsListQuery = z.object({ ...pageQuery('programs') }).strict();
export const membersListQuery = z
  .object({
    status: z.enum(['active', 'merged', 'archived']).optional(),
    /** a deadline from now to now + this duration (e.g. P30D: expiring in the next 30 days) */
    expiringWithin: duration.optional(),
    /** a deadline from now to this instant */
    expiresBefore: instant.optional(),
    ...pageQuery('members'),
  })
  // both: the deadlines before the earlier of the two (a rule between two fields is not one a
  // query's schema in /openapi.json can state, so it is not one the API refuses)
  .strict();
export const redemptionsListQuery = z
  .object({
    /** business dates (the redemption's occurredAt, UTC), both inclusive */
    from: calendarDate.optional(),
    to: calendarDate.optional(),
    status: z.enum(['held', 'applied', 'declined', 'reversed']).optional(),
    ...pageQuery('redemptions'),
  })
  // from after to: an empty range, an empty page (not a refusal the query's schema cannot state)
  .strict();
export const adjustmentsListQuery = z
  .object({
    status: z.enum(['pending_approval', 'applied', 'rejected', 'expired']).optional(),
    kind: z.enum(['adjustment', 'merge']).optional(),
    ...pageQuery('adjustments'),
  })
  .strict();
export const ruleChangesListQuery = z
  .object({
    status: z
      .enum([
        'assessing',
        'awaiting_approvals',
        'scheduled',
        'active',
        'rejected',
        'expired',
        'withdrawn',
        'superseded',
      ])
      .optional(),
    ...pageQuery('ruleChanges'),
  })
  .strict();
export const closesListQuery = z
  .object({
    status: z.enum(['frozen', 'proposed', 'escalated', 'cancelled', 'locked']).optional(),
    ...pageQuery('closes'),
  })
  .strict();
/** The approval inbox: awaiting one role the caller holds (else every one they hold), in one program (else every one the key reaches). */
export const approvalsQuery = z
  .object({ role: z.enum(ROLE_NAMES).optional(), programId: programId.optional(), ...pageQuery('approvals') })
  .strict();

// ---- exports (docs/api.md, "Export"): a program's ledger entries or journal lines of a date range ----
/** The longest range one export covers, in days (both ends counted): a year, leap day included. */
export const MAX_EXPORT_DAYS = 366;
/** Days from `from` to `to`, both counted (0 or less: from is after to). */
export const daysInRange = (from: string, to: string) =>
  (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
/**
 * business dates (occurredAt, UTC days), both inclusive, as the redemptions list reads them; both
 * required. A rule between the two (at most MAX_EXPORT_DAYS) is the route's, 422
 * export_range_too_long: a query's schema in /openapi.json cannot state it.
 */
export const exportQuery = z.object({ from: calendarDate, to: calendarDate }).strict();

/** A proposed rule version: the whole rules (as when the program was created) and when they take effect. */
export const ruleChangeSchema = z
  .object({
    changeId: id,
    // the same bounds as every other business time: a rule version effective in year 1 is a typo
    effectiveAt: instant,
    comment: freeText(2000).optional(),
    rules: createProgramSchema.omit({ programId: true, name: true, currency: true }),
  })
  .strict();
