import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import type { RouteDeclaration as RouteDoc } from '../../api/route';
import { newSecret, putKey, revokeKey, ROLES } from '../../db/keys';
import { encodeCursor } from '../../domain/cursor';
import {
  adjustmentsListQuery,
  approvalsQuery,
  exportQuery,
  auditQuery,
  closesListQuery,
  ledgerQuery,
  liabilityQuery,
  membersListQuery,
  PROGRAM_ID_PATTERN,
  redemptionsListQuery,
  reportQuery,
  ruleChangesListQuery,
  programsListQuery,
  trendsQuery,
  LIMITS,
  accrualBatchItemSchema,
} from '../../domain/schemas';
import { freshDatabase, httpClient, programBody, startApi, type TestApi } from '../helpers/stack';
import { webhookDeliveriesQuery } from '../../domain/webhooks';

// Hostile and malformed requests against every endpoint: each one a valid request with one or more
// things broken. Every answer must be a 4xx in the API's error shape with a known code, nothing may
// be written, and the server must keep serving. Same seed, same cases: a failure prints its seed.
const SEED = Number(process.env.LOYALTY_FUZZ_SEED ?? 20261122);
const RUNS = Number(process.env.LOYALTY_FUZZ_RUNS ?? 10_000);
const CONCURRENCY = 16;
/** startApi's body limit; the codec routes take a page of history at a time (api/routes/codec.ts) */
const BODY_LIMIT = 64 * 1024;
const BODY_LIMITS: Record<string, number> = {
  '/codec/decode': 4 * 1024 * 1024,
  '/codec/encode': 4 * 1024 * 1024,
  '/v1/programs/{programId}/accruals/batch': LIMITS.maxBatchBodyBytes,
};

/**
 * API.md's stable codes, the ones README adds, those the adjustment, rule-change and codec routes
 * raise, and every other 4xx code the API (api/, db/functions' ll_raise, the workflows' refusals
 * the API passes on) answers.
 */
const KNOWN_CODES = new Set([
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'idempotency_key_reused',
  'insufficient_points',
  'period_locked',
  'period_out_of_order',
  'segregation_of_duties',
  'loyalty_unavailable',
  'invoice_already_accrued',
  'refund_already_recorded',
  'refund_exceeds_invoice',
  'amount_out_of_range',
  'member_not_active',
  'member_has_holds',
  'program_exists',
  'adjustment_exists',
  'chargeback_window_closed',
  'period_not_ended',
  'close_not_awaiting_approval',
  'override_out_of_bounds',
  'payload_too_large',
  'unsupported_media_type',
  'adjustment_decided',
  'rule_change_exists',
  'rule_change_not_withdrawable',
  'rule_change_not_awaiting_approval',
  'codec_failed',
  'codec_not_configured',
  'accrual_before_go_live',
  'chargeback_id_reused',
  'estimate_changed',
  'idempotency_request_in_progress',
  'material_right_judgment_required',
  'redemption_before_first_earn',
  'redemption_exists',
  'redemption_in_progress',
  'redemption_not_applied',
  'redemption_not_held',
  'refund_before_sale',
  'rule_change_base_not_active',
  'rule_change_ended',
  'rule_change_final',
  'rule_change_rejected',
  'tax_exceeds_credit',
  'too_many_failed_attempts',
  'method_not_allowed',
  'below_minimum',
  'points_expired',
  'trend_range_invalid',
  'unknown_member',
  'close_starting',
]);

/** What was broken, and the answers that breakage alone allows (several breaks: any of theirs). */
type Kind = 'media' | 'size' | 'json' | 'method' | 'auth' | 'role' | 'path' | 'unknown' | 'input';
const EXPECT: Record<Kind, string[]> = {
  media: ['415 unsupported_media_type'],
  size: ['413 payload_too_large'],
  json: ['400 validation_failed'],
  // a known path with another method (api/methods.ts)
  method: ['405 method_not_allowed'],
  auth: ['401 unauthorized'],
  role: ['403 forbidden'],
  // a hostile param may still be well-formed ('../x' is a printable id): then nothing is found; a
  // segment more may make another route's path (POST /v1/programs/%00 is GET /v1/programs/{programId}'s)
  path: ['400 validation_failed', '404 not_found', '405 method_not_allowed'],
  unknown: ['404 not_found'],
  input: ['400 validation_failed'],
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Req {
  method: string;
  path: string;
  query: Array<[string, string]>;
  auth: string | null;
  idem: string | null;
  /** null: no Content-Type header at all */
  contentType: string | null;
  body: Json | undefined;
  /** sent as is instead of the JSON of body */
  raw?: string;
}
/** phase orders the breaks: the request's parts first, then the raw body, the media type, the method. */
interface Break {
  kind: Kind;
  label: string;
  phase: number;
  apply: (r: Req) => void;
}
const brk = (kind: Kind, label: string, apply: (r: Req) => void, phase = 0): Break => ({ kind, label, phase, apply });

// ---- the valid requests the breaks start from ----------------------------------------------------

const PROGRAM = 'fuzz';
const programRules = programBody('fuzz-new', {
  expiry: { policy: 'rolling', window: 'P365D', jurisdictions: { DE: { policy: 'none' } } },
  ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'P30D' },
  adjustments: { approvalThresholdPoints: 1000 },
}) as { [k: string]: Json };
const { programId: _p, name: _n, currency: _c, ...ruleVersion } = programRules;

/** A valid body per endpoint (optional fields included, so that they are broken too). */
const BODIES: Record<string, Json> = {
  '/v1/programs': programRules,
  '/v1/programs/{programId}/accruals': {
    memberId: 'm-1',
    invoiceId: 'inv-fuzz',
    amountMinor: 4999,
    occurredAt: '2026-10-01T10:00:00Z',
    storeId: 's-1',
    jurisdiction: 'US-CA',
  },
  // the items are validated one by one (each its own result); the body's schema is the list of objects
  '/v1/programs/{programId}/accruals/batch': {
    accruals: [
      {
        idempotencyKey: 'k-batch-1',
        memberId: 'm-1',
        invoiceId: 'inv-batch',
        amountMinor: 4999,
        occurredAt: '2026-10-01T10:00:00Z',
      },
    ],
  },
  '/v1/programs/{programId}/quotes/rule-change': { rules: ruleVersion, baseVersion: 1 },
  '/v1/programs/{programId}/refunds': {
    memberId: 'm-1',
    invoiceId: 'inv-1',
    refundId: 'r-1',
    amountMinor: 100,
    occurredAt: '2026-10-02T10:00:00Z',
  },
  '/v1/programs/{programId}/members/{memberId}/merge': { intoMemberId: 'm-1' },
  '/v1/programs/{programId}/redemptions': {
    invoiceId: 'inv-9',
    memberId: 'm-1',
    points: 100,
    invoiceTotalMinor: 8000,
    occurredAt: '2026-10-03T10:00:00Z',
    jurisdiction: 'US-CA',
  },
  '/v1/programs/{programId}/quotes/accrual': {
    memberId: 'm-1',
    invoiceId: 'inv-quote',
    amountMinor: 4999,
    occurredAt: '2026-10-01T10:00:00Z',
    storeId: 's-1',
    jurisdiction: 'US-CA',
  },
  '/v1/programs/{programId}/quotes/redemption': {
    memberId: 'm-1',
    points: 100,
    invoiceTotalMinor: 8000,
    occurredAt: '2026-10-03T10:00:00Z',
  },
  '/v1/programs/{programId}/chargebacks': { invoiceId: 'inv-9', chargebackId: 'cb-1', status: 'lost' },
  '/v1/programs/{programId}/redemptions/{invoiceId}/adjustments': {
    adjustmentId: 'ia-1',
    invoiceTotalMinor: 5000,
    occurredAt: '2026-10-04T10:00:00Z',
  },
  '/v1/programs/{programId}/reconciliations': { date: '2026-10-01' },
  '/v1/programs/{programId}/closes': {
    period: '2026-Q3',
    redemptionRateOverride: { rate: 0.9, justification: 'fuzz' },
  },
  '/v1/programs/{programId}/adjustments': { memberId: 'm-1', points: 10, reasonCode: 'goodwill', comment: 'fuzz' },
  '/v1/programs/{programId}/adjustments/{adjustmentId}/approvals': { decision: 'approve', comment: 'ok' },
  '/v1/programs/{programId}/rule-changes': {
    changeId: 'c-fuzz',
    effectiveAt: '2027-06-01T00:00:00Z',
    comment: 'fuzz',
    rules: ruleVersion,
  },
  '/v1/programs/{programId}/rule-changes/{changeId}/approvals': { decision: 'approve', comment: 'ok' },
  // a public address: the fuzz API refuses private targets (LOYALTY_WEBHOOK_ALLOW_PRIVATE unset)
  '/v1/programs/{programId}/webhooks': {
    url: 'https://hooks.example.com/loyalty',
    events: ['points.earned', 'points.expired'],
    description: 'fuzz',
  },
};

/** The routes that read a query string: a valid query and the schema it is checked against. */
const QUERIES: Record<string, { base: Array<[string, string]>; schema: z.ZodObject }> = {
  '/v1/programs/{programId}/webhooks/{webhookId}/deliveries': {
    base: [
      ['status', 'pending'],
      ['limit', '10'],
      ['before', '1000'],
    ],
    schema: webhookDeliveriesQuery,
  },
  '/v1/programs/{programId}/members/{memberId}/ledger': {
    base: [
      ['after', '0'],
      ['limit', '10'],
    ],
    schema: ledgerQuery,
  },
  '/v1/programs/{programId}/liability': { base: [['asOf', '2026-10-15T00:00:00Z']], schema: liabilityQuery },
  '/v1/programs/{programId}/closes/{period}/report': { base: [['format', 'json']], schema: reportQuery },
  '/v1/programs/{programId}/audit': {
    base: [
      ['memberId', 'm-1'],
      ['since', '2026-01-01T00:00:00Z'],
      ['limit', '10'],
    ],
    schema: auditQuery,
  },
  // the lists (GET; the POSTs of the same paths take no query): each with a valid cursor of its own
  '/v1/programs/{programId}/members': {
    base: [
      ['status', 'active'],
      ['expiringWithin', 'P30D'],
      ['limit', '10'],
      ['cursor', encodeCursor('members', ['2026-01-01T00:00:00.000000Z', 'm-0'])],
    ],
    schema: membersListQuery,
  },
  '/v1/programs/{programId}/redemptions': {
    base: [
      ['from', '2026-10-01'],
      ['to', '2026-10-31'],
      ['status', 'applied'],
      ['limit', '10'],
      ['cursor', encodeCursor('redemptions', ['2026-10-01T00:00:00.000000Z', 'inv-0'])],
    ],
    schema: redemptionsListQuery,
  },
  '/v1/programs/{programId}/adjustments': {
    base: [
      ['status', 'pending_approval'],
      ['kind', 'merge'],
      ['limit', '10'],
      ['cursor', encodeCursor('adjustments', ['2026-01-01T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000'])],
    ],
    schema: adjustmentsListQuery,
  },
  '/v1/programs/{programId}/rule-changes': {
    base: [
      ['status', 'awaiting_approvals'],
      ['limit', '10'],
      ['cursor', encodeCursor('ruleChanges', ['2026-01-01T00:00:00.000000Z', 'c-0'])],
    ],
    schema: ruleChangesListQuery,
  },
  '/v1/programs/{programId}/closes': {
    base: [
      ['status', 'proposed'],
      ['limit', '10'],
      ['cursor', encodeCursor('closes', ['2026-Q1'])],
    ],
    schema: closesListQuery,
  },
  '/v1/approvals': {
    base: [
      ['role', 'billing'],
      ['programId', PROGRAM],
      ['limit', '10'],
      ['cursor', encodeCursor('approvals', ['2026-01-01T00:00:00.000000Z', 'close', PROGRAM, '2026-Q1'])],
    ],
    schema: approvalsQuery,
  },
  '/v1/programs': {
    base: [
      ['limit', '10'],
      ['cursor', encodeCursor('programs', ['a'])],
    ],
    schema: programsListQuery,
  },
  '/v1/programs/{programId}/trends': {
    base: [
      ['from', '2026-10-01'],
      ['to', '2026-10-31'],
    ],
    schema: trendsQuery,
  },
  // the exports: a valid range (the fuzz never sends Accept, so each valid case would stream NDJSON)
  '/v1/programs/{programId}/exports/ledger-entries': {
    base: [
      ['from', '2026-10-01'],
      ['to', '2026-10-31'],
    ],
    schema: exportQuery,
  },
  '/v1/programs/{programId}/exports/journal-lines': {
    base: [
      ['from', '2026-10-01'],
      ['to', '2026-10-31'],
    ],
    schema: exportQuery,
  },
};
/** The query a route reads: only a GET reads one (the lists share their paths with POSTs). */
const queryOf = (route: RouteDoc) => (route.method === 'get' ? QUERIES[route.path] : undefined);

// ---- hostile values --------------------------------------------------------------------------------

const wellFormed = (s: string) => {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
};
const hostile = (longest: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(
      '',
      ' ',
      '../../etc/passwd',
      '..\\..\\boot.ini',
      '%00',
      '\u0000',
      'a\u0000b',
      'ü',
      '🙂',
      '\u202egnp.exe',
      'a b',
      '\t',
      "'; drop table programs; --",
      '<script>alert(1)</script>',
      '${jndi:ldap://x/a}',
      'Ａ１',
      '\ud800',
      'null',
      '%',
      '%zz',
      '\\',
    ),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
    fc.integer({ min: 129, max: longest }).map((n) => 'x'.repeat(n)),
    fc.integer({ min: 1, max: Math.floor(longest / 6) }).map((n) => 'é'.repeat(n)),
  );
const BAD_INSTANTS = [
  '1969-12-31T23:59:59Z',
  '0001-01-01T00:00:00Z',
  '2026-02-30T10:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-11-22',
  '2026-11-22T10:00:00',
  '2026-11-22 10:00:00Z',
  '22/11/2026',
  'yesterday',
  '2026-11-22T25:00:00Z',
  '2026-11-22T10:00:00+24:00',
  '+275760-09-13T00:00:00Z',
  '2026-11-22T10:00:00.Z',
  'NaN',
  '',
  '2026-11-22T10:00:00Z\u0000',
];
const BAD_DURATIONS = [
  '',
  'P',
  'PT',
  'P0D',
  'PT0S',
  'PT0.5S',
  'P-1D',
  '365D',
  'P1.5D',
  'P101Y',
  'P9999Y',
  'P1DT',
  'forever',
  'p365d',
  'P365D ',
  'PT999ms',
  `P${'1'.repeat(50)}D`,
  'P365D\u0000',
];
const BAD_DATES = [
  '2026-02-30',
  '2026-13-01',
  '1969-12-31',
  '0000-00-00',
  '2026-1-1',
  '20261001',
  '2026-10-01T00:00:00Z',
  'today',
];
const DURATION_FIELDS = new Set(['window', 'chargebackWindow', 'noticePeriod']);
/** zod trims it before its min(1): blanks are empty */
const TRIMMED_FIELDS = new Set(['justification']);

// ---- breaking a JSON body by its JSON Schema (the one /openapi.json publishes) ------------------

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  enum?: string[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
}
interface Spot {
  path: string[];
  schema: JsonSchema;
  required: boolean;
}

function spots(schema: JsonSchema, value: Json, path: string[] = [], required = true, out: Spot[] = []): Spot[] {
  out.push({ path, schema, required });
  if (Array.isArray(value))
    value.forEach((v, i) => schema.items && spots(schema.items, v, [...path, String(i)], false, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const child =
        schema.properties?.[k] ??
        (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (child) spots(child, v, [...path, k], (schema.required ?? []).includes(k), out);
    }
  }
  return out;
}

function parentOf(body: Json | undefined, path: string[]): Record<string, Json> | null {
  let node: Json | undefined = body;
  for (const k of path.slice(0, -1))
    node = node && typeof node === 'object' ? (node as Record<string, Json>)[k] : undefined;
  return node && typeof node === 'object' ? (node as Record<string, Json>) : null;
}
/** defineProperty: a plain assignment of '__proto__' would set the prototype, not a key; a clone: generated values are shared */
const setAt = (r: Req, path: string[], v: Json) => {
  const p = parentOf(r.body, path);
  if (p)
    Object.defineProperty(p, path.at(-1)!, {
      value: structuredClone(v),
      enumerable: true,
      writable: true,
      configurable: true,
    });
};
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...(${s.length})` : s;
};

const isType = (v: Json, type?: string) =>
  type === 'integer' || type === 'number'
    ? typeof v === 'number'
    : type === 'array'
      ? Array.isArray(v)
      : type === 'object'
        ? !!v && typeof v === 'object' && !Array.isArray(v)
        : typeof v === type;

/** JSON numbers no double holds; serialise() writes them as literals. */
const RAW_NUMBERS = ['1e400', '-1e400', `1${'0'.repeat(30)}`, `-${'9'.repeat(30)}`].map((n) => `RAW<${n}>RAW`);
const serialise = (body: Json) => JSON.stringify(body).replace(/"RAW<([^>]*)>RAW"/g, '$1');

function badValue(s: JsonSchema, name: string): fc.Arbitrary<Json> {
  const wrongType = fc
    .constantFrom<Json>(null, true, 0, 1.5, '1', '', [], {}, ['x'], { a: 1 })
    .filter((v) => !isType(v, s.type));
  const typed: fc.Arbitrary<Json>[] = [];
  if (s.type === 'integer') {
    typed.push(
      fc.integer({ min: 0, max: 1_000_000 }).map((n) => n + 0.5),
      fc.constantFrom(...RAW_NUMBERS),
    );
    const lowest = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : undefined);
    if (lowest !== undefined)
      typed.push(
        fc.oneof(
          fc.constantFrom(lowest - 1, -(2 ** 53), -1e300),
          fc.integer({ min: 1, max: 2 ** 31 - 1 }).map((n) => lowest - n),
        ),
      );
    if (s.maximum !== undefined)
      typed.push(
        fc.oneof(
          fc.constantFrom(s.maximum + 1, 2 ** 53 + 2, 1e300, Number.MAX_VALUE),
          fc.integer({ min: 1, max: 2 ** 31 - 1 }).map((n) => s.maximum! + n),
        ),
      );
  } else if (s.type === 'number') {
    // every fractional field is a rate: (0, 1] with at most 6 decimals (0 is refused: they are all positive rates)
    typed.push(
      fc.double({ min: -1e300, max: -1e-9, noNaN: true }),
      fc.double({ min: 1 + 1e-9, max: 1e300, noNaN: true }),
      fc.constantFrom(0, 0.1234567, 1e-7, 0.5000001),
      fc.constantFrom(...RAW_NUMBERS),
    );
  } else if (s.type === 'string') {
    if (s.enum)
      typed.push(
        fc
          .constantFrom(
            '',
            'UNKNOWN',
            s.enum[0]!.toUpperCase(),
            ` ${s.enum[0]}`,
            `${s.enum[0]}\u0000`,
            s.enum.join(','),
          )
          .filter((v) => !s.enum!.includes(v)),
      );
    else if (DURATION_FIELDS.has(name)) typed.push(fc.constantFrom(...BAD_DURATIONS));
    else if (s.format === 'date-time') typed.push(fc.constantFrom(...BAD_INSTANTS));
    else if (name === 'date') typed.push(fc.constantFrom(...BAD_DATES));
    if (s.pattern) {
      const re = new RegExp(s.pattern);
      typed.push(hostile(8000).filter((v) => !re.test(v)));
    } else if (!s.enum && !DURATION_FIELDS.has(name)) {
      // free text: too long, empty where it may not be, or with a NUL (PostgreSQL text cannot hold one)
      typed.push(fc.constantFrom('\u0000', 'a\u0000b', `${'x'.repeat(10)}\u0000`));
      if (s.maxLength !== undefined)
        typed.push(fc.integer({ min: s.maxLength + 1, max: s.maxLength + 6000 }).map((n) => 'ü'.repeat(n)));
      if (s.minLength) typed.push(fc.constant(''));
      if (TRIMMED_FIELDS.has(name)) typed.push(fc.constantFrom(' ', '   ', '\n\t'));
    }
  } else if (s.type === 'array') {
    if (s.minItems) typed.push(fc.constant([]));
    if (s.maxItems !== undefined) typed.push(fc.constant(Array.from({ length: s.maxItems + 1 }, () => 'finance')));
  }
  return fc.oneof(wrongType, ...typed);
}

const unknownKey = (s: JsonSchema) =>
  fc
    .oneof(
      fc.constantFrom(
        'x',
        'constructor',
        '__proto__',
        '',
        ' ',
        'toString',
        'hasOwnProperty',
        '🙂',
        'a\u0000b',
        'memberid',
        'DE-XXXX',
        'de',
      ),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
    )
    .filter(
      (k) =>
        !Object.hasOwn(s.properties ?? {}, k) &&
        !(s.propertyNames?.pattern && new RegExp(s.propertyNames.pattern).test(k)),
    );

/**
 * The bodies whose parts the route validates one by one: the batch's items are each an accrual
 * (answered per item, so its route's schema takes any objects); the breaks aim at the items' contract.
 */
const ITEM_SCHEMAS: Record<string, z.ZodType> = {
  '/v1/programs/{programId}/accruals/batch': z
    .object({ accruals: z.array(accrualBatchItemSchema).min(1).max(LIMITS.maxBatchAccruals) })
    .strict(),
};

function bodyBreaks(route: RouteDoc, base: Json): fc.Arbitrary<Break> {
  const schema = z.toJSONSchema(ITEM_SCHEMAS[route.path] ?? route.body!, {
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  const arbs: fc.Arbitrary<Break>[] = [
    fc.constantFrom<Json>(null, [], 'x', 0, true, [base]).map((v) =>
      brk('input', `body := ${show(v)}`, (r) => {
        r.body = structuredClone(v);
      }),
    ),
  ];
  for (const s of spots(schema, base)) {
    const at = s.path.join('.');
    if (s.path.length) {
      arbs.push(
        badValue(s.schema, s.path.at(-1)!).map((v) =>
          brk('input', `body.${at} := ${show(v)}`, (r) => setAt(r, s.path, v)),
        ),
      );
      if (s.required)
        arbs.push(
          fc.constant(
            brk('input', `body.${at} missing`, (r) => {
              delete parentOf(r.body, s.path)?.[s.path.at(-1)!];
            }),
          ),
        );
    }
    if (s.schema.type === 'object' && (s.schema.additionalProperties === false || s.schema.propertyNames)) {
      arbs.push(
        fc
          .tuple(unknownKey(s.schema), fc.constantFrom<Json>(1, 'x', null, { policy: 'none' }, []))
          .map(([k, v]) =>
            brk('input', `body.${at}${at ? '.' : ''}${show(k)} added`, (r) => setAt(r, [...s.path, k], v)),
          ),
      );
    }
  }
  return fc.oneof(...arbs);
}

/** Breaks of the body as bytes: the media type, the size, the JSON itself. */
function rawBreaks(limit: number): fc.Arbitrary<Break> {
  const text = (r: Req) => r.raw ?? serialise(r.body ?? {});
  const withKey = (key: string, v: string) => (r: Req) => {
    const t = text(r);
    r.raw =
      t.startsWith('{') && t !== '{}' ? `{${JSON.stringify(key)}:${v},${t.slice(1)}` : `{${JSON.stringify(key)}:${v}}`;
  };
  const media = fc
    .constantFrom<string | null>(
      null,
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'text/html',
      'application/octet-stream',
      'application/jsonx',
      'json',
      'application/json-patch+json',
      'image/png',
    )
    .map((ct) =>
      brk(
        'media',
        `content-type ${ct ?? 'none'}`,
        (r) => {
          r.raw = text(r);
          r.contentType = ct;
        },
        2,
      ),
    );
  const size = fc.integer({ min: limit + 1, max: limit + 3 * BODY_LIMIT }).map((n) =>
    brk(
      'size',
      `body of ${n} bytes`,
      (r) => {
        const pad = 'x'.repeat(n);
        r.raw =
          r.body && typeof r.body === 'object' && !Array.isArray(r.body)
            ? serialise({ pad, ...r.body })
            : serialise({ pad });
        r.contentType ??= 'application/json';
      },
      1,
    ),
  );
  const json = fc
    .oneof(
      fc
        .constantFrom(
          '{',
          '}',
          '{"a":',
          '{"a":1,}',
          "{'a':1}",
          '{"a":NaN}',
          'NaN',
          'undefined',
          '[1,2',
          '{"a":1}}',
          '\u0000',
          '{"a":"\\x"}',
          ' ',
          '',
          '{"a":1e}',
          '{"a":01}',
          '{"a":+1}',
        )
        .map((t) =>
          brk(
            'json',
            `body text ${show(t)}`,
            (r) => {
              r.raw = t;
            },
            1,
          ),
        ),
      fc.nat().map((i) =>
        brk(
          'json',
          'body truncated',
          (r) => {
            const t = text(r);
            r.raw = t.slice(0, i % t.length);
          },
          1,
        ),
      ),
      fc.constantFrom('x', '}', ',', '{}').map((g) =>
        brk(
          'json',
          `body + ${show(g)}`,
          (r) => {
            r.raw = text(r) + g;
          },
          1,
        ),
      ),
      fc.constant(brk('json', 'body with __proto__', withKey('__proto__', '{"admin":true}'), 1)),
      fc.constant(
        brk('json', 'body with constructor.prototype', withKey('constructor', '{"prototype":{"admin":true}}'), 1),
      ),
    )
    .map((b) => ({
      ...b,
      apply: (r: Req) => {
        b.apply(r);
        r.contentType ??= 'application/json';
      },
    }));
  return fc.oneof(media, size, json);
}

// ---- the cases -------------------------------------------------------------------------------------

interface Fixtures {
  keys: Record<string, string>;
  revoked: string;
  params: Record<string, string>;
}

function baseRequest(route: RouteDoc, f: Fixtures): Req {
  const role = route.roles === 'none' ? null : route.roles === 'any' ? 'billing' : route.roles[0]!;
  const body = route.method === 'post' ? BODIES[route.path] : undefined;
  return {
    method: route.method.toUpperCase(),
    path: route.path,
    query: [...(queryOf(route)?.base ?? [])],
    auth: role ? `Bearer ${f.keys[role]}` : null,
    idem: route.idempotent ? `fuzz-${route.path.length}` : null,
    contentType: body === undefined ? null : 'application/json',
    body: body === undefined ? undefined : JSON.parse(JSON.stringify(body)),
  };
}

/** The ways to break a request to this route, weighted towards the body and the query, where most of the input is. */
function breaksOf(route: RouteDoc, f: Fixtures): Array<{ arbitrary: fc.Arbitrary<Break>; weight: number }> {
  const families: Array<{ arbitrary: fc.Arbitrary<Break>; weight: number }> = [];
  const add = (weight: number, arbitrary: fc.Arbitrary<Break>) => families.push({ arbitrary, weight });
  const params = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter(
    (m) => !ROUTE_DOCS.some((r) => r.path === route.path && r.method.toUpperCase() === m),
  );
  add(
    1,
    fc.constantFrom(...methods).map((m) =>
      brk(
        'method',
        `method ${m}`,
        (r) => {
          r.method = m;
          if (m === 'GET') Object.assign(r, { body: undefined, raw: undefined, contentType: null });
        },
        3,
      ),
    ),
  );
  // raw dot segments are left out: fetch resolves them before sending, as any URL parser does
  add(
    1,
    fc
      .constantFrom(
        '/',
        '/%00',
        '%00',
        '/..%2F..%2Fetc%2Fpasswd',
        '.json',
        '~',
        '%20',
        '/x/y/z/w',
        '%',
        '%zz',
        '%E0%A4%A',
        '/%ff',
      )
      .map((s) =>
        brk('path', `path + ${show(s)}`, (r) => {
          r.path += s;
        }),
      ),
  );
  if (params.length) {
    const fixtureIds = new Set(Object.values(f.params));
    const value = hostile(3000).filter((v) => wellFormed(v) && v !== '.' && v !== '..' && !fixtureIds.has(v));
    // and some sent as they are: malformed percent-encodings, encoded traversals
    const raw = fc.constantFrom(
      '%',
      '%zz',
      '%E0%A4%A',
      '%C0%AE%C0%AE%2F',
      '..%2F..%2F',
      '%2e%2e%2f',
      '%u002e',
      '%00',
      '%0a',
    );
    add(
      2,
      fc.tuple(fc.constantFrom(...params), fc.oneof(value.map(encodeURIComponent), raw)).map(([p, v]) =>
        brk('path', `{${p}} := ${show(v)}`, (r) => {
          r.path = r.path.replace(`{${p}}`, v);
        }),
      ),
    );
  }
  if (params.includes('programId')) {
    add(
      1,
      fc
        .stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/)
        .filter((p) => p !== PROGRAM)
        .map((p) =>
          brk('unknown', `no program ${p}`, (r) => {
            r.path = r.path.replace('{programId}', p);
          }),
        ),
    );
  }
  if (route.roles !== 'none') {
    const valid = f.keys[route.roles === 'any' ? 'billing' : route.roles[0]!]!;
    add(
      2,
      fc
        .oneof(
          fc.constantFrom<string | null>(
            null,
            'Bearer',
            'Bearer ',
            'Basic dXNlcjpwYXNz',
            `bearer ${valid}`,
            valid,
            `Token ${valid}`,
            `Bearer ${valid}x`,
            `Bearer ${valid.slice(0, -1)}`,
            `Bearer ${valid} ${valid}`,
            'Bearer null',
            `Bearer ${f.revoked}`,
            'Bearer clé',
          ),
          fc
            .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 60 })
            .filter((s) => !Object.values(f.keys).includes(s.trim()))
            .map((s) => `Bearer ll_${s}`),
          fc.integer({ min: 201, max: 2000 }).map((n) => `Bearer ${'k'.repeat(n)}`),
        )
        .map((a) =>
          brk('auth', `authorization ${show(a)}`, (r) => {
            r.auth = a;
          }),
        ),
    );
  }
  if (Array.isArray(route.roles)) {
    const forbidden = ROLES.filter((role) => role !== 'admin' && !(route.roles as readonly string[]).includes(role));
    add(
      1,
      fc.constantFrom(...forbidden).map((role) =>
        brk('role', `key of ${role}`, (r) => {
          r.auth = `Bearer ${f.keys[role]}`;
        }),
      ),
    );
  }
  if (route.idempotent) {
    add(
      1,
      fc
        .oneof(
          fc.constantFrom<string | null>(null, '', 'key with spaces', 'clé', 'a\tb', 'x, y'),
          fc.integer({ min: 256, max: 2000 }).map((n) => 'k'.repeat(n)),
        )
        .map((k) =>
          brk('input', `idempotency-key ${show(k)}`, (r) => {
            r.idem = k;
          }),
        ),
    );
  }
  const q = queryOf(route);
  if (q) add(3, queryBreaks(q.base, q.schema));
  if (route.body) add(6, bodyBreaks(route, BODIES[route.path]!));
  if (route.method === 'post') add(2, rawBreaks(BODY_LIMITS[route.path] ?? BODY_LIMIT));
  return families;
}

function queryBreaks(base: Array<[string, string]>, schema: z.ZodObject): fc.Arbitrary<Break> {
  const id = new RegExp(
    (z.toJSONSchema(auditQuery, { io: 'input', unrepresentable: 'any' }) as JsonSchema).properties!.memberId!.pattern!,
  );
  const bad: Record<string, fc.Arbitrary<string>> = {
    after: fc.constantFrom('', '-1', 'abc', '1.5', '1'.repeat(19), ' 1', '0x10', '1e3'),
    // a webhook's deliveries: before a delivery id
    before: fc.constantFrom('', '0', '-1', 'abc', '1.5', '1'.repeat(19), ' 1', '0x10'),
    limit: fc.constantFrom('0', '-1', '1001', '1.5', 'abc', '', 'Infinity', '1e9', 'NaN', ' ', '9'.repeat(400)),
    asOf: fc.constantFrom(...BAD_INSTANTS),
    since: fc.constantFrom(...BAD_INSTANTS),
    format: fc.constantFrom('xml', 'JSON', '', 'csv ', 'pdf', 'json\u0000'),
    memberId: hostile(2000).filter((v) => !id.test(v)),
    status: fc.constantFrom('', 'ACTIVE', 'unknown', 'active,merged', 'active\u0000', ' proposed', 'Pending'),
    kind: fc.constantFrom('', 'MERGE', 'adjust', 'merge ', 'rule_change'),
    expiringWithin: fc.constantFrom(...BAD_DURATIONS),
    from: fc.constantFrom(...BAD_DATES),
    // (an earlier to than the base's from is an empty range, not a refusal: docs/api.md)
    to: fc.constantFrom(...BAD_DATES),
    role: fc.constantFrom('', 'root', 'ADMIN', 'finance ', 'finance,legal', 'admin\u0000'),
    programId: hostile(2000).filter((v) => !PROGRAM_ID_PATTERN.test(v)),
    cursor: fc.constantFrom(
      '',
      ' ',
      'a',
      '!!',
      '%zz',
      'x'.repeat(3000),
      Buffer.from('[').toString('base64url'),
      Buffer.from('{}').toString('base64url'),
      'nope.x',
      'approvals.99999999999999999.close.p.2026-Q1',
      'adjustments.1767225600000000.not-a-uuid',
      'members.1767225600000000.m~20x',
    ),
  };
  const keys = base.map(([k]) => k);
  return fc.oneof(
    fc.constantFrom(...keys).chain((k) =>
      bad[k]!.map((v) =>
        brk('input', `?${k}=${show(v)}`, (r) => {
          r.query = [...r.query.filter(([x]) => x !== k), [k, v]];
        }),
      ),
    ),
    fc
      .constantFrom('x', 'asof', 'LIMIT', '__proto__', 'constructor', 'toString', '', '🙂', 'a\u0000b', 'limit[]')
      .filter((k) => !Object.hasOwn(schema.shape, k))
      .map((k) =>
        brk('input', `?${show(k)}= added`, (r) => {
          r.query.push([k, '1']);
        }),
      ),
    fc.constantFrom(...keys).map((k) =>
      brk('input', `?${k} twice`, (r) => {
        r.query.push(r.query.find(([x]) => x === k) ?? [k, '1']);
      }),
    ),
  );
}

function casesFor(route: RouteDoc, f: Fixtures, seed: number, runs: number): Array<{ req: Req; breaks: Break[] }> {
  const one = fc.oneof(...breaksOf(route, f));
  const arb = fc.oneof(
    { arbitrary: one.map((b) => [b]), weight: 3 },
    { arbitrary: fc.array(one, { minLength: 2, maxLength: 3 }), weight: 1 },
  );
  return fc.sample(arb, { seed, numRuns: runs }).map((breaks) => {
    const req = baseRequest(route, f);
    for (const b of [...breaks].sort((a, b) => a.phase - b.phase)) b.apply(req);
    for (const [name, value] of Object.entries(f.params))
      req.path = req.path.replace(`{${name}}`, encodeURIComponent(value));
    return { req, breaks };
  });
}

// ---- sending ---------------------------------------------------------------------------------------

interface Answer {
  status: number;
  code: string | undefined;
  shapeOk: boolean;
  text: string;
}

async function send(baseUrl: string, r: Req): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (r.auth !== null) headers.authorization = r.auth;
  if (r.idem !== null) headers['idempotency-key'] = r.idem;
  const text = r.raw ?? (r.body === undefined ? undefined : serialise(r.body));
  if (text !== undefined && r.contentType !== null) headers['content-type'] = r.contentType;
  const qs = r.query.length ? `?${new URLSearchParams(r.query)}` : '';
  // bytes, not a string: fetch would add text/plain to a string body
  const body = text === undefined ? undefined : r.contentType === null ? new TextEncoder().encode(text) : text;
  const res = await fetch(baseUrl + r.path + qs, { method: r.method, headers, body, redirect: 'manual' });
  const answer = await res.text();
  let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  try {
    parsed = JSON.parse(answer);
  } catch {
    /* judged below */
  }
  // a batch answers each item on its own (200 with a result per item): its one item's answer is
  // what the API answered for it
  const items = (
    parsed as { results?: Array<{ status?: number; error?: NonNullable<typeof parsed>['error'] }> } | undefined
  )?.results;
  if (res.status === 200 && r.path.endsWith('/accruals/batch') && Array.isArray(items) && items.length === 1) {
    const item = items[0]!;
    return {
      status: item.status ?? 0,
      code: typeof item.error?.code === 'string' ? item.error.code : undefined,
      shapeOk: typeof item.error?.code === 'string' && typeof item.error?.message === 'string' && !!item.error.details,
      text: answer,
    };
  }
  const e = parsed?.error;
  const shapeOk =
    !!e &&
    typeof e.code === 'string' &&
    typeof e.message === 'string' &&
    !!e.details &&
    typeof e.details === 'object' &&
    !Array.isArray(e.details) &&
    (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, code: typeof e?.code === 'string' ? e.code : undefined, shapeOk, text: answer };
}

// ---- the database, before and after -----------------------------------------------------------

/** Rows of every table (count and a digest of their contents) and every sequence's position. */
async function snapshot(pool: import('pg').Pool): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const { rows: tables } = await pool.query<{ name: string }>(
    `select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
  );
  for (const { name } of tables) {
    // Authenticating a key stamps api_keys.last_used_at (the access review reads it); nothing else of a key changes on a read.
    const skip = name === 'api_keys' ? ['last_used_at'] : [];
    const { rows } = await pool.query(
      `select count(*)::int as n, md5(coalesce(string_agg(x, E'\\n' order by x), '')) as h
         from (select (to_jsonb(t) - $1::text[])::text as x from "${name}" t) s`,
      [skip],
    );
    out[name] = `${rows[0].n} rows ${rows[0].h}`;
  }
  const { rows: seqs } = await pool.query(
    `select sequencename, coalesce(last_value, 0)::text as v from pg_sequences where schemaname = 'public'`,
  );
  for (const s of seqs) out[`sequence ${s.sequencename}`] = s.v;
  return out;
}

// ---- the test ----------------------------------------------------------------------------------------

let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;

/**
 * The routes as declared (api/route.ts), collected as the API registered them; not the codec's
 * session page (GET and DELETE take no input and answer 200/204 to anything, POST only sets the
 * cookie the codec routes' own cases already cover with the header). This API runs without a
 * codec, so /codec/encode and /decode answer 503 codec_not_configured before their body is
 * validated: their bodies are not broken here (test/integration/encryption.test.ts has a codec).
 */
let ROUTE_DOCS: RouteDoc[] = [];

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
  ROUTE_DOCS = api.app.routeCatalog.routes
    .filter((r) => r.path !== '/codec/session')
    .map((r) => (r.path.startsWith('/codec/') ? { ...r, body: undefined } : r));
});
afterAll(async () => {
  await api?.close();
  await db?.drop();
});

test('every base request is valid, so that every case breaks something', () => {
  for (const route of ROUTE_DOCS.filter((r) => r.body)) {
    const r = route.body!.safeParse(BODIES[route.path]);
    assert.ok(r.success, `${route.path}: ${JSON.stringify(r.error?.issues)}`);
  }
  for (const [path, q] of Object.entries(QUERIES))
    assert.ok(q.schema.safeParse(Object.fromEntries(q.base)).success, path);
});

test(`fuzz: at least ${RUNS} malformed or hostile requests over every endpoint; 4xx, nothing written, still serving`, async () => {
  const call = httpClient(api);
  // Fixtures, so that each path reaches its validation: a program, two members with points, an adjustment.
  assert.equal((await call('POST', '/v1/programs', { body: programBody(PROGRAM) })).status, 201);
  for (const [memberId, invoiceId] of [
    ['m-1', 'inv-1'],
    ['m-2', 'inv-2'],
  ]) {
    const res = await call('POST', `/v1/programs/${PROGRAM}/accruals`, {
      role: 'billing',
      body: { memberId, invoiceId, amountMinor: 50_000, occurredAt: '2026-09-01T10:00:00Z' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const adj = await call('POST', `/v1/programs/${PROGRAM}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-1', points: 5, reasonCode: 'goodwill' },
  });
  assert.equal(adj.status, 201, JSON.stringify(adj.body));
  const revokedId = 'fuzz-revoked';
  const revoked = newSecret(revokedId);
  await putKey(db.pool, { keyId: revokedId, secret: revoked, principal: 'fuzz-revoked', roles: ['admin'] });
  await revokeKey(db.pool, revokedId);
  const f: Fixtures = {
    keys: api.keys,
    revoked,
    params: {
      programId: PROGRAM,
      memberId: 'm-2',
      invoiceId: 'inv-1',
      period: '2026-Q3',
      date: '2026-10-01',
      adjustmentId: adj.body.adjustmentId,
      changeId: 'c-1',
      webhookId: '00000000-0000-4000-8000-000000000001',
      deliveryId: '1',
    },
  };

  const perRoute = Math.ceil(RUNS / ROUTE_DOCS.length);
  const cases = ROUTE_DOCS.flatMap((route, i) =>
    casesFor(route, f, SEED + i, perRoute).map((c) => ({ ...c, route: `${route.method.toUpperCase()} ${route.path}` })),
  );
  console.log(
    `seed ${SEED} (LOYALTY_FUZZ_SEED), ${cases.length} cases (LOYALTY_FUZZ_RUNS=${RUNS}), concurrency ${CONCURRENCY}`,
  );

  const before = await snapshot(db.pool);
  const t0 = Date.now();
  /** one example per endpoint and answer: 10,000 cases fail in a few distinct ways */
  const failures = new Map<string, { n: number; example: string }>();
  const statuses = new Map<number, number>();
  const codes = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const i = next++;
        const { req, breaks, route } = cases[i]!;
        const a = await send(api.baseUrl, req).catch((e: Error) => ({
          status: 0,
          code: undefined,
          shapeOk: false,
          text: `fetch failed: ${e.message} ${(e.cause as Error)?.message ?? ''}`,
        }));
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        codes.set(a.code ?? '-', (codes.get(a.code ?? '-') ?? 0) + 1);
        const allowed = new Set(breaks.flatMap((b) => EXPECT[b.kind]));
        const problem =
          a.status < 400 || a.status >= 500
            ? 'not a 4xx'
            : !a.shapeOk
              ? 'not the error shape'
              : !KNOWN_CODES.has(a.code!)
                ? 'an unknown code'
                : !allowed.has(`${a.status} ${a.code}`)
                  ? `not one of ${[...allowed].join(', ')}`
                  : null;
        if (problem) {
          const key = `${route} -> ${a.status} ${a.code ?? a.text.slice(0, 60)}`;
          const seen = failures.get(key) ?? {
            n: 0,
            example: `#${i} [${breaks.map((b) => b.label).join('; ')}] -> ${a.status} ${a.text.slice(0, 160)} (${problem}; sent ${req.method} ${req.path.slice(0, 100)})`,
          };
          failures.set(key, { ...seen, n: seen.n + 1 });
        }
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;

  const byRoute = new Map<string, number>();
  for (const c of cases) byRoute.set(c.route, (byRoute.get(c.route) ?? 0) + 1);
  const dist = (m: Map<unknown, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k}=${n}`)
      .join(' ');
  console.log(
    `fuzz summary: ${cases.length} cases over ${byRoute.size} endpoints in ${seconds.toFixed(1)} s; statuses ${dist(statuses)}; codes ${dist(codes)}`,
  );
  console.log(`cases per endpoint: ${dist(byRoute)}`);

  assert.ok(cases.length >= RUNS && byRoute.size === ROUTE_DOCS.length);
  const wrong = [...failures].map(([key, { n, example }]) => `${n}x ${key}: ${example}`);
  assert.deepEqual(
    wrong,
    [],
    `seed ${SEED}: ${[...failures.values()].reduce((s, f) => s + f.n, 0)} of ${cases.length} cases answered wrongly`,
  );
  assert.deepEqual(await snapshot(db.pool), before, `seed ${SEED}: the fuzzing wrote to the database`);

  // Still serving, and the fixtures' ids were never the problem: valid requests answer as they should.
  assert.equal((await call('GET', '/healthz')).status, 200);
  const ok = await call('POST', `/v1/programs/${PROGRAM}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'inv-after', amountMinor: 10_000, occurredAt: '2026-10-05T10:00:00Z' },
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const member = await call('GET', `/v1/programs/${PROGRAM}/members/m-1`, { role: 'billing' });
  assert.deepEqual([member.status, member.body.balance], [200, 500 + 5 + 100]);
  for (const [path, role] of [
    ['members/m-2/ledger?after=0&limit=10', 'billing'],
    ['liability?asOf=2026-10-15T00:00:00Z', 'finance'],
    ['audit?memberId=m-1&since=2026-01-01T00:00:00Z&limit=10', 'finance'],
    [`adjustments/${f.params.adjustmentId}`, 'support'],
    ['members?status=active&limit=1', 'support'],
    ['redemptions?from=2026-10-01&to=2026-10-31', 'billing'],
    ['adjustments?kind=adjustment', 'finance'],
    ['rule-changes?status=awaiting_approvals', 'legal'],
    ['closes?status=proposed', 'controller'],
  ] as const) {
    const res = await call('GET', `/v1/programs/${PROGRAM}/${path}`, { role });
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
  }
  // the longest id the schemas allow reaches the handler (not a router limit)
  const longest = await call('GET', `/v1/programs/${PROGRAM}/members/${'m'.repeat(128)}`, { role: 'billing' });
  assert.deepEqual([longest.status, longest.body.error?.code], [404, 'not_found']);
});
